//! The import floor for benchmarks: calamine alone opening a workbook and reading every cell
//! of every sheet (no header matching, no typing, no records). `benches/import_bench.py`
//! compares `kam run` against it.
//!
//! `cargo run --release --example calamine_floor -- WORKBOOK`

use calamine::{Data, Reader, open_workbook_auto};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: calamine_floor WORKBOOK")?;
    let mut wb = open_workbook_auto(&path)?;
    let names = wb.sheet_names().to_vec();
    let (mut cells, mut numbers, mut text_bytes) = (0u64, 0f64, 0usize);
    for name in names {
        let range = wb.worksheet_range(&name)?;
        for row in range.rows() {
            for c in row {
                match c {
                    Data::Empty => continue,
                    Data::Float(f) => numbers += f,
                    Data::Int(i) => numbers += *i as f64,
                    Data::String(s) => text_bytes += s.len(),
                    Data::DateTime(d) => numbers += d.as_f64(),
                    _ => {}
                }
                cells += 1;
            }
        }
    }
    println!("{cells} cells, {text_bytes} text bytes, checksum {numbers:.0}");
    Ok(())
}
