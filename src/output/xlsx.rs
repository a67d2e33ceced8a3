//! A streaming xlsx writer for kam's exports: sheets of text and number cells with a bold
//! header row, frozen panes, an autofilter, column widths and a number format per column.
//!
//! A million accounts make an Accounts sheet of about 1.3 GB of XML. Its rows are formatted and
//! deflated in chunks on the worker threads (each chunk ends on a byte boundary with a sync
//! flush, so the chunks concatenate into one deflate stream, and their CRC-32s combine), and
//! the chunks are written in order while the next ones are prepared. Chunk boundaries depend on
//! the row count only, so the bytes are the same for any number of threads.
//!
//! The package holds the parts Excel expects (content types, relationships, document
//! properties with a fixed date, workbook, styles, theme, one part per sheet). Text is written
//! inline (`t="inlineStr"`) and escaped as Excel escapes it; a sheet longer than Excel's
//! 1 048 576 rows continues on `Name (2)`, `Name (3)`…

use std::io::{self, Seek, SeekFrom, Write};

use flate2::{Compress, Compression, FlushCompress, Status};

use crate::model::column_letters;

/// How a column is written.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    /// User text: neutralised against formula injection ([`super::neutralise`]).
    Text,
    /// kam's own codes (band, abc…).
    Code,
    /// A plain number (`0.##`).
    Num,
    /// Money: whole units (`#,##0`).
    Money,
    /// A fraction shown as a percentage (`0.0%`).
    Share,
}

impl Kind {
    /// The cell style (index into `cellXfs` of the styles part) of a data cell of this kind.
    fn style(self) -> u32 {
        match self {
            Kind::Text | Kind::Code => 0,
            Kind::Num => 2,
            Kind::Share => 3,
            Kind::Money => 4,
        }
    }
}

/// One column of a sheet: its header, how its cells are written, its width in characters.
#[derive(Clone, Debug)]
pub struct Column {
    /// Header text.
    pub name: String,
    /// How the cells are written.
    pub kind: Kind,
    /// Width in characters, as Excel's column width dialog shows it.
    pub width: f64,
}

/// Receives the cells of one row, in column order.
pub trait Cells {
    /// A text cell; empty text leaves the cell empty.
    fn text(&mut self, text: &str);
    /// A number cell; `None` or a value that is not finite leaves the cell empty.
    fn num(&mut self, value: Option<f64>);
}

/// Produces row `i` (0-based, without the header) of a sheet.
pub type RowFn<'a> = &'a (dyn Fn(usize, &mut dyn Cells) + Sync);

/// One sheet to write.
pub struct Sheet<'a> {
    /// The sheet's name (at most 31 characters; continuation sheets add ` (2)`…).
    pub name: &'a str,
    /// Its columns.
    pub columns: &'a [Column],
    /// The number of data rows.
    pub rows: usize,
    /// Writes one data row.
    pub row: RowFn<'a>,
}

/// Excel's last row is 1 048 576: a header and this many data rows fit on one sheet.
const MAX_DATA_ROWS: usize = 1_048_575;
/// Rows per chunk formatted and deflated as one piece of work.
const CHUNK_ROWS: usize = 4096;
/// Excel's limit on the characters of one cell.
const MAX_CELL_CHARS: usize = 32_767;

/// Writes a workbook of `sheets` to `out`, deflating at `level` (0–9).
pub fn write<W: Write + Seek + Send>(out: W, sheets: &[Sheet<'_>], level: u32) -> io::Result<W> {
    write_with_limit(out, sheets, level, MAX_DATA_ROWS)
}

fn write_with_limit<W: Write + Seek + Send>(
    out: W,
    sheets: &[Sheet<'_>],
    level: u32,
    max_rows: usize,
) -> io::Result<W> {
    // Sheets longer than Excel allows continue on numbered sheets.
    let mut parts: Vec<Part<'_>> = Vec::new();
    for s in sheets {
        let mut start = 0;
        let mut n = 1;
        loop {
            let len = (s.rows - start).min(max_rows);
            parts.push(Part {
                name: if n == 1 {
                    s.name.to_string()
                } else {
                    format!("{} ({n})", s.name)
                },
                sheet: s,
                start,
                len,
            });
            start += len;
            n += 1;
            if start >= s.rows {
                break;
            }
        }
    }
    let mut zip = Zip::new(out);
    let level = Compression::new(level.min(9));
    let small = |zip: &mut Zip<W>, name: &str, text: &str| -> io::Result<()> {
        zip.entry(name, &[pack(text.as_bytes(), level, true)])
    };
    small(&mut zip, "[Content_Types].xml", &content_types(parts.len()))?;
    small(&mut zip, "_rels/.rels", RELS)?;
    small(&mut zip, "docProps/app.xml", &app(&parts))?;
    small(&mut zip, "docProps/core.xml", CORE)?;
    small(&mut zip, "xl/workbook.xml", &workbook(&parts))?;
    small(
        &mut zip,
        "xl/_rels/workbook.xml.rels",
        &workbook_rels(parts.len()),
    )?;
    small(&mut zip, "xl/styles.xml", STYLES)?;
    small(
        &mut zip,
        "xl/theme/theme1.xml",
        include_str!("xlsx/theme1.xml"),
    )?;
    for (i, p) in parts.iter().enumerate() {
        write_sheet(&mut zip, i + 1, p, i == 0, level)?;
    }
    zip.finish()
}

/// One sheet of the package: a run of a [`Sheet`]'s rows.
struct Part<'a> {
    name: String,
    sheet: &'a Sheet<'a>,
    start: usize,
    len: usize,
}

impl Part<'_> {
    /// `A1:AA1001`: the header and every data row.
    fn range(&self) -> String {
        let cols = self.sheet.columns.len().max(1) as u32;
        format!("A1:{}{}", column_letters(cols - 1), self.len + 1)
    }

    /// `Accounts!$A$1:$AA$1001` (quoted like Excel when the name needs it).
    fn absolute_range(&self) -> String {
        let cols = self.sheet.columns.len().max(1) as u32;
        let name = if self.name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            self.name.clone()
        } else {
            format!("'{}'", self.name.replace('\'', "''"))
        };
        format!(
            "{}!$A$1:${}${}",
            escape_attr(&name),
            column_letters(cols - 1),
            self.len + 1
        )
    }
}

fn write_sheet<W: Write + Seek + Send>(
    zip: &mut Zip<W>,
    number: usize,
    part: &Part<'_>,
    selected: bool,
    level: Compression,
) -> io::Result<()> {
    let cols = part.sheet.columns;
    let letters: Vec<String> = (0..cols.len() as u32).map(column_letters).collect();
    let mut head = String::from(XML_DECL);
    head.push_str(r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">"#);
    head.push_str(&format!(r#"<dimension ref="{}"/>"#, part.range()));
    head.push_str(&format!(
        r#"<sheetViews><sheetView {}workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>"#,
        if selected { r#"tabSelected="1" "# } else { "" }
    ));
    if !cols.is_empty() {
        head.push_str("<cols>");
        // Neighbouring columns of the same width and style share one element, as Excel writes.
        let mut i = 0;
        while i < cols.len() {
            let (w, s) = (cols[i].width, cols[i].kind.style());
            let mut j = i;
            while j + 1 < cols.len() && cols[j + 1].width == w && cols[j + 1].kind.style() == s {
                j += 1;
            }
            let style = if s == 0 {
                String::new()
            } else {
                format!(r#" style="{s}""#)
            };
            head.push_str(&format!(
                r#"<col min="{}" max="{}" width="{}"{style} customWidth="1"/>"#,
                i + 1,
                j + 1,
                excel_width(w)
            ));
            i = j + 1;
        }
        head.push_str("</cols>");
    }
    head.push_str("<sheetData>");
    let mut header = Vec::new();
    {
        let mut row = XmlRow::new(&mut header, cols, &letters, 1, Some(1));
        for c in cols {
            row.text(&c.name);
        }
        row.end();
    }
    let mut pieces = vec![head.into_bytes()];
    pieces[0].extend_from_slice(&header);
    let tail = format!(
        r#"</sheetData><autoFilter ref="{}"/><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>"#,
        part.range()
    );
    let chunks: Vec<(usize, usize)> = (0..part.len)
        .step_by(CHUNK_ROWS)
        .map(|s| (s, (s + CHUNK_ROWS).min(part.len)))
        .collect();
    let render = |&(a, b): &(usize, usize)| -> Packed {
        let mut buf = Vec::with_capacity((b - a) * 64 * cols.len().max(1));
        for i in a..b {
            let mut row = XmlRow::new(&mut buf, cols, &letters, (i + 2) as u32, None);
            (part.sheet.row)(part.start + i, &mut row);
            row.end();
        }
        pack(&buf, level, false)
    };
    zip.begin(&format!("xl/worksheets/sheet{number}.xml"))?;
    let mut state = Stream::default();
    zip.stream(
        &mut state,
        pack(&pieces.pop().unwrap_or_default(), level, false),
    )?;
    // Chunks are prepared a window at a time on the workers while this thread writes the
    // window before.
    let window = rayon::current_num_threads().max(1) * 2;
    super::pipelined(&chunks, window, &render, &mut |p| zip.stream(&mut state, p))?;
    zip.stream(&mut state, pack(tail.as_bytes(), level, true))?;
    zip.end(state)
}

/// The width Excel stores for a width shown as `w` characters (Calibri 11: 7 pixels per
/// character and 5 of padding).
fn excel_width(w: f64) -> f64 {
    if w <= 0.0 {
        0.0
    } else if w < 1.0 {
        ((w * 12.0).round() / 7.0 * 256.0).trunc() / 256.0
    } else {
        ((w * 7.0 + 5.0).round() / 7.0 * 256.0).trunc() / 256.0
    }
}

/// Writes one row's cells as XML.
struct XmlRow<'a> {
    buf: &'a mut Vec<u8>,
    cols: &'a [Column],
    letters: &'a [String],
    number: itoa::Buffer,
    row: u32,
    col: usize,
    /// Style of every cell (the header's), instead of the column's.
    style: Option<u32>,
}

impl<'a> XmlRow<'a> {
    fn new(
        buf: &'a mut Vec<u8>,
        cols: &'a [Column],
        letters: &'a [String],
        row: u32,
        style: Option<u32>,
    ) -> Self {
        let mut number = itoa::Buffer::new();
        buf.extend_from_slice(b"<row r=\"");
        buf.extend_from_slice(number.format(row).as_bytes());
        buf.extend_from_slice(b"\">");
        XmlRow {
            buf,
            cols,
            letters,
            number,
            row,
            col: 0,
            style,
        }
    }

    fn end(self) {
        self.buf.extend_from_slice(b"</row>");
    }

    /// Starts a cell of the current column; `false` past the last column.
    fn open(&mut self, inline: bool) -> bool {
        let Some(c) = self.cols.get(self.col) else {
            return false;
        };
        let b = &mut *self.buf;
        b.extend_from_slice(b"<c r=\"");
        b.extend_from_slice(self.letters[self.col].as_bytes());
        b.extend_from_slice(self.number.format(self.row).as_bytes());
        b.push(b'"');
        let style = self.style.unwrap_or_else(|| c.kind.style());
        if style != 0 {
            b.extend_from_slice(b" s=\"");
            b.extend_from_slice(itoa::Buffer::new().format(style).as_bytes());
            b.push(b'"');
        }
        if inline {
            b.extend_from_slice(b" t=\"inlineStr\"><is><t");
        } else {
            b.extend_from_slice(b"><v>");
        }
        true
    }
}

impl Cells for XmlRow<'_> {
    fn text(&mut self, text: &str) {
        let user =
            self.style.is_none() && self.cols.get(self.col).map(|c| c.kind) == Some(Kind::Text);
        let text = if user {
            super::neutralise(text)
        } else {
            std::borrow::Cow::Borrowed(text)
        };
        let text = text.as_ref();
        if !text.is_empty() && self.open(true) {
            let text = match text.char_indices().nth(MAX_CELL_CHARS) {
                Some((end, _)) => &text[..end],
                None => text,
            };
            if text.starts_with(['\t', '\n', ' ']) || text.ends_with(['\t', '\n', ' ']) {
                self.buf.extend_from_slice(b" xml:space=\"preserve\"");
            }
            self.buf.push(b'>');
            escape_text(self.buf, text);
            self.buf.extend_from_slice(b"</t></is></c>");
        }
        self.col += 1;
    }

    fn num(&mut self, value: Option<f64>) {
        if let Some(x) = value.filter(|x| x.is_finite())
            && self.open(false)
        {
            if x.fract() == 0.0 && x.abs() < 1e15 {
                self.buf
                    .extend_from_slice(itoa::Buffer::new().format(x as i64).as_bytes());
            } else {
                self.buf
                    .extend_from_slice(ryu::Buffer::new().format_finite(x).as_bytes());
            }
            self.buf.extend_from_slice(b"</v></c>");
        }
        self.col += 1;
    }
}

/// Escapes cell text as Excel does: `&`, `<` and `>` as entities; control characters other
/// than tab and newline, and the non-characters U+FFFE and U+FFFF, as `_xHHHH_`; and a literal
/// `_xHHHH_` by escaping its underscore, so it reads back as written.
fn escape_text(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let plain = |b: u8| {
        !matches!(b, b'&' | b'<' | b'>' | b'_' | 0xEF) && (b >= 0x20 || b == b'\t' || b == b'\n')
    };
    if bytes.iter().all(|&b| plain(b)) {
        out.extend_from_slice(bytes);
        return;
    }
    for (i, ch) in text.char_indices() {
        match ch {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '\t' | '\n' => out.push(ch as u8),
            '\u{0}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}' => {
                out.extend_from_slice(format!("_x{:04X}_", ch as u32).as_bytes())
            }
            '_' if is_escape(&bytes[i..]) => out.extend_from_slice(b"_x005F_"),
            _ => {
                let mut b = [0; 4];
                out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// Whether `s` starts with `_xHHHH_`.
fn is_escape(s: &[u8]) -> bool {
    s.len() >= 7 && s[1] == b'x' && s[2..6].iter().all(u8::is_ascii_hexdigit) && s[6] == b'_'
}

/// Escapes text for an XML attribute.
fn escape_attr(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A piece of a deflate stream with the CRC-32 and length of what it holds.
struct Packed {
    data: Vec<u8>,
    crc: crc32fast::Hasher,
    len: u64,
}

/// Deflates `data` as one piece of a raw deflate stream: the last piece ends the stream, the
/// others end on a byte boundary (a sync flush) so the next piece can follow.
fn pack(data: &[u8], level: Compression, last: bool) -> Packed {
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    let mut c = Compress::new(level, false);
    let mut out = Vec::with_capacity(data.len() / 4 + 64);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        let done = c.total_in() as usize;
        // Compressing into a Vec with spare room cannot fail: the stream is in memory.
        let status = c
            .compress_vec(&data[done..], &mut out, flush)
            .unwrap_or(Status::StreamEnd);
        let consumed = c.total_in() as usize == data.len();
        match status {
            Status::StreamEnd => break,
            _ if !last && consumed && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    Packed {
        data: out,
        crc,
        len: data.len() as u64,
    }
}

/// The running CRC and sizes of the entry being streamed.
#[derive(Default)]
struct Stream {
    crc: crc32fast::Hasher,
    len: u64,
    packed: u64,
}

struct Entry {
    name: String,
    crc: u32,
    len: u64,
    packed: u64,
    offset: u64,
}

/// A zip archive written in one pass; each entry's header is completed once its data is out.
struct Zip<W> {
    out: W,
    pos: u64,
    entries: Vec<Entry>,
}

/// 1980-01-01 00:00 in MS-DOS form: entries carry a fixed date, so the bytes do not change.
const DOS_DATE: u16 = (1 << 5) | 1;

fn too_big() -> io::Error {
    io::Error::other(
        "the workbook would pass 4 GiB, more than an xlsx file without ZIP64 can hold; use scores.csv",
    )
}

fn u32_of(x: u64) -> io::Result<u32> {
    u32::try_from(x).map_err(|_| too_big())
}

impl<W: Write + Seek> Zip<W> {
    fn new(out: W) -> Self {
        Zip {
            out,
            pos: 0,
            entries: Vec::new(),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Starts an entry: its local header, with the CRC and sizes filled in by [`Zip::end`].
    fn begin(&mut self, name: &str) -> io::Result<()> {
        self.entries.push(Entry {
            name: name.to_string(),
            crc: 0,
            len: 0,
            packed: 0,
            offset: self.pos,
        });
        let mut h = Vec::with_capacity(30 + name.len());
        h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        h.extend_from_slice(&20u16.to_le_bytes()); // version needed: 2.0 (deflate)
        h.extend_from_slice(&0u16.to_le_bytes()); // flags
        h.extend_from_slice(&8u16.to_le_bytes()); // deflate
        h.extend_from_slice(&0u16.to_le_bytes()); // time
        h.extend_from_slice(&DOS_DATE.to_le_bytes());
        h.extend_from_slice(&[0; 12]); // CRC, packed and unpacked sizes: patched
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        self.put(&h)
    }

    fn stream(&mut self, s: &mut Stream, p: Packed) -> io::Result<()> {
        self.put(&p.data)?;
        s.crc.combine(&p.crc);
        s.len += p.len;
        s.packed += p.data.len() as u64;
        Ok(())
    }

    /// Completes the entry begun last: its CRC and sizes go into its local header.
    fn end(&mut self, s: Stream) -> io::Result<()> {
        let crc = s.crc.finalize();
        let (len, packed) = (u32_of(s.len)?, u32_of(s.packed)?);
        let Some(e) = self.entries.last_mut() else {
            return Ok(());
        };
        e.crc = crc;
        e.len = s.len;
        e.packed = s.packed;
        let offset = e.offset;
        self.out.seek(SeekFrom::Start(offset + 14))?;
        let mut f = Vec::with_capacity(12);
        f.extend_from_slice(&crc.to_le_bytes());
        f.extend_from_slice(&packed.to_le_bytes());
        f.extend_from_slice(&len.to_le_bytes());
        self.out.write_all(&f)?;
        self.out.seek(SeekFrom::Start(self.pos))?;
        Ok(())
    }

    fn entry(&mut self, name: &str, pieces: &[Packed]) -> io::Result<()> {
        self.begin(name)?;
        let mut s = Stream::default();
        for p in pieces {
            self.put(&p.data)?;
            s.crc.combine(&p.crc);
            s.len += p.len;
            s.packed += p.data.len() as u64;
        }
        self.end(s)
    }

    /// Writes the central directory and returns the output.
    fn finish(mut self) -> io::Result<W> {
        let start = self.pos;
        let mut d = Vec::new();
        for e in &self.entries {
            d.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            d.extend_from_slice(&20u16.to_le_bytes()); // made by: 2.0, MS-DOS
            d.extend_from_slice(&20u16.to_le_bytes()); // needed
            d.extend_from_slice(&0u16.to_le_bytes()); // flags
            d.extend_from_slice(&8u16.to_le_bytes()); // deflate
            d.extend_from_slice(&0u16.to_le_bytes()); // time
            d.extend_from_slice(&DOS_DATE.to_le_bytes());
            d.extend_from_slice(&e.crc.to_le_bytes());
            d.extend_from_slice(&u32_of(e.packed)?.to_le_bytes());
            d.extend_from_slice(&u32_of(e.len)?.to_le_bytes());
            d.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            d.extend_from_slice(&[0; 12]); // extra, comment, disk, internal and external attributes
            d.extend_from_slice(&u32_of(e.offset)?.to_le_bytes());
            d.extend_from_slice(e.name.as_bytes());
        }
        let count = u16::try_from(self.entries.len()).map_err(|_| too_big())?;
        let size = u32_of(d.len() as u64)?;
        d.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        d.extend_from_slice(&[0; 4]); // disk numbers
        d.extend_from_slice(&count.to_le_bytes());
        d.extend_from_slice(&count.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
        d.extend_from_slice(&u32_of(start)?.to_le_bytes());
        d.extend_from_slice(&0u16.to_le_bytes()); // comment
        self.put(&d)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/></Relationships>"#;

/// Document properties with a fixed date: the same inputs give the same bytes.
const CORE: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>kam</dc:creator><cp:lastModifiedBy>kam</cp:lastModifiedBy><dcterms:created xsi:type="dcterms:W3CDTF">2026-01-01T00:00:00Z</dcterms:created><dcterms:modified xsi:type="dcterms:W3CDTF">2026-01-01T00:00:00Z</dcterms:modified></cp:coreProperties>"#;

/// Cell styles: 0 default, 1 header (bold on grey), 2 `0.##`, 3 `0.0%`, 4 `#,##0`.
const STYLES: &str = r##"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="3"><numFmt numFmtId="164" formatCode="0.##"/><numFmt numFmtId="165" formatCode="0.0%"/><numFmt numFmtId="166" formatCode="#,##0"/></numFmts><fonts count="2"><font><sz val="11"/><color theme="1"/><name val="Calibri"/><family val="2"/><scheme val="minor"/></font><font><b/><sz val="11"/><color theme="1"/><name val="Calibri"/><family val="2"/><scheme val="minor"/></font></fonts><fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill><fill><patternFill patternType="solid"><fgColor rgb="FFF1F3F6"/><bgColor indexed="64"/></patternFill></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="2" borderId="0" xfId="0" applyFont="1" applyFill="1"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles><dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/></styleSheet>"##;

fn content_types(sheets: usize) -> String {
    let mut s = String::from(XML_DECL);
    s.push_str(r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/><Override PartName="/xl/theme/theme1.xml" ContentType="application/vnd.openxmlformats-officedocument.theme+xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>"#);
    for i in 1..=sheets {
        s.push_str(&format!(r#"<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#));
    }
    s.push_str("</Types>");
    s
}

fn app(parts: &[Part<'_>]) -> String {
    let mut s = String::from(XML_DECL);
    s.push_str(&format!(r#"<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><Application>Microsoft Excel</Application><DocSecurity>0</DocSecurity><ScaleCrop>false</ScaleCrop><HeadingPairs><vt:vector size="2" baseType="variant"><vt:variant><vt:lpstr>Worksheets</vt:lpstr></vt:variant><vt:variant><vt:i4>{0}</vt:i4></vt:variant></vt:vector></HeadingPairs><TitlesOfParts><vt:vector size="{0}" baseType="lpstr">"#, parts.len()));
    for p in parts {
        s.push_str(&format!("<vt:lpstr>{}</vt:lpstr>", escape_attr(&p.name)));
    }
    s.push_str(r#"</vt:vector></TitlesOfParts><Company></Company><LinksUpToDate>false</LinksUpToDate><SharedDoc>false</SharedDoc><HyperlinksChanged>false</HyperlinksChanged><AppVersion>12.0000</AppVersion></Properties>"#);
    s
}

fn workbook(parts: &[Part<'_>]) -> String {
    let mut s = String::from(XML_DECL);
    s.push_str(r#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><fileVersion appName="xl" lastEdited="4" lowestEdited="4" rupBuild="4505"/><workbookPr defaultThemeVersion="124226"/><bookViews><workbookView xWindow="240" yWindow="15" windowWidth="16095" windowHeight="9660"/></bookViews><sheets>"#);
    for (i, p) in parts.iter().enumerate() {
        s.push_str(&format!(
            r#"<sheet name="{}" sheetId="{}" r:id="rId{}"/>"#,
            escape_attr(&p.name),
            i + 1,
            i + 1
        ));
    }
    s.push_str("</sheets><definedNames>");
    for (i, p) in parts.iter().enumerate() {
        s.push_str(&format!(
            r#"<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">{}</definedName>"#,
            p.absolute_range()
        ));
    }
    s.push_str(r#"</definedNames><calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>"#);
    s
}

fn workbook_rels(sheets: usize) -> String {
    let mut s = String::from(XML_DECL);
    s.push_str(
        r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
    );
    for i in 1..=sheets {
        s.push_str(&format!(r#"<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{i}.xml"/>"#));
    }
    s.push_str(&format!(r#"<Relationship Id="rId{}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/theme" Target="theme/theme1.xml"/><Relationship Id="rId{}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#, sheets + 1, sheets + 2));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = Vec::new();
        escape_text(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_is_escaped_like_excel() {
        assert_eq!(escaped("Acme & Sons <Ltd>"), "Acme &amp; Sons &lt;Ltd&gt;");
        assert_eq!(escaped("a\u{1}b\tc\nd"), "a_x0001_b\tc\nd");
        assert_eq!(escaped("_x0041_ and _x12"), "_x005F_x0041_ and _x12");
        assert_eq!(escaped("snake_case"), "snake_case");
        assert_eq!(escaped("Ромашка\u{FFFF}"), "Ромашка_xFFFF_");
    }

    #[test]
    fn widths_match_excel() {
        assert_eq!(excel_width(12.0), 12.7109375);
        assert_eq!(excel_width(80.0), 80.7109375);
        assert_eq!(excel_width(0.0), 0.0);
    }

    #[test]
    fn chunks_concatenate_into_one_deflate_stream() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("<c r=\"A{i}\"><v>{}</v></c>", i % 97).into_bytes())
            .collect();
        let mut state = Stream::default();
        let mut packed = Vec::new();
        for (i, piece) in text.chunks(70_001).enumerate() {
            let last = (i + 1) * 70_001 >= text.len();
            let p = pack(piece, Compression::new(2), last);
            packed.extend_from_slice(&p.data);
            state.crc.combine(&p.crc);
            state.len += p.len;
        }
        let mut back = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::DeflateDecoder::new(&packed[..]),
            &mut back,
        )
        .unwrap();
        assert!(back == text, "the pieces inflate to the original");
        assert_eq!(state.crc.finalize(), crc32fast::hash(&text));
        assert_eq!(state.len, text.len() as u64);
    }

    fn sheet_rows(rows: usize, jobs: usize, max_rows: usize) -> Vec<u8> {
        let cols = vec![
            Column {
                name: "id".into(),
                kind: Kind::Text,
                width: 10.0,
            },
            Column {
                name: "x".into(),
                kind: Kind::Num,
                width: 8.0,
            },
        ];
        let row = |i: usize, c: &mut dyn Cells| {
            c.text(&format!("A{i}"));
            c.num(Some(i as f64 / 4.0));
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs)
            .build()
            .unwrap();
        pool.install(|| {
            write_with_limit(
                std::io::Cursor::new(Vec::new()),
                &[Sheet {
                    name: "Rows",
                    columns: &cols,
                    rows,
                    row: &row,
                }],
                2,
                max_rows,
            )
            .unwrap()
            .into_inner()
        })
    }

    #[test]
    fn a_workbook_reads_back_the_same_on_any_thread_count() {
        use calamine::Reader;
        let one = sheet_rows(10_000, 1, MAX_DATA_ROWS);
        assert!(
            one == sheet_rows(10_000, 3, MAX_DATA_ROWS),
            "same bytes on 1 and 3 threads"
        );
        let mut book = calamine::Xlsx::new(std::io::Cursor::new(one)).unwrap();
        assert_eq!(book.sheet_names(), ["Rows"]);
        let range = book.worksheet_range("Rows").unwrap();
        assert_eq!(range.height(), 10_001);
        let last = range.rows().next_back().unwrap();
        assert_eq!(last[0].to_string(), "A9999");
        assert_eq!(calamine::DataType::get_float(&last[1]), Some(2499.75));
    }

    #[test]
    fn text_past_excels_limit_is_cut_and_user_text_neutralised() {
        use calamine::Reader;
        let cols = [Column {
            name: "name".into(),
            kind: Kind::Text,
            width: 30.0,
        }];
        let long = "é".repeat(MAX_CELL_CHARS + 10);
        let texts = [long.as_str(), "=1+1", " padded ", "a_x0041_b"];
        let row = |i: usize, c: &mut dyn Cells| c.text(texts[i]);
        let bytes = write(
            std::io::Cursor::new(Vec::new()),
            &[Sheet {
                name: "Names",
                columns: &cols,
                rows: texts.len(),
                row: &row,
            }],
            2,
        )
        .unwrap()
        .into_inner();
        let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let range = book.worksheet_range("Names").unwrap();
        let cells: Vec<String> = range.rows().skip(1).map(|r| r[0].to_string()).collect();
        assert_eq!(cells[0].chars().count(), MAX_CELL_CHARS);
        assert_eq!(cells[1], "'=1+1");
        assert_eq!(cells[2], " padded ");
        assert_eq!(
            cells[3], "a_x0041_b",
            "a literal escape reads back as written"
        );
    }

    #[test]
    fn long_sheets_continue_on_numbered_sheets() {
        use calamine::Reader;
        // The limit is lowered for the test; the same code splits at Excel's 1 048 575 rows.
        let bytes = sheet_rows(5000 + 3, 2, 5000);
        let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(book.sheet_names(), ["Rows", "Rows (2)"]);
        let rest = book.worksheet_range("Rows (2)").unwrap();
        assert_eq!(
            rest.height(),
            4,
            "a header and the 3 rows past Excel's limit"
        );
        assert_eq!(rest.rows().nth(1).unwrap()[0].to_string(), "A5000");
    }
}
