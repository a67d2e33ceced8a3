//! Opening a workbook: telling the format from the bytes (not the name), turning low-level
//! failures into one plain sentence, and streaming each sheet row by row.

use std::io::Cursor;
use std::ops::ControlFlow;

use calamine::{Data, DataRef, Reader, SheetType, SheetVisible, Sheets, Xlsx};

use crate::error::{Error, Result};

/// The spreadsheet formats kam reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Office Open XML workbook (.xlsx, .xlsm).
    Xlsx,
    /// Excel binary workbook (.xlsb).
    Xlsb,
    /// Excel 97–2003 workbook (.xls).
    Xls,
    /// OpenDocument spreadsheet (.ods).
    Ods,
}

impl Format {
    /// Lowercase name as in the file extension.
    pub fn name(self) -> &'static str {
        match self {
            Format::Xlsx => "xlsx",
            Format::Xlsb => "xlsb",
            Format::Xls => "xls",
            Format::Ods => "ods",
        }
    }
}

const SUPPORTED: &str = "kam reads .xlsx, .xlsm, .xlsb, .xls and .ods workbooks";
const OLE_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

fn password_message() -> String {
    "the workbook is password-protected (encrypted), so kam cannot read it: open it in Excel, \
     remove the password (File → Info → Protect Workbook) and save it again"
        .to_string()
}

fn damaged_message() -> String {
    "the file is damaged or incomplete (perhaps a download or copy was cut short): export or copy \
     the workbook again"
        .to_string()
}

/// Tells the format of a workbook from its first bytes and, for zip files, its entries.
pub fn detect(file: &str, bytes: &[u8]) -> Result<Format> {
    if bytes.is_empty() {
        return Err(Error::workbook(
            file,
            "the file is empty (0 bytes): export the workbook again",
        ));
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|_| Error::workbook(file, damaged_message()))?;
        check_expansion(file, &mut zip)?;
        let has = |name: &str| {
            zip.file_names()
                .any(|n| n.is_ok_and(|n| n.eq_ignore_ascii_case(name)))
        };
        return if has("xl/workbook.xml") {
            Ok(Format::Xlsx)
        } else if has("xl/workbook.bin") {
            let mut zip = zip;
            if xlsb_uses_short_cells(&mut zip) {
                return Err(Error::workbook(
                    file,
                    "this .xlsb was written with compact cell records that kam's reader would skip, losing cells: open it in Excel and save it again, or save it as .xlsx",
                ));
            }
            Ok(Format::Xlsb)
        } else if has("content.xml") {
            Ok(Format::Ods)
        } else if has("word/document.xml") {
            Err(Error::workbook(
                file,
                format!("this is a Word document, not a workbook; {SUPPORTED}"),
            ))
        } else {
            Err(Error::workbook(
                file,
                format!("this is a zip archive, not a workbook; {SUPPORTED}"),
            ))
        };
    }
    if bytes.starts_with(OLE_MAGIC) {
        let marker: Vec<u8> = "EncryptedPackage"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        if bytes.windows(marker.len()).any(|w| w == marker.as_slice()) {
            return Err(Error::workbook(file, password_message()));
        }
        return Ok(Format::Xls);
    }
    let head = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let lower = text.to_lowercase();
    if lower.contains("<html") || lower.contains("<table") {
        return Err(Error::workbook(
            file,
            format!(
                "this is a web page (HTML) saved under a workbook name: open it in Excel and save it as .xlsx; {SUPPORTED}"
            ),
        ));
    }
    let printable = head
        .iter()
        .filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace() || **b >= 0x80)
        .count();
    if printable * 10 >= head.len() * 9 {
        let delimiter = [',', ';', '\t']
            .into_iter()
            .find(|d| text.lines().next().is_some_and(|l| l.contains(*d)));
        let what = if delimiter.is_some() {
            "a CSV (text) file"
        } else {
            "a plain text file"
        };
        return Err(Error::workbook(
            file,
            format!(
                "this is {what}, not a workbook: open it in Excel or LibreOffice and save it as .xlsx"
            ),
        ));
    }
    Err(Error::workbook(
        file,
        format!("this is not a workbook kam can read; {SUPPORTED}"),
    ))
}

/// A part bigger than this when unpacked is refused if it also expands more than
/// [`MAX_EXPANSION`] times.
const LARGE_PART: u64 = 256 << 20;
/// Sheet XML compresses 5–30 times; a part expanding more than this is a zip bomb.
const MAX_EXPANSION: u64 = 200;
/// All parts together, unpacked, at most (the largest real exports are a few GiB).
const MAX_UNPACKED: u64 = 16 << 30;

/// Refuses zip bombs before any part is unpacked: a part that claims to be smaller than its
/// compressed bytes (its size is a lie), a large part that expands more than `MAX_EXPANSION`
/// times, or parts that would unpack to more than `MAX_UNPACKED` in all.
fn check_expansion(file: &str, zip: &mut zip::ZipArchive<Cursor<&[u8]>>) -> Result<()> {
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let Ok(part) = zip.by_index_raw(i) else {
            return Err(Error::workbook(file, damaged_message()));
        };
        let (size, packed) = (part.size(), part.compressed_size());
        let name = part.name().map(|n| n.to_string()).unwrap_or_default();
        // Deflate never grows a part by more than a few bytes per 32 KiB block.
        if part.compression() != zip::CompressionMethod::Stored && size + 1024 < packed / 2 {
            return Err(Error::workbook(
                file,
                format!(
                    "the part {name} claims to unpack to {size} bytes from {packed}: the file is damaged or built to exhaust memory (a zip bomb); export the workbook again"
                ),
            ));
        }
        if size > LARGE_PART && size / packed.max(1) > MAX_EXPANSION {
            return Err(Error::workbook(
                file,
                format!(
                    "the part {name} would unpack from {} to {} ({}×): real workbooks compress 5–30 times, so this is a zip bomb or a sheet padded with empty space; kam refuses it before unpacking. Open it in Excel and save it again",
                    human(packed),
                    human(size),
                    size / packed.max(1)
                ),
            ));
        }
        total = total.saturating_add(size);
    }
    if total > MAX_UNPACKED {
        return Err(Error::workbook(
            file,
            format!(
                "the workbook would unpack to {}, more than kam reads ({}): split it, or export fewer columns",
                human(total),
                human(MAX_UNPACKED)
            ),
        ));
    }
    Ok(())
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// True when any worksheet of an .xlsb uses the compact `BrtShort*` cell records (ids
/// 0x0C–0x12, written by some libraries but not by Excel), which calamine skips.
fn xlsb_uses_short_cells(zip: &mut zip::ZipArchive<Cursor<&[u8]>>) -> bool {
    use std::io::Read;
    let sheets: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok())
        .filter(|n| n.starts_with("xl/worksheets/") && n.ends_with(".bin"))
        .map(|n| n.to_string())
        .collect();
    for name in sheets {
        let mut data = Vec::new();
        let Ok(mut entry) = zip.by_name(&name) else {
            continue;
        };
        if entry.read_to_end(&mut data).is_err() {
            continue;
        }
        if record_types(&data).any(|t| (0x0C..=0x12).contains(&t)) {
            return true;
        }
    }
    false
}

/// The record types of an XLSB record stream (MS-XLSB 2.1.4: 7-bit variable-length type and size).
fn record_types(data: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let mut read_varint = |max_bytes: usize| -> Option<u32> {
            let mut v = 0u32;
            for i in 0..max_bytes {
                let b = *data.get(pos)?;
                pos += 1;
                v |= u32::from(b & 0x7F) << (7 * i);
                if b & 0x80 == 0 {
                    break;
                }
            }
            Some(v)
        };
        let typ = read_varint(2)?;
        let size = read_varint(4)? as usize;
        pos = pos.checked_add(size)?;
        (pos <= data.len()).then_some(typ)
    })
}

/// The unpacked size in bytes of each worksheet of an .xlsx, by sheet name: what reading the
/// sheet costs, so that the readers can take the largest sheets first. Empty for the other
/// formats and for a workbook whose parts cannot be told apart; sizes only order the work, so
/// nothing else depends on them.
pub fn sheet_sizes(format: Format, bytes: &[u8]) -> std::collections::HashMap<String, u64> {
    use std::io::Read;
    let mut sizes = std::collections::HashMap::new();
    if format != Format::Xlsx {
        return sizes;
    }
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return sizes;
    };
    // The two small parts that name the sheets and their files (ECMA-376 Part 1, 18.2.19).
    let mut text = |name: &str| {
        let mut t = String::new();
        let entry = zip.by_name(name).ok()?;
        // A few KB in real workbooks; a larger part is not worth reading for an estimate.
        entry.take(1 << 20).read_to_string(&mut t).ok()?;
        Some(t)
    };
    let (Some(workbook), Some(rels)) =
        (text("xl/workbook.xml"), text("xl/_rels/workbook.xml.rels"))
    else {
        return sizes;
    };
    let attrs = |xml: &str, element: &str, keys: [&str; 2]| {
        let mut found = Vec::new();
        let mut reader = quick_xml::Reader::from_str(xml);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e))
                    if e.local_name().as_ref() == element =>
                {
                    let mut values = [None, None];
                    for a in e.attributes().flatten() {
                        for (k, v) in keys.iter().zip(values.iter_mut()) {
                            if a.key.local_name().as_ref() == *k {
                                *v = a
                                    .normalized_value(quick_xml::XmlVersion::default())
                                    .ok()
                                    .map(|c| c.into_owned());
                            }
                        }
                    }
                    if let [Some(a), Some(b)] = values {
                        found.push((a, b));
                    }
                }
                Ok(quick_xml::events::Event::Eof) | Err(_) => break,
                _ => {}
            }
        }
        found
    };
    let targets: std::collections::HashMap<String, String> =
        attrs(&rels, "Relationship", ["Id", "Target"])
            .into_iter()
            .collect();
    for (name, id) in attrs(&workbook, "sheet", ["name", "id"]) {
        let Some(target) = targets.get(&id) else {
            continue;
        };
        let path = match target.strip_prefix('/') {
            Some(absolute) => absolute.to_string(),
            None => format!("xl/{target}"),
        };
        if let Ok(entry) = zip.by_name(&path) {
            sizes.insert(name, entry.size());
        }
    }
    sizes
}

/// A sheet of a workbook as listed in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetInfo {
    /// Name.
    pub name: String,
    /// A worksheet (not a chart, dialog or macro sheet).
    pub is_worksheet: bool,
    /// Hidden or very hidden.
    pub hidden: bool,
}

enum Inner<'a> {
    Xlsx(Box<Xlsx<Cursor<&'a [u8]>>>),
    Other(Box<Sheets<Cursor<&'a [u8]>>>),
}

/// An open workbook over bytes in memory.
pub struct Book<'a> {
    inner: Inner<'a>,
    /// kam's own reader of .xlsx cells, shared by the readers of one import; calamine reads
    /// what it cannot.
    fast: Option<std::sync::Arc<super::xlsx::Workbook<'a>>>,
    file: String,
    /// The workbook uses the 1904 date system.
    pub is_1904: bool,
    /// The format.
    pub format: Format,
}

fn translate(file: &str, detail: impl std::fmt::Display) -> Error {
    let detail = detail.to_string();
    let lower = detail.to_lowercase();
    if lower.contains("password") || lower.contains("encrypt") {
        Error::workbook(file, password_message())
    } else if lower.contains("zip")
        || lower.contains("eof")
        || lower.contains("invalid")
        || lower.contains("xml")
    {
        Error::workbook(file, format!("{} (detail: {detail})", damaged_message()))
    } else {
        Error::workbook(file, format!("the workbook could not be read: {detail}"))
    }
}

impl<'a> Book<'a> {
    /// Opens a workbook of a known format.
    pub fn open(file: &str, format: Format, bytes: &'a [u8]) -> Result<Book<'a>> {
        let cursor = Cursor::new(bytes);
        let inner = match format {
            Format::Xlsx => {
                Inner::Xlsx(Box::new(Xlsx::new(cursor).map_err(|e| translate(file, e))?))
            }
            Format::Xlsb => Inner::Other(Box::new(Sheets::Xlsb(
                calamine::Xlsb::new(cursor).map_err(|e| translate(file, e))?,
            ))),
            Format::Xls => Inner::Other(Box::new(Sheets::Xls({
                super::biff::check(bytes).map_err(|r| Error::workbook(file, r.to_string()))?;
                calamine::Xls::new(cursor).map_err(|e| translate(file, e))?
            }))),
            Format::Ods => Inner::Other(Box::new(Sheets::Ods(
                calamine::Ods::new(cursor).map_err(|e| translate(file, e))?,
            ))),
        };
        let is_1904 = match &inner {
            Inner::Xlsx(x) => x.has_1904_epoch(),
            Inner::Other(_) => false,
        };
        Ok(Book {
            inner,
            fast: None,
            file: file.to_string(),
            is_1904,
            format,
        })
    }

    /// Reads the cells of .xlsx sheets with kam's own reader (`import::xlsx`) where it can.
    pub fn use_fast_reader(&mut self, wb: Option<std::sync::Arc<super::xlsx::Workbook<'a>>>) {
        if matches!(self.inner, Inner::Xlsx(_)) {
            self.fast = wb;
        }
    }

    /// The sheets in workbook order.
    pub fn sheets(&self) -> Vec<SheetInfo> {
        let meta = match &self.inner {
            Inner::Xlsx(x) => x.sheets_metadata(),
            Inner::Other(s) => s.sheets_metadata(),
        };
        meta.iter()
            .map(|s| SheetInfo {
                name: s.name.clone(),
                is_worksheet: s.typ == SheetType::WorkSheet,
                hidden: s.visible != SheetVisible::Visible,
            })
            .collect()
    }

    /// Calls `f` with each non-empty row of a sheet: the 1-based row number and the cells from
    /// column A on. Stops early when `f` returns `ControlFlow::Break`. Before the first row,
    /// `last_row` hears the last row number the sheet declares (at most Excel's 1 048 576; a
    /// hint to reserve memory, which a damaged file can get wrong).
    pub fn for_each_row(
        &mut self,
        sheet: &str,
        last_row: &mut dyn FnMut(u32),
        f: &mut dyn FnMut(u32, &[DataRef<'_>]) -> ControlFlow<()>,
    ) -> Result<()> {
        let file = self.file.clone();
        let mut declared = |end: u32| last_row(end.saturating_add(1).min(MAX_ROWS));
        match &mut self.inner {
            Inner::Xlsx(x) => {
                if let Some(mut cells) = self.fast.as_deref().and_then(|w| w.cells(sheet))
                    && let Ok(end) = cells.start()
                {
                    declared(end);
                    return stream_fast(&file, sheet, f, &mut cells, x);
                }
                let mut reader = x
                    .worksheet_cells_reader(sheet)
                    .map_err(|e| translate(&file, e))?;
                declared(reader.dimensions().end.0);
                stream_rows(&file, sheet, f, || reader.next_cell())
            }
            // .xlsb streams its cells too: a dense range would allocate rows × columns of the
            // largest cell address, which a damaged file can put at the end of the grid.
            Inner::Other(s) if matches!(**s, Sheets::Xlsb(_)) => {
                let Sheets::Xlsb(x) = &mut **s else {
                    unreachable!("matched above")
                };
                let mut reader = x
                    .worksheet_cells_reader(sheet)
                    .map_err(|e| translate(&file, e))?;
                declared(reader.dimensions().end.0);
                stream_rows(&file, sheet, f, || reader.next_cell())
            }
            Inner::Other(s) => {
                let range = s.worksheet_range(sheet).map_err(|e| translate(&file, e))?;
                let Some((r0, c0)) = range.start() else {
                    return Ok(());
                };
                if let Some((r, c)) = range.end() {
                    if c as usize >= MAX_COLUMNS {
                        return Err(Error::workbook(
                            &file,
                            format!(
                                "sheet '{sheet}' uses column {} — more than Excel's {MAX_COLUMNS} columns; the file is damaged",
                                c + 1
                            ),
                        ));
                    }
                    declared(r);
                }
                let mut buf: Vec<DataRef<'_>> = Vec::new();
                for (i, row) in range.rows().enumerate() {
                    buf.clear();
                    buf.resize(c0 as usize, DataRef::Empty);
                    buf.extend(row.iter().map(data_ref));
                    if buf.iter().all(|c| matches!(c, DataRef::Empty)) {
                        continue;
                    }
                    if f(r0 + i as u32 + 1, &buf).is_break() {
                        break;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Groups the cells a streaming reader gives (in row order) into rows for `f`.
fn stream_rows<'c, E: std::fmt::Display>(
    file: &str,
    sheet: &str,
    f: &mut dyn FnMut(u32, &[DataRef<'_>]) -> ControlFlow<()>,
    mut next: impl FnMut() -> std::result::Result<Option<calamine::Cell<DataRef<'c>>>, E>,
) -> Result<()> {
    let mut buf: Vec<DataRef<'c>> = Vec::new();
    let mut current: Option<u32> = None;
    while let Some(cell) = next().map_err(|e| translate(file, e))? {
        let (r, c) = cell.get_position();
        let value = cell.get_value().clone();
        if current != Some(r) {
            if let Some(prev) = current
                && f(prev + 1, &buf).is_break()
            {
                return Ok(());
            }
            buf.clear();
            current = Some(r);
        }
        place(&mut buf, c, value, file, sheet)?;
    }
    if let Some(prev) = current {
        let _ = f(prev + 1, &buf);
    }
    Ok(())
}

/// Groups the cells of kam's own reader into rows for `f` as [`stream_rows`] does; where that
/// reader gives up, calamine reads the sheet again and goes on from the first cell of the row
/// being gathered (the cells before it, which both readers give alike, are passed over).
fn stream_fast<'w>(
    file: &str,
    sheet: &str,
    f: &mut dyn FnMut(u32, &[DataRef<'_>]) -> ControlFlow<()>,
    cells: &mut super::xlsx::Cells<'w>,
    x: &mut Xlsx<Cursor<&[u8]>>,
) -> Result<()> {
    let mut buf: Vec<DataRef<'w>> = Vec::new();
    let mut current: Option<u32> = None;
    // Cells of the rows given to `f`, and of the row being gathered.
    let (mut given, mut gathered) = (0usize, 0usize);
    loop {
        match cells.next_cell() {
            Ok(Some((r, c, value))) => {
                if current != Some(r) {
                    if let Some(prev) = current
                        && f(prev + 1, &buf).is_break()
                    {
                        return Ok(());
                    }
                    given += gathered;
                    gathered = 0;
                    buf.clear();
                    current = Some(r);
                }
                gathered += 1;
                place(&mut buf, c, value, file, sheet)?;
            }
            Ok(None) => {
                if let Some(prev) = current {
                    let _ = f(prev + 1, &buf);
                }
                return Ok(());
            }
            Err(super::xlsx::GiveUp) => {
                drop(buf);
                let mut reader = x
                    .worksheet_cells_reader(sheet)
                    .map_err(|e| translate(file, e))?;
                let mut skip = given;
                return stream_rows(file, sheet, f, || {
                    while skip > 0 {
                        skip -= 1;
                        if reader.next_cell()?.is_none() {
                            return Ok(None);
                        }
                    }
                    reader.next_cell()
                });
            }
        }
    }
}

/// Puts a cell's value at its 0-based column `c` of the row being gathered; a column past
/// Excel's last is damage.
fn place<'c>(
    buf: &mut Vec<DataRef<'c>>,
    c: u32,
    value: DataRef<'c>,
    file: &str,
    sheet: &str,
) -> Result<()> {
    let c = c as usize;
    if c >= MAX_COLUMNS {
        return Err(too_many_columns(file, sheet, c));
    }
    if buf.len() <= c {
        buf.resize(c + 1, DataRef::Empty);
    }
    buf[c] = value;
    Ok(())
}

fn too_many_columns(file: &str, sheet: &str, c: usize) -> Error {
    Error::workbook(
        file,
        format!(
            "sheet '{sheet}' uses column {} — more than Excel's {MAX_COLUMNS} columns; the file is damaged",
            c + 1
        ),
    )
}

/// Excel's column limit.
pub const MAX_COLUMNS: usize = 16_384;

/// Excel's row limit.
pub const MAX_ROWS: u32 = 1_048_576;

fn data_ref(d: &Data) -> DataRef<'_> {
    match d {
        Data::Int(i) => DataRef::Int(*i),
        Data::Float(f) => DataRef::Float(*f),
        Data::String(s) => DataRef::SharedString(s.as_str()),
        Data::Bool(b) => DataRef::Bool(*b),
        Data::DateTime(dt) => DataRef::DateTime(*dt),
        Data::DateTimeIso(s) => DataRef::DateTimeIso(s.clone()),
        Data::DurationIso(s) => DataRef::DurationIso(s.clone()),
        Data::Error(e) => DataRef::Error(e.clone()),
        Data::Empty => DataRef::Empty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(file: &str, bytes: &[u8]) -> String {
        detect(file, bytes).unwrap_err().to_string()
    }

    /// The last row a sheet declares, and the last row it has.
    fn declared_and_last(path: &str, sheet: &str) -> (u32, u32) {
        let file = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&file).unwrap();
        let mut book = Book::open(&file, detect(&file, &bytes).unwrap(), &bytes).unwrap();
        let (mut declared, mut last) = (0, 0);
        book.for_each_row(sheet, &mut |n| declared = n, &mut |row, _| {
            last = row;
            ControlFlow::Continue(())
        })
        .unwrap();
        (declared, last)
    }

    #[test]
    fn xlsx_sheet_sizes_are_their_unpacked_parts() {
        let bytes = crate::SAMPLE_WORKBOOK;
        let sizes = sheet_sizes(Format::Xlsx, bytes);
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
        let mut names: Vec<&String> = sizes.keys().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "Accounts",
                "Activities",
                "Contacts",
                "Managers",
                "Plans",
                "Tenders",
                "Transactions"
            ]
        );
        // The sample's sheets are its parts in workbook order (sheet1.xml is Accounts).
        for (i, name) in ["Accounts", "Transactions", "Contacts", "Activities"]
            .iter()
            .enumerate()
        {
            let part = format!("xl/worksheets/sheet{}.xml", i + 1);
            assert_eq!(
                sizes[*name],
                zip.by_name(&part).expect("part").size(),
                "{name}"
            );
        }
        assert!(sheet_sizes(Format::Ods, &[]).is_empty());
        assert!(sheet_sizes(Format::Xlsx, b"PK not a zip").is_empty());
    }

    #[test]
    fn sheets_declare_their_last_row_in_every_format_within_excels_limit() {
        for format in ["xlsx", "xlsb", "xls", "ods"] {
            let (declared, last) =
                declared_and_last(&format!("valid/kam-sample.{format}"), "Accounts");
            assert!(last > 2, "{format}");
            assert_eq!(declared, last, "{format}");
        }
        // A damaged sheet declaring the whole grid (one cell at XFD1048576) is believed only
        // up to Excel's limit; kam reserves room from it, never touches it.
        assert_eq!(
            declared_and_last("invalid/absurd-dimension.xlsx", "Accounts"),
            (MAX_ROWS, MAX_ROWS)
        );
    }

    #[test]
    fn plain_words_for_wrong_files() {
        assert_eq!(
            message("a.xlsx", b""),
            "a.xlsx: the file is empty (0 bytes): export the workbook again"
        );
        assert!(
            message("a.xlsx", b"id,name\n1,Acme\n")
                .contains("this is a CSV (text) file, not a workbook")
        );
        assert!(message("a.xlsx", b"<html><table></table></html>").contains("web page"));
        assert!(message("a.xlsx", b"PK\x03\x04garbage").contains("damaged or incomplete"));
        assert!(
            message("a.xlsx", &[0u8, 1, 2, 3, 0xff, 0xfe, 7, 8, 0, 0, 0, 0])
                .contains("not a workbook kam can read")
        );
    }
}
