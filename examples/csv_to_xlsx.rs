//! Builds a workbook from a folder of CSV files, one per sheet, for the samples and test
//! fixtures (their readable source lives beside them in git).
//!
//! `cargo run --example csv_to_xlsx -- SRC_DIR OUT.xlsx`
//!
//! Sheets are taken in file-name order; a numeric prefix sets the order and is dropped
//! (`01-Accounts.csv` → sheet `Accounts`); `.hidden.csv` makes a hidden sheet. Cells are typed from their text: numbers, dates
//! (`2026-03-15`), date-times (`2026-03-15 09:30`), `TRUE`/`FALSE`; a leading `'` forces text;
//! `=FORMULA|RESULT` writes a formula with its cached result (`=NA()|#N/A`).

use std::path::Path;

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Formula, Workbook};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, src, out] = args.as_slice() else {
        return Err("usage: csv_to_xlsx SRC_DIR OUT.xlsx".into());
    };
    let mut files: Vec<_> = std::fs::read_dir(src)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    let mut wb = Workbook::new();
    wb.set_properties(
        &DocProperties::new().set_creation_datetime(&ExcelDateTime::from_ymd(2026, 1, 1)?),
    );
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let datetime = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    for file in files {
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("Sheet");
        let (stem, hidden) = match stem.strip_suffix(".hidden") {
            Some(s) => (s, true),
            None => (stem, false),
        };
        let name = match stem.split_once('-') {
            Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => rest,
            _ => stem,
        };
        let ws = wb.add_worksheet();
        ws.set_name(name)?;
        ws.set_hidden(hidden);
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_path(&file)?;
        for (r, rec) in rdr.records().enumerate() {
            let rec = rec?;
            for (c, text) in rec.iter().enumerate() {
                write_cell(ws, r as u32, c as u16, text, &date, &datetime)?;
            }
        }
    }
    wb.save(Path::new(out))?;
    Ok(())
}

fn write_cell(
    ws: &mut rust_xlsxwriter::Worksheet,
    r: u32,
    c: u16,
    text: &str,
    date: &Format,
    datetime: &Format,
) -> Result<(), Box<dyn std::error::Error>> {
    if text.is_empty() {
        return Ok(());
    }
    if let Some(t) = text.strip_prefix('\'') {
        ws.write_string(r, c, t)?;
    } else if let Some(f) = text.strip_prefix('=') {
        let (formula, result) = f.split_once('|').unwrap_or((f, ""));
        ws.write_formula(r, c, Formula::new(format!("={formula}")).set_result(result))?;
    } else if text == "TRUE" || text == "FALSE" {
        ws.write_boolean(r, c, text == "TRUE")?;
    } else if let Ok(n) = text.parse::<f64>() {
        ws.write_number(r, c, n)?;
    } else if let Some(d) =
        (text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-')
            .then(|| ExcelDateTime::parse_from_str(text).ok())
            .flatten()
    {
        ws.write_datetime_with_format(r, c, d, date)?;
    } else if text.len() == 16 && text.as_bytes()[4] == b'-' && text.as_bytes()[10] == b' ' {
        let iso = format!("{}T{}:00", &text[..10], &text[11..]);
        ws.write_datetime_with_format(r, c, ExcelDateTime::parse_from_str(&iso)?, datetime)?;
    } else {
        ws.write_string(r, c, text)?;
    }
    Ok(())
}
