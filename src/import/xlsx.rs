//! kam's own reader of the cells of an .xlsx worksheet: the import's hot path.
//!
//! calamine reads a sheet through a general XML parser (events, attribute iterators, text
//! decoding): at a million accounts that was about 60 % of the import's CPU. This reader scans
//! the worksheet's XML directly for the shapes spreadsheet writers use (`<row>`, `<c r s t>`,
//! `<v>`, `<f>`, `<is><t>`), giving exactly the cells calamine's `XlsxCellReader::next_cell`
//! gives. It never guesses: on anything outside those shapes (comments, CDATA, namespace
//! prefixes, character references, Excel's `_xHHHH_` escapes, damaged XML) it
//! gives up, and [`super::book::Book`] lets calamine read the sheet from the first cell this
//! reader did not hand out. Its shared strings and date formats are read once per workbook
//! ([`Workbook::open`]) by the same rules as calamine's; a workbook this module cannot read
//! that way is read by calamine alone.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use calamine::{DataRef, ExcelDateTime, ExcelDateTimeType};

/// This reader cannot go on: calamine takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GiveUp;

type R<T> = std::result::Result<T, GiveUp>;

/// How a cell's number is shown, as far as dates go (calamine's `CellFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fmt {
    Other,
    DateTime,
    TimeDelta,
}

/// What a workbook's cells need besides their sheet: the shared strings, the date formats of
/// the cell styles, the date system, and where each worksheet's part is.
pub struct Workbook<'a> {
    bytes: &'a [u8],
    /// The shared strings, one text with their ends.
    text: String,
    ends: Vec<usize>,
    formats: Vec<Fmt>,
    is_1904: bool,
    parts: HashMap<String, String>,
}

impl<'a> Workbook<'a> {
    /// Reads what the sheets' cells need; `None` when any of it is not in the plain form this
    /// reader handles (calamine then reads the workbook alone).
    pub fn open(bytes: &'a [u8]) -> Option<Workbook<'a>> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
        let mut small = |name: &str| -> Option<Option<String>> {
            match zip.by_name(name) {
                Ok(entry) => {
                    let mut t = String::new();
                    entry.take(16 << 20).read_to_string(&mut t).ok()?;
                    Some(Some(t))
                }
                Err(zip::result::ZipError::FileNotFound) => Some(None),
                Err(_) => None,
            }
        };
        // calamine finds the workbook part through the package's relationships; only the usual
        // place is handled here.
        let root = small("_rels/.rels")??;
        let office = attrs(&root, "Relationship", &["Type", "Target"])?
            .into_iter()
            .find(|v| {
                v[0].as_deref()
                    .is_some_and(|t| t.ends_with("/officeDocument"))
            })?;
        if !matches!(
            office[1].as_deref(),
            Some("xl/workbook.xml" | "/xl/workbook.xml")
        ) {
            return None;
        }
        let workbook = small("xl/workbook.xml")??;
        let rels = small("xl/_rels/workbook.xml.rels")??;
        let styles = small("xl/styles.xml")?;
        let targets: HashMap<String, String> = attrs(&rels, "Relationship", &["Id", "Target"])?
            .into_iter()
            .filter_map(|[id, target]| Some((id?, target?)))
            .collect();
        let mut parts = HashMap::new();
        for [name, id] in attrs(&workbook, "sheet", &["name", "id"])? {
            let (Some(name), Some(id)) = (name, id) else {
                continue;
            };
            let Some(target) = targets.get(&id) else {
                continue;
            };
            let path = match target.strip_prefix('/') {
                Some(absolute) => absolute.to_string(),
                None => format!("xl/{target}"),
            };
            // calamine takes the first sheet of a name.
            parts.entry(name).or_insert(path);
        }
        let is_1904 = attrs(&workbook, "workbookPr", &["date1904"])?
            .into_iter()
            .filter_map(|[v]| v)
            .next_back()
            .is_some_and(|v| v == "1" || v == "true");
        let formats = match styles {
            Some(s) => read_formats(&s)?,
            None => Vec::new(),
        };
        let (text, ends) = match zip.by_name("xl/sharedStrings.xml") {
            Ok(_) => read_shared_strings(Part::open(bytes, "xl/sharedStrings.xml")?).ok()?,
            Err(zip::result::ZipError::FileNotFound) => (String::new(), Vec::new()),
            Err(_) => return None,
        };
        Some(Workbook {
            bytes,
            text,
            ends,
            formats,
            is_1904,
            parts,
        })
    }

    fn string(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..end])
    }

    /// The cells of a worksheet, or `None` when its part is not where this reader looks or is
    /// not stored or deflated.
    pub fn cells(&self, sheet: &str) -> Option<Cells<'_>> {
        let path = self.parts.get(sheet)?;
        Some(Cells::new(self, Part::open(self.bytes, path)?))
    }
}

/// A part of the package, inflated as it is read; its CRC-32 and size are checked at its end
/// (a damaged part makes this reader give up, and calamine says what is wrong).
struct Part<'a> {
    inner: PartReader<'a>,
    crc: crc32fast::Hasher,
    expected_crc: u32,
    expected_size: u64,
    read: u64,
}

enum PartReader<'a> {
    Stored(&'a [u8]),
    Deflated(Box<flate2::bufread::DeflateDecoder<&'a [u8]>>),
}

impl<'a> Part<'a> {
    fn open(bytes: &'a [u8], path: &str) -> Option<Part<'a>> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
        let entry = zip.by_name(path).ok()?;
        if entry.encrypted() {
            return None;
        }
        let start = usize::try_from(entry.data_start()?).ok()?;
        let len = usize::try_from(entry.compressed_size()).ok()?;
        let data = bytes.get(start..start.checked_add(len)?)?;
        let inner = match entry.compression() {
            zip::CompressionMethod::Stored => PartReader::Stored(data),
            zip::CompressionMethod::Deflated => {
                PartReader::Deflated(Box::new(flate2::bufread::DeflateDecoder::new(data)))
            }
            _ => return None,
        };
        Some(Part {
            inner,
            crc: crc32fast::Hasher::new(),
            expected_crc: entry.crc32(),
            expected_size: entry.size(),
            read: 0,
        })
    }

    /// Reads into `buf`; 0 at the end of a sound part; `GiveUp` on a damaged one.
    fn read(&mut self, buf: &mut [u8]) -> R<usize> {
        let n = match &mut self.inner {
            PartReader::Stored(data) => data.read(buf),
            PartReader::Deflated(d) => d.read(buf),
        }
        .map_err(|_| GiveUp)?;
        self.read += n as u64;
        if self.read > self.expected_size {
            return Err(GiveUp);
        }
        self.crc.update(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            let crc = std::mem::take(&mut self.crc).finalize();
            if self.read != self.expected_size || crc != self.expected_crc {
                return Err(GiveUp);
            }
        }
        Ok(n)
    }
}

/// A window on a part's XML: the bytes not yet scanned, refilled as the scan needs.
struct Window<'a> {
    part: Part<'a>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
}

/// An element larger than this is left to calamine (Excel keeps a cell's text to 32 767
/// characters).
const MAX_ELEMENT: usize = 16 << 20;

impl<'a> Window<'a> {
    fn new(part: Part<'a>) -> Window<'a> {
        Window {
            part,
            buf: vec![0; 1 << 18],
            pos: 0,
            end: 0,
            eof: false,
        }
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Reads more: false at the end of the part.
    fn more(&mut self) -> R<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_ELEMENT {
                return Err(GiveUp);
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.part.read(&mut self.buf[self.end..])?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.end += n;
        Ok(true)
    }

    /// Runs `scan` on the unscanned bytes until it has what it needs (`Some(n)`: `n` bytes
    /// used), reading more while it asks for more (`None`).
    fn take<T>(&mut self, mut scan: impl FnMut(&[u8]) -> R<Option<(T, usize)>>) -> R<T> {
        loop {
            if let Some((t, n)) = scan(self.rest())? {
                self.pos += n;
                return Ok(t);
            }
            if !self.more()? {
                return Err(GiveUp);
            }
        }
    }
}

/// A tag of the XML, its name without attributes; the attributes are read on demand.
#[derive(Clone, Copy)]
enum Tag<'b> {
    Open {
        name: &'b [u8],
        attrs: &'b [u8],
        /// The values of the attributes `r`, `s` and `t` (a row's and a cell's), read on the
        /// way.
        rst: [Option<&'b [u8]>; 3],
        empty: bool,
    },
    Close(&'b [u8]),
}

/// A byte of the element and attribute names this reader reads itself.
fn plain_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The tag at the start of `s` (which starts with `<`) and its length; `Ok(None)` when `s`
/// ends first. Processing instructions, comments, CDATA and prefixed names give up.
#[inline(always)]
fn tag(s: &[u8]) -> R<Option<(Tag<'_>, usize)>> {
    debug_assert_eq!(s.first(), Some(&b'<'));
    let Some(&b) = s.get(1) else {
        return Ok(None);
    };
    let close = b == b'/';
    let name_start = 1 + close as usize;
    let mut i = name_start;
    while i < s.len() && !is_space(s[i]) && s[i] != b'>' && s[i] != b'/' {
        i += 1;
    }
    if i == s.len() {
        return Ok(None);
    }
    let name = &s[name_start..i];
    // Plain names only: calamine's XML parser reads a quote anywhere in a tag as the start of
    // a quoted value, and prefixes, `<!` and `<?` are left to it.
    if name.is_empty() || !name.iter().all(|&b| plain_name_byte(b)) {
        return Err(GiveUp);
    }
    if close {
        // `</name>` only: white space before `>` is left to calamine.
        return match s.get(i) {
            None => Ok(None),
            Some(b'>') => Ok(Some((Tag::Close(name), i + 1))),
            Some(_) => Err(GiveUp),
        };
    }
    let attrs_start = i;
    let mut rst = [None; 3];
    loop {
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        match s.get(i) {
            None => return Ok(None),
            Some(b'>') => {
                let attrs = &s[attrs_start..i];
                utf8(attrs)?;
                return Ok(Some((
                    Tag::Open {
                        name,
                        attrs,
                        rst,
                        empty: false,
                    },
                    i + 1,
                )));
            }
            Some(b'/') => {
                return match s.get(i + 1) {
                    None => Ok(None),
                    Some(b'>') => {
                        let attrs = &s[attrs_start..i];
                        utf8(attrs)?;
                        Ok(Some((
                            Tag::Open {
                                name,
                                attrs,
                                rst,
                                empty: true,
                            },
                            i + 2,
                        )))
                    }
                    Some(_) => Err(GiveUp),
                };
            }
            Some(_) => {}
        }
        // name = "value" or name = 'value'
        let key = i;
        while i < s.len() && !is_space(s[i]) && !matches!(s[i], b'=' | b'>' | b'/' | b'<') {
            i += 1;
        }
        if i == key || !s[key..i].iter().all(|&b| plain_name_byte(b) || b == b':') {
            return Err(GiveUp);
        }
        let slot = match &s[key..i] {
            b"r" => Some(0),
            b"s" => Some(1),
            b"t" => Some(2),
            _ => None,
        };
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        match s.get(i) {
            None => return Ok(None),
            Some(b'=') => i += 1,
            Some(_) => return Err(GiveUp),
        }
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        let Some(&q) = s.get(i) else {
            return Ok(None);
        };
        if q != b'"' && q != b'\'' {
            return Err(GiveUp);
        }
        match find(q, &s[i + 1..]) {
            None => return Ok(None),
            Some(n) => {
                let value = &s[i + 1..i + 1 + n];
                if value.contains(&b'<') {
                    return Err(GiveUp);
                }
                if let Some(k) = slot {
                    // calamine reads these raw: an entity in them is left to it.
                    if rst[k].is_some() || value.contains(&b'&') {
                        return Err(GiveUp);
                    }
                    rst[k] = Some(value);
                }
                i += n + 2;
            }
        }
        if let Some(&b) = s.get(i)
            && !is_space(b)
            && b != b'>'
            && b != b'/'
        {
            return Err(GiveUp);
        }
    }
}

/// The raw value of attribute `key` (unprefixed) among `attrs`, which [`tag`] checked; gives
/// up on a value holding `&` (calamine reads these attributes raw) and on a repeated key.
fn attr<'b>(attrs: &'b [u8], key: &[u8]) -> R<Option<&'b [u8]>> {
    let mut found = None;
    let mut i = 0;
    while i < attrs.len() {
        while i < attrs.len() && is_space(attrs[i]) {
            i += 1;
        }
        if i == attrs.len() {
            break;
        }
        let k = i;
        while !is_space(attrs[i]) && attrs[i] != b'=' {
            i += 1;
        }
        let name = &attrs[k..i];
        while attrs[i] != b'"' && attrs[i] != b'\'' {
            i += 1;
        }
        let q = attrs[i];
        let n = memchr::memchr(q, &attrs[i + 1..]).ok_or(GiveUp)?;
        let value = &attrs[i + 1..i + 1 + n];
        i += n + 2;
        if name == key {
            if found.is_some() || value.contains(&b'&') {
                return Err(GiveUp);
            }
            found = Some(value);
        }
    }
    Ok(found)
}

/// Where `b` first is in `s`: the first bytes by hand (tags follow each other closely, and
/// attribute values are short), the rest with `memchr`.
#[inline]
fn find(b: u8, s: &[u8]) -> Option<usize> {
    const HEAD: usize = 16;
    if let Some(i) = s.iter().take(HEAD).position(|&x| x == b) {
        return Some(i);
    }
    if s.len() <= HEAD {
        return None;
    }
    memchr::memchr(b, &s[HEAD..]).map(|n| n + HEAD)
}

/// Text up to the next `<`: the text and where the `<` is; `None` when `s` ends first. Text
/// that is not UTF-8 gives up, even where it is passed over (calamine's parser decodes it).
fn text(s: &[u8]) -> R<Option<(&[u8], usize)>> {
    match find(b'<', s) {
        Some(n) => {
            utf8(&s[..n])?;
            Ok(Some((&s[..n], n)))
        }
        None => Ok(None),
    }
}

/// How a tag changes the number of elements open: an open tag one more, a close tag one less.
fn nesting(t: &Tag<'_>) -> i32 {
    match t {
        Tag::Open { empty: false, .. } => 1,
        Tag::Open { empty: true, .. } => 0,
        Tag::Close(_) => -1,
    }
}

/// `depth` changed by `delta`; gives up on a close tag with no element open, which
/// calamine's parser refuses.
fn nest(depth: u32, delta: i32) -> R<u32> {
    depth.checked_add_signed(delta).ok_or(GiveUp)
}

/// The next tag and how many bytes of `s` it ends at; the text before it is passed over
/// (giving up on an entity in it, which calamine's parser would resolve or refuse). `Ok(None)`:
/// `s` ends first.
fn next_tag(s: &[u8]) -> R<Option<(Tag<'_>, usize)>> {
    let Some((skipped, n)) = text(s)? else {
        return Ok(None);
    };
    if skipped.contains(&b'&') {
        return Err(GiveUp);
    }
    Ok(tag(&s[n..])?.map(|(t, m)| (t, n + m)))
}

/// The text of an element up to its close tag `</name>`, which must follow it, and how many
/// bytes of `s` that takes. `Ok(None)`: `s` ends first.
fn content<'b>(s: &'b [u8], name: &[u8]) -> R<Option<(&'b [u8], usize)>> {
    let Some((raw, n)) = text(s)? else {
        return Ok(None);
    };
    let Some((t, m)) = tag(&s[n..])? else {
        return Ok(None);
    };
    if !matches!(t, Tag::Close(c) if c == name) {
        return Err(GiveUp);
    }
    references(raw)?;
    Ok(Some((raw, n + m)))
}

/// Gives up on an `&` in text that does not start a reference calamine's parser reads: one of
/// the five named entities or a decimal or hexadecimal character reference, closed by `;`. The
/// parser refuses a malformed one even in text calamine passes over, such as a formula.
fn references(raw: &[u8]) -> R<()> {
    let mut rest = raw;
    while let Some(at) = memchr::memchr(b'&', rest) {
        let after = &rest[at + 1..];
        let semi = find(b';', after).ok_or(GiveUp)?;
        let name = &after[..semi];
        let ok = match name {
            b"amp" | b"lt" | b"gt" | b"quot" | b"apos" => true,
            [b'#', b'x', hex @ ..] => !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit),
            [b'#', dec @ ..] => !dec.is_empty() && dec.iter().all(u8::is_ascii_digit),
            _ => false,
        };
        if !ok {
            return Err(GiveUp);
        }
        rest = &after[semi + 1..];
    }
    Ok(())
}

/// The next tag before a part's data, or `None` for a processing instruction (the XML
/// declaration), and how many bytes of `s` it ends at; the text before it is passed over.
/// `Ok(None)`: `s` ends first.
fn prolog_tag(s: &[u8]) -> R<Option<(Option<Tag<'_>>, usize)>> {
    let Some((_, n)) = text(s)? else {
        return Ok(None);
    };
    let rest = &s[n..];
    if rest.starts_with(b"<?") {
        return match memchr::memmem::find(rest, b"?>") {
            Some(m) => declaration(&rest[..m]).map(|()| Some((None, n + m + 2))),
            None => Ok(None),
        };
    }
    Ok(tag(rest)?.map(|(t, m)| (Some(t), n + m)))
}

/// A processing instruction before the data (`<?xml version="1.0" encoding="UTF-8"?>`):
/// gives up on one that names another encoding, which calamine's parser would decode with,
/// and on bytes that are not UTF-8.
fn declaration(pi: &[u8]) -> R<()> {
    utf8(pi)?;
    let lower = pi.to_ascii_lowercase();
    if memchr::memmem::find(&lower, b"encoding").is_none()
        || memchr::memmem::find(&lower, b"encoding=\"utf-8\"").is_some()
        || memchr::memmem::find(&lower, b"encoding='utf-8'").is_some()
    {
        Ok(())
    } else {
        Err(GiveUp)
    }
}

/// Gives up on bytes that are not UTF-8.
#[inline]
fn utf8(b: &[u8]) -> R<()> {
    if b.is_ascii() || std::str::from_utf8(b).is_ok() {
        Ok(())
    } else {
        Err(GiveUp)
    }
}

/// Decodes XML text as calamine's string reader does for the plain cases: the five named
/// entities; gives up on character references, unknown entities, carriage returns (XML's
/// line-end rules) and invalid UTF-8.
fn decode_into(raw: &[u8], out: &mut String) -> R<()> {
    if raw.contains(&b'\r') {
        return Err(GiveUp);
    }
    let mut rest = raw;
    while let Some(n) = memchr::memchr(b'&', rest) {
        out.push_str(std::str::from_utf8(&rest[..n]).map_err(|_| GiveUp)?);
        let after = &rest[n + 1..];
        let semi = memchr::memchr(b';', after).ok_or(GiveUp)?;
        out.push(match &after[..semi] {
            b"amp" => '&',
            b"lt" => '<',
            b"gt" => '>',
            b"quot" => '"',
            b"apos" => '\'',
            _ => return Err(GiveUp),
        });
        rest = &after[semi + 1..];
    }
    out.push_str(std::str::from_utf8(rest).map_err(|_| GiveUp)?);
    Ok(())
}

/// Excel's `_xHHHH_` escape, which calamine decodes: left to calamine.
fn has_excel_escape(s: &str) -> bool {
    let b = s.as_bytes();
    memchr::memmem::find_iter(b, b"_x").any(|i| {
        b.len() >= i + 7 && b[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit) && b[i + 6] == b'_'
    })
}

/// The text of a string item (`<si>` or `<is>`, whose open tag `s` starts after) up to its
/// close tag `closing`, as calamine's `read_string` gives it: every `<t>` outside phonetic runs
/// (`<rPh>`), each trimmed of ASCII white space unless `xml:space="preserve"`, other elements
/// and text ignored. `Ok(None)`: `s` ends first.
fn string_item(s: &[u8], closing: &[u8], out: &mut String) -> R<Option<usize>> {
    let start_len = out.len();
    let mut phonetic = false;
    let mut i = 0;
    let mut piece = String::new();
    // Elements open inside the item: its close tag must come at none, and no close tag
    // before it may close the item itself.
    let mut depth = 0u32;
    loop {
        let Some((t, n)) = next_tag(&s[i..])? else {
            return Ok(None);
        };
        i += n;
        if matches!(t, Tag::Close(name) if name == closing) {
            if depth != 0 || has_excel_escape(&out[start_len..]) {
                return Err(GiveUp);
            }
            return Ok(Some(i));
        }
        depth = nest(depth, nesting(&t))?;
        match t {
            Tag::Open {
                name: b"rPh",
                empty,
                ..
            } => phonetic = !empty,
            Tag::Close(b"rPh") => phonetic = false,
            Tag::Open {
                name: b"t",
                attrs,
                empty,
                ..
            } if !phonetic => {
                if empty {
                    continue;
                }
                let preserve = attr(attrs, b"xml:space")? == Some(b"preserve");
                let Some((raw, n)) = content(&s[i..], b"t")? else {
                    return Ok(None);
                };
                i += n;
                depth -= 1; // `</t>` closed it
                piece.clear();
                decode_into(raw, &mut piece)?;
                out.push_str(if preserve {
                    &piece
                } else {
                    piece.trim_matches([' ', '\t', '\r', '\n'])
                });
            }
            _ => {}
        }
    }
}
/// An attribute value with its entities replaced, as calamine's `decode_attr`.
fn unescape(raw: &str) -> Option<String> {
    quick_xml::escape::unescape(raw)
        .ok()
        .map(|c| c.into_owned())
}

/// The values of `keys` on every `element` of a small XML part (attribute names compared
/// without their prefix, values unescaped), or `None` when the part does not parse.
fn attrs<const N: usize>(
    xml: &str,
    element: &str,
    keys: &[&str; N],
) -> Option<Vec<[Option<String>; N]>> {
    use quick_xml::events::Event;
    let mut found = Vec::new();
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == element => {
                let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
                for a in e.attributes() {
                    let a = a.ok()?;
                    for (k, v) in keys.iter().zip(values.iter_mut()) {
                        if a.key.local_name().as_ref() == *k {
                            *v = Some(unescape(&a.value)?);
                        }
                    }
                }
                found.push(values);
            }
            Ok(Event::Eof) => return Some(found),
            Err(_) => return None,
            _ => {}
        }
    }
}

/// The shared strings (`xl/sharedStrings.xml`), as calamine reads them: one string per `<si>`
/// of the `<sst>`.
fn read_shared_strings(part: Part<'_>) -> R<(String, Vec<usize>)> {
    let mut w = Window::new(part);
    let mut text_all = String::new();
    let mut ends = Vec::new();
    // Up to the `<sst>` tag.
    loop {
        let found = w.take(|s| {
            Ok(prolog_tag(s)?.map(|(t, n)| (matches!(t, Some(Tag::Open { name: b"sst", .. })), n)))
        })?;
        if found {
            break;
        }
    }
    enum Next {
        Item { empty: bool },
        End,
        Other,
    }
    loop {
        // The next tag: `<si>` reads a string, `</sst>` ends, others are passed over.
        let next = w.take(|s| {
            Ok(next_tag(s)?.map(|(t, n)| {
                let next = match t {
                    Tag::Open {
                        name: b"si", empty, ..
                    } => Next::Item { empty },
                    Tag::Close(b"sst") => Next::End,
                    _ => Next::Other,
                };
                (next, n)
            }))
        })?;
        match next {
            Next::End => break,
            Next::Item { empty: true } => ends.push(text_all.len()),
            Next::Item { empty: false } => {
                w.take(|s| {
                    let before = text_all.len();
                    match string_item(s, b"si", &mut text_all)? {
                        Some(n) => Ok(Some(((), n))),
                        None => {
                            text_all.truncate(before);
                            Ok(None)
                        }
                    }
                })?;
                ends.push(text_all.len());
            }
            Next::Other => {}
        }
    }
    Ok((text_all, ends))
}

/// The date kind of each cell style (`cellXfs`), as calamine decides it: a custom number
/// format by its code, a built-in one by its id.
fn read_formats(xml: &str) -> Option<Vec<Fmt>> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut custom: HashMap<String, String> = HashMap::new();
    let mut formats = Vec::new();
    let (mut in_xfs, mut in_fmts) = (false, false);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => match e.local_name().as_ref() {
                "numFmts" => in_fmts = true,
                "numFmt" if in_fmts => {
                    let (mut id, mut code) = (None, None);
                    for a in e.attributes() {
                        let a = a.ok()?;
                        match a.key.as_ref() {
                            "numFmtId" => id = Some(a.value.to_string()),
                            "formatCode" => code = Some(unescape(&a.value)?),
                            _ => {}
                        }
                    }
                    if let (Some(id), Some(code)) = (id, code) {
                        custom.insert(id, code);
                    }
                }
                "cellXfs" => in_xfs = true,
                "xf" if in_xfs => {
                    let mut id = None;
                    for a in e.attributes() {
                        let a = a.ok()?;
                        if a.key.as_ref() == "numFmtId" {
                            id = Some(a.value.to_string());
                        }
                    }
                    formats.push(match id {
                        None => Fmt::Other,
                        Some(id) => match custom.get(&id) {
                            Some(code) => custom_format(code),
                            None => builtin_format(&id),
                        },
                    });
                }
                _ => {}
            },
            Ok(Event::End(e)) if e.local_name().as_ref() == "cellXfs" => in_xfs = false,
            Ok(Event::End(e)) if e.local_name().as_ref() == "numFmts" => in_fmts = false,
            Ok(Event::Eof) => return Some(formats),
            Err(_) => return None,
            _ => {}
        }
    }
}

// The two functions below follow calamine 0.38's `formats.rs` (MIT, Johann Tuffe), which it
// does not export: a cell's number is a date when its format says so.

/// Whether a custom number format shows a date, a duration or neither.
fn custom_format(format: &str) -> Fmt {
    let mut escaped = false;
    let mut is_quote = false;
    let mut brackets = 0u8;
    let mut prev = ' ';
    let mut hms = false;
    let mut ap = false;
    for s in format.chars() {
        match (s, escaped, is_quote, ap, brackets) {
            (_, true, ..) => escaped = false,
            ('_' | '\\' | '*', ..) => escaped = true,
            ('"', _, true, _, _) => is_quote = false,
            (_, _, true, _, _) => (),
            ('"', _, _, _, _) => is_quote = true,
            (';', ..) => return Fmt::Other,
            ('[', ..) => brackets += 1,
            (']', .., 1) if hms => return Fmt::TimeDelta,
            (']', ..) => brackets = brackets.saturating_sub(1),
            ('a' | 'A', _, _, false, 0) => ap = true,
            ('p' | 'm' | '/' | 'P' | 'M', _, _, true, 0) => return Fmt::DateTime,
            ('d' | 'm' | 'h' | 'y' | 's' | 'D' | 'M' | 'H' | 'Y' | 'S', _, _, false, 0) => {
                return Fmt::DateTime;
            }
            _ => {
                if !(hms && s.eq_ignore_ascii_case(&prev)) {
                    hms = prev == '[' && matches!(s, 'm' | 'h' | 's' | 'M' | 'H' | 'S');
                }
            }
        }
        prev = s;
    }
    Fmt::Other
}

/// Whether a built-in number format (by id) shows a date, a duration or neither.
fn builtin_format(id: &str) -> Fmt {
    match id {
        "14" | "15" | "16" | "17" | "18" | "19" | "20" | "21" | "22" | "45" | "47" => Fmt::DateTime,
        "27" | "28" | "29" | "30" | "31" | "32" | "33" | "34" | "35" | "36" | "50" | "51"
        | "52" | "53" | "54" | "55" | "56" | "57" | "58" => Fmt::DateTime,
        "46" => Fmt::TimeDelta,
        _ => Fmt::Other,
    }
}

/// A cell reference's letters and digits (`B17`, lowercase letters too) as a 0-based (row,
/// column); `None` for anything calamine would read differently or refuse.
fn cell_ref(r: &[u8]) -> Option<(u32, u32)> {
    let letters = r.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let digits = &r[letters..];
    if !(1..=3).contains(&letters) || digits.is_empty() || digits.len() > 7 {
        return None;
    }
    let col = r[..letters].iter().fold(0u32, |c, b| {
        c * 26 + (b.to_ascii_uppercase() - b'A') as u32 + 1
    });
    Some((row_number(digits)?, col - 1))
}

/// A row number's digits as a 0-based row.
fn row_number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 7 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits.iter().fold(0u32, |n, d| n * 10 + (d - b'0') as u32);
    n.checked_sub(1)
}

/// A plain decimal number (`-12`, `3.5`, `1E-3`): what calamine parses the same way as Rust;
/// anything else is left to it.
fn plain_number(v: &[u8]) -> Option<f64> {
    let mut i = usize::from(v.first() == Some(&b'-'));
    let int = v[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    if int == 0 {
        return None;
    }
    i += int;
    if v.get(i) == Some(&b'.') {
        let frac = v[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if frac == 0 {
            return None;
        }
        i += 1 + frac;
    }
    if matches!(v.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(v.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = v[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exp == 0 {
            return None;
        }
        i += exp;
    }
    if i != v.len() {
        return None;
    }
    // The parser calamine uses (already built for it): the same bits by construction.
    fast_float2::parse(v).ok()
}

/// The cells of one worksheet in the order of its XML, as calamine's `next_cell` gives them.
pub struct Cells<'w> {
    wb: &'w Workbook<'w>,
    w: Window<'w>,
    /// The last row the `<dimension>` declares (0-based), 0 when none.
    declared: u32,
    row: u32,
    col: u32,
    started: bool,
    /// Elements open around the scan: calamine's XML parser refuses a close tag when none is.
    depth: u32,
    done: bool,
    piece: String,
}

/// What a cell's `t` attribute says.
#[derive(Clone, Copy, PartialEq)]
enum CellType {
    Number,
    Shared,
    Bool,
    Str,
    Date,
    Inline,
    Error,
}

impl<'w> Cells<'w> {
    fn new(wb: &'w Workbook<'w>, part: Part<'w>) -> Cells<'w> {
        Cells {
            wb,
            w: Window::new(part),
            declared: 0,
            row: 0,
            col: 0,
            started: false,
            depth: 0,
            done: false,
            piece: String::new(),
        }
    }

    /// Reads up to the sheet's data; then the last row the sheet declares (0-based; 0 when it
    /// declares none), as calamine's `dimensions().end.0`.
    pub fn start(&mut self) -> R<u32> {
        if self.started {
            return Ok(self.declared);
        }
        self.started = true;
        loop {
            let next = self.w.take(|s| {
                let Some((t, n)) = prolog_tag(s)? else {
                    return Ok(None);
                };
                let delta = t.as_ref().map_or(0, nesting);
                let what = match t {
                    Some(Tag::Open {
                        name: b"dimension",
                        attrs,
                        ..
                    }) => {
                        let r = attr(attrs, b"ref")?.ok_or(GiveUp)?;
                        let last = match memchr::memchr(b':', r) {
                            Some(c) => {
                                cell_ref(&r[..c]).ok_or(GiveUp)?;
                                cell_ref(&r[c + 1..]).ok_or(GiveUp)?
                            }
                            None => cell_ref(r).ok_or(GiveUp)?,
                        };
                        Some(Err(last.0))
                    }
                    Some(Tag::Open {
                        name: b"sheetData",
                        empty,
                        ..
                    }) => Some(Ok(empty)),
                    _ => None,
                };
                Ok(Some(((what, delta), n)))
            })?;
            let (next, delta) = next;
            self.depth = nest(self.depth, delta)?;
            match next {
                Some(Err(last)) => self.declared = last,
                Some(Ok(empty)) => {
                    self.done = empty;
                    return Ok(self.declared);
                }
                None => {}
            }
        }
    }

    /// The next cell: its 0-based (row, column) and value; `None` after the last.
    pub fn next_cell(&mut self) -> R<Option<(u32, u32, DataRef<'w>)>> {
        self.start()?;
        let Cells {
            wb,
            w,
            row,
            col,
            done,
            piece,
            depth,
            ..
        } = self;
        let wb: &'w Workbook<'w> = wb;
        loop {
            if *done {
                return Ok(None);
            }
            enum Step<'w> {
                RowStart(Option<u32>, bool),
                RowEnd,
                Cell(u32, u32, DataRef<'w>),
                Done,
                Other,
            }
            let (r, c) = (*row, *col);
            let step = w.take(|s| {
                let Some((t, n)) = next_tag(s)? else {
                    return Ok(None);
                };
                let step = match t {
                    Tag::Open {
                        name: b"row",
                        rst: [r, ..],
                        empty,
                        ..
                    } => {
                        let r = match r {
                            Some(r) => Some(row_number(r).ok_or(GiveUp)?),
                            None => None,
                        };
                        Step::RowStart(r, empty)
                    }
                    Tag::Close(b"row") => Step::RowEnd,
                    Tag::Open {
                        name: b"c",
                        rst: [at, style, ty],
                        empty,
                        ..
                    } => {
                        let (r, c) = match at {
                            Some(at) => cell_ref(at).ok_or(GiveUp)?,
                            None => (r, c),
                        };
                        let Some((value, k)) = cell(wb, &s[n..], style, ty, empty, piece)? else {
                            return Ok(None);
                        };
                        // A cell read is a whole element: the nesting is as before it.
                        return Ok(Some(((Step::Cell(r, c, value), 0), n + k)));
                    }
                    // An empty `<sheetData/>` ends the cells too: calamine reads it as an
                    // open and a close tag.
                    Tag::Close(b"sheetData")
                    | Tag::Open {
                        name: b"sheetData",
                        empty: true,
                        ..
                    } => Step::Done,
                    _ => Step::Other,
                };
                Ok(Some(((step, nesting(&t)), n)))
            })?;
            let (step, delta) = step;
            *depth = nest(*depth, delta)?;
            match step {
                Step::RowStart(r, empty) => {
                    if let Some(r) = r {
                        *row = r;
                    }
                    if empty {
                        *row += 1;
                        *col = 0;
                    }
                }
                Step::RowEnd => {
                    *row += 1;
                    *col = 0;
                }
                Step::Cell(r, c, value) => {
                    *col = c + 1;
                    return Ok(Some((r, c, value)));
                }
                Step::Done => *done = true,
                Step::Other => {}
            }
        }
    }
}

/// The value of a cell of type `ty` and date format `format` whose `<v>` holds `raw`.
fn v_value<'w>(
    wb: &'w Workbook<'w>,
    ty: CellType,
    format: Fmt,
    raw: &[u8],
    piece: &mut String,
) -> R<DataRef<'w>> {
    Ok(match ty {
        CellType::Inline => DataRef::Empty,
        _ if raw.is_empty() && !matches!(ty, CellType::Str | CellType::Date) => DataRef::Empty,
        CellType::Shared => {
            if raw.len() > 12 || !raw.iter().all(u8::is_ascii_digit) {
                return Err(GiveUp);
            }
            let idx = raw.iter().fold(0usize, |n, d| n * 10 + (d - b'0') as usize);
            DataRef::SharedString(wb.string(idx).ok_or(GiveUp)?)
        }
        CellType::Error => std::str::from_utf8(raw)
            .ok()
            .and_then(|e| e.parse::<calamine::CellErrorType>().ok())
            .map(DataRef::Error)
            .ok_or(GiveUp)?,
        CellType::Bool => match raw {
            b"0" | b"false" => DataRef::Bool(false),
            b"1" | b"true" => DataRef::Bool(true),
            _ => return Err(GiveUp),
        },
        CellType::Number => {
            let x = plain_number(raw).ok_or(GiveUp)?;
            match format {
                Fmt::Other => DataRef::Float(x),
                Fmt::DateTime => DataRef::DateTime(ExcelDateTime::new(
                    x,
                    ExcelDateTimeType::DateTime,
                    wb.is_1904,
                )),
                Fmt::TimeDelta => DataRef::DateTime(ExcelDateTime::new(
                    x,
                    ExcelDateTimeType::TimeDelta,
                    wb.is_1904,
                )),
            }
        }
        CellType::Str | CellType::Date => {
            piece.clear();
            decode_into(raw, piece)?;
            if ty == CellType::Date {
                DataRef::DateTimeIso(piece.clone())
            } else if has_excel_escape(piece) {
                return Err(GiveUp);
            } else {
                DataRef::String(piece.clone())
            }
        }
    })
}

/// A cell's value from its children (`s` starts after its open tag, whose attributes `s` and
/// `t` are `style` and `ty`) and how many bytes of `s` they take up to `</c>`; `Ok(None)` when `s` ends first.
fn cell<'w>(
    wb: &'w Workbook<'w>,
    s: &[u8],
    style: Option<&[u8]>,
    ty: Option<&[u8]>,
    empty: bool,
    piece: &mut String,
) -> R<Option<(DataRef<'w>, usize)>> {
    let ty = match ty {
        None | Some(b"n") => CellType::Number,
        Some(b"s") => CellType::Shared,
        Some(b"b") => CellType::Bool,
        Some(b"str") => CellType::Str,
        Some(b"d") => CellType::Date,
        Some(b"inlineStr" | b"is") => CellType::Inline,
        Some(b"e") => CellType::Error,
        Some(_) => return Err(GiveUp),
    };
    let format = match style {
        None => Fmt::Other,
        Some(style) => {
            if style.is_empty() || style.len() > 9 || !style.iter().all(u8::is_ascii_digit) {
                return Err(GiveUp);
            }
            let i = style
                .iter()
                .fold(0usize, |n, d| n * 10 + (d - b'0') as usize);
            wb.formats.get(i).copied().unwrap_or(Fmt::Other)
        }
    };
    let mut value = DataRef::Empty;
    if empty {
        return Ok(Some((value, 0)));
    }
    // The usual shape, `<v>…</v></c>`, without the general loop below.
    if let Some(rest) = s.strip_prefix(b"<v>")
        && let Some(n) = find(b'<', rest)
        && rest[n..].starts_with(b"</v></c>")
    {
        utf8(&rest[..n])?;
        references(&rest[..n])?;
        return Ok(Some((
            v_value(wb, ty, format, &rest[..n], piece)?,
            3 + n + 8,
        )));
    }
    let mut i = 0;
    loop {
        let Some((t, n)) = next_tag(&s[i..])? else {
            return Ok(None);
        };
        i += n;
        let content = |i: &mut usize, name: &[u8]| -> R<Option<&[u8]>> {
            Ok(content(&s[*i..], name)?.map(|(raw, n)| {
                *i += n;
                raw
            }))
        };
        match t {
            Tag::Close(b"c") => return Ok(Some((value, i))),
            Tag::Open {
                name: b"v", empty, ..
            } => {
                let raw: &[u8] = if empty {
                    b""
                } else {
                    match content(&mut i, b"v")? {
                        Some(raw) => raw,
                        None => return Ok(None),
                    }
                };
                value = v_value(wb, ty, format, raw, piece)?;
            }
            Tag::Open {
                name: b"f", empty, ..
            } => {
                if !empty && content(&mut i, b"f")?.is_none() {
                    return Ok(None);
                }
                value = DataRef::Empty;
            }
            Tag::Open {
                name: b"is", empty, ..
            } => {
                piece.clear();
                if !empty {
                    match string_item(&s[i..], b"is", piece)? {
                        Some(n) => i += n,
                        None => return Ok(None),
                    }
                }
                value = DataRef::String(piece.clone());
            }
            _ => return Err(GiveUp),
        }
    }
}

// Support for the tests and the `xlsx_cells` fuzz target, which compare this reader with
// calamine on one-sheet workbooks.

#[doc(hidden)]
pub const TEST_STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<numFmts count="2"><numFmt numFmtId="164" formatCode="dd/mm/yyyy"/><numFmt numFmtId="165" formatCode="[h]:mm"/></numFmts>
<dxfs><dxf><numFmt numFmtId="166" formatCode="yyyy"/></dxf></dxfs>
<cellXfs count="5"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="166"/></cellXfs>
</styleSheet>"#;

#[doc(hidden)]
pub const TEST_STRINGS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="6" uniqueCount="6">
<si><t>Account</t></si><si><t xml:space="preserve">  Acme &amp; Co  </t></si><si><t>  trimmed
</t></si><si><r><rPr><b/></rPr><t>Rich</t></r><r><t xml:space="preserve"> text</t></r><rPh sb="0" eb="1"><t>phonetic</t></rPh></si><si/><si><t/></si>
</sst>"#;

/// An .xlsx of one sheet `S` whose `<sheetData>` holds `data` (or whose whole part is `data`
/// when it starts with `<?` or `<worksheet`, after a byte-order mark if any).
#[doc(hidden)]
pub fn test_package(data: &[u8], strings: Option<&str>) -> Vec<u8> {
    let whole = data.strip_prefix("\u{feff}".as_bytes()).unwrap_or(data);
    let sheet = if whole.starts_with(b"<?") || whole.starts_with(b"<worksheet") {
        data.to_vec()
    } else {
        let mut sheet = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:D9"/><sheetData>"#.to_vec();
        sheet.extend_from_slice(data);
        sheet.extend_from_slice(b"</sheetData></worksheet>");
        sheet
    };
    let mut parts = vec![
        ("[Content_Types].xml", br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#.to_vec()),
        ("_rels/.rels", br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_vec()),
        ("xl/workbook.xml", br#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><workbookPr date1904="1"/><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#.to_vec()),
        ("xl/_rels/workbook.xml.rels", br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_vec()),
        ("xl/styles.xml", TEST_STYLES.as_bytes().to_vec()),
        ("xl/worksheets/sheet1.xml", sheet),
    ];
    if let Some(s) = strings {
        parts.push(("xl/sharedStrings.xml", s.as_bytes().to_vec()));
    }
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, text) in parts {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("a part in memory");
        std::io::Write::write_all(&mut zip, &text).expect("a part in memory");
    }
    zip.finish().expect("a package in memory").into_inner()
}

/// The declared last row and the rows of every sheet, or the error, as text.
#[doc(hidden)]
pub fn read_all(book: &mut super::book::Book<'_>) -> Vec<Result<(u32, Vec<String>), String>> {
    book.sheets()
        .into_iter()
        .map(|s| {
            let (mut declared, mut rows) = (0, Vec::new());
            book.for_each_row(&s.name, &mut |n| declared = n, &mut |row, cells| {
                rows.push(format!("{row}: {cells:?}"));
                std::ops::ControlFlow::Continue(())
            })
            .map(|()| (declared, rows))
            .map_err(|e| e.to_string())
        })
        .collect()
}

/// Whether this reader reads the whole test sheet `S` without giving up.
#[doc(hidden)]
pub fn read_alone(wb: &Workbook<'_>) -> bool {
    let mut cells = wb.cells("S").expect("the test sheet");
    loop {
        match cells.next_cell() {
            Ok(Some(_)) => {}
            Ok(None) => return true,
            Err(GiveUp) => return false,
        }
    }
}

/// Where the data of [`compare_with_calamine`] switches from the sheet to the shared strings.
#[doc(hidden)]
pub const TEST_STRINGS_AFTER: &[u8] = b"\0sst\0";

/// Reads a one-sheet workbook whose `<sheetData>` holds `data` with calamine alone and with
/// this reader first, and says how they differ; `Ok(true)` when this reader read it all
/// itself. What follows [`TEST_STRINGS_AFTER`] in `data`, if it is there, is the whole shared
/// strings part instead of [`TEST_STRINGS`]. A panic of this reader is a difference; one of
/// calamine's is not (this reader may read what calamine cannot).
#[doc(hidden)]
pub fn compare_with_calamine(data: &[u8]) -> Result<bool, String> {
    use crate::import::book::{Book, Format};
    use crate::panics::contain;
    let (sheet, strings) = match memchr::memmem::find(data, TEST_STRINGS_AFTER) {
        Some(at) => (
            &data[..at],
            String::from_utf8_lossy(&data[at + TEST_STRINGS_AFTER.len()..]).into_owned(),
        ),
        None => (data, TEST_STRINGS.to_string()),
    };
    let bytes = test_package(sheet, Some(&strings));
    let wb = contain(|| Workbook::open(&bytes))
        .map_err(|p| format!("this reader panicked on the shared strings: {p}"))?;
    // Shared strings this reader does not read are left to calamine with the whole workbook.
    let Some(wb) = wb else {
        return Ok(false);
    };
    let alone = contain(|| read_alone(&wb)).map_err(|p| format!("this reader panicked: {p}"))?;
    let read = |fast: bool| {
        contain(|| {
            let mut book = Book::open("t.xlsx", Format::Xlsx, &bytes).map_err(|e| e.to_string())?;
            if fast {
                book.use_fast_reader(Workbook::open(&bytes).map(std::sync::Arc::new));
            }
            Ok::<_, String>(read_all(&mut book))
        })
    };
    match (read(false), read(true)) {
        (Ok(a), Ok(b)) if a != b => Err(format!("calamine: {a:?}\nkam: {b:?}")),
        (Ok(_), Err(p)) => Err(format!("panicked with this reader only: {p}")),
        _ => Ok(alone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::book::{Book, Format, detect};
    use std::sync::Arc;

    /// Reads every sheet with calamine alone and with kam's reader first; they must agree.
    fn same_both_ways<'a>(file: &str, bytes: &'a [u8]) -> Option<Workbook<'a>> {
        let format = detect(file, bytes).ok()?;
        let mut plain = Book::open(file, format, bytes).ok()?;
        let mut fast = Book::open(file, format, bytes).unwrap();
        let wb = Workbook::open(bytes).map(Arc::new);
        fast.use_fast_reader(wb.clone());
        assert_eq!(read_all(&mut plain), read_all(&mut fast), "{file}");
        wb.is_some()
            .then(|| Workbook::open(bytes).expect("opens again"))
    }

    #[test]
    fn every_xlsx_fixture_reads_the_same_as_with_calamine_alone() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut fast = 0;
        for dir in ["valid", "invalid"] {
            for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "xlsx") {
                    let bytes = std::fs::read(&path).unwrap();
                    let file = path.display().to_string();
                    fast += same_both_ways(&file, &bytes).is_some() as usize;
                }
            }
        }
        assert!(same_both_ways("sample.xlsx", crate::SAMPLE_WORKBOOK).is_some());
        // Every fixture kam wrote (all but the damaged, encrypted and non-zip ones).
        assert!(fast >= 20, "{fast}");
    }

    #[test]
    fn hand_written_sheets_read_the_same_as_with_calamine_alone() {
        // (sheet data, whether kam's reader reads it all itself)
        let cases: &[(&str, bool)] = &[
            (
                r#"<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c><c r="D1" t="s"><v>3</v></c></row>"#,
                true,
            ),
            (
                r#"<row r="2"><c r="A2" t="s"><v>4</v></c><c r="B2" t="s"><v>5</v></c><c r="C2"><v>-1.5E-3</v></c><c r="D2" s="1"><v>45000</v></c></row>"#,
                true,
            ),
            (
                r#"<row r="3" spans="1:4"><c r="A3" s="2"><v>45000.5</v></c><c r="B3" s="3"><v>1.25</v></c><c r="C3" s="4"><v>7</v></c><c r="D3" s="99"><v>8</v></c></row>"#,
                true,
            ),
            (
                r#"<row r="4"><c r="A4" t="b"><v>1</v></c><c r="B4" t="b"><v>0</v></c><c r="C4" t="str"><f>A1&amp;B1</f><v>x &lt; y</v></c><c r="D4" t="d"><v>2026-01-02T00:00:00</v></c></row>"#,
                true,
            ),
            (
                r#"<row r="5"><c r="A5" t="inlineStr"><is><t xml:space="preserve"> in line </t></is></c><c r="B5" t="inlineStr"><is><r><t>a</t></r><r><t>b</t></r></is></c><c r="C5"/><c r="D5" t="inlineStr"><is/></c></row>"#,
                true,
            ),
            // No references: positions counted.
            (
                r#"<row><c t="s"><v>0</v></c><c><v>2</v></c></row><row><c><v>3</v></c></row><row r="9"/><row><c><v>4</v></c></row>"#,
                true,
            ),
            (
                r#"<row r="1"><c r="A1"><v></v></c><c r="B1" t="s"><v/></c><c r="C1" t="str"><v/></c><c r="D1" t="n"><f>1+1</f></c></row>"#,
                true,
            ),
            (
                r#"<row r="1"  ><c   r = 'A1'  t = "s" ><v>0</v></c></row>"#,
                true,
            ),
            (
                r#"<row r="1"><c r="A1" t="s"><v>0</v></c  ></row  >"#,
                false,
            ),
            // References in a formula: well-formed ones are passed over, a malformed one is
            // left to calamine, whose parser refuses it.
            (
                r#"<row r="1"><c r="A1" t="str"><f>A1&amp;"&#x41;"</f><v>x</v></c><c r="B1" t="inlineStr"><v>&lt;</v><is><t>i</t></is></c></row>"#,
                true,
            ),
            (
                r#"<row r="1"><c r="A1" t="str"><f>A1&amidB1</f><v>x</v></c></row>"#,
                false,
            ),
            // Close tags beyond the elements open: one more is read, two more are refused.
            (r#"<row r="1"><c r="A1"><v>1</v></c></row></row>"#, true),
            (
                r#"<row r="1"><c r="A1"><v>1</v></c></row></row></row>"#,
                false,
            ),
            (
                r#"<row r="1"><c r="A1" t="inlineStr"><is><r></is></c></row>"#,
                false,
            ),
            // Whole parts: a dimension left to calamine, another encoding, a byte-order mark.
            (
                r#"<?xml version="1.0"?><worksheet><dimension ref="1:5"/><sheetData><row r="1"><c r="A1"><v>1</v></c></row></sheetData></worksheet>"#,
                false,
            ),
            (
                r#"<?xml version="1.0" encoding="windows-1252"?><worksheet><sheetData><row r="1"><c r="A1" t="str"><v>cafÃ©</v></c></row></sheetData></worksheet>"#,
                false,
            ),
            (
                "\u{feff}<worksheet><dimension ref='B2'/><sheetData><row r='2'><c r='B2'><v>2</v></c></row></sheetData></worksheet>",
                true,
            ),
            (
                r#"<worksheet><dimension ref="A1:C3"/><sheetData><row r="1"><c r="A1"><v>1</v></c></row></sheetData></worksheet>"#,
                true,
            ),
            (
                r#"<row r="2"><c r="b2"><v>1</v></c></row><row r="1"><c r="A1"><v>2</v></c></row>"#,
                true,
            ),
            // An empty `<sheetData/>` ends the cells, wherever it stands.
            (
                r#"<row r="1"><c r="A1"><v>1</v></c><sheetData r="9"/></row><row r="2"><c r="A2"><v>2</v></c></row>"#,
                true,
            ),
            // Left to calamine from the row where they start.
            (
                r#"<row r="1"><c r="A1" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="B1" t="e"><v>#N/A</v></c></row>"#,
                true,
            ),
            (
                r#"<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="A2" t="e"><v>#SPILL!</v></c></row>"#,
                false,
            ),
            (
                r#"<row r="1"><c r="A1"><v>1</v></c></row><!-- a comment --><row r="2"><c r="A2"><v>2</v></c></row>"#,
                false,
            ),
            (
                r#"<row r="1"><c r="A1"><v>1</v></c><c r="B1" t="inlineStr"><is><t>_x000D_</t></is></c></row>"#,
                false,
            ),
            (
                r#"<row r="1"><c r="A1"><v>1</v></c><c r="B1" t="str"><v>&#65;</v></c></row>"#,
                false,
            ),
            (
                r#"<row r="1"><c r="A1"><v><![CDATA[1]]></v></c></row>"#,
                false,
            ),
            (
                r#"<row r="1"><c r="A1"><v> 1 </v></c><c r="B1"><v>abc</v></c></row>"#,
                false,
            ),
            (
                r#"<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="A2" t="s"><v>99</v></c></row>"#,
                false,
            ),
            (
                r#"<row r="1"><c r="A1"><v>1</v></c><c r="B1"><v>+1</v></c><c r="C1"><v>.5</v></c><c r="D1"><v>inf</v></c></row>"#,
                false,
            ),
            (r#"<row r="1"><c r="XFE1"><v>1</v></c></row>"#, true),
            (
                r#"<row r="1"><c r="A1"><v>1</v></c><c r="B1"><x/></c></row>"#,
                false,
            ),
            (
                r#"<row r="1"><c r="A1"><v>1</v></c><c r="B1"><v>2</v>"#,
                false,
            ),
            (
                r#"<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="A2" t="z"><v>2</v></c></row>"#,
                false,
            ),
            (
                r#"<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="A2"><v>1</v><extLst/></c></row>"#,
                false,
            ),
        ];
        for (i, (data, alone)) in cases.iter().enumerate() {
            assert_eq!(
                compare_with_calamine(data.as_bytes()),
                Ok(*alone),
                "case {i}: {data}"
            );
        }
        // Without shared strings.
        let bytes = test_package(br#"<row r="1"><c r="A1"><v>1</v></c></row>"#, None);
        let wb = same_both_ways("no-strings.xlsx", &bytes).unwrap();
        assert!(read_alone(&wb));
    }

    #[test]
    fn shared_strings_read_as_calamine_reads_them() {
        let sheet: String = (0..4)
            .map(|i| {
                format!(
                    r#"<row r="{r}"><c r="A{r}" t="s"><v>{i}</v></c></row>"#,
                    r = i + 1
                )
            })
            .collect();
        // (the shared strings' items, whether kam's reader reads them)
        let cases: &[(&str, bool)] = &[
            (
                r#"<si><t>a</t></si><si><t xml:space="preserve"> b </t></si><si><t> c </t></si><si><t>&lt;d&gt; &amp; &quot;e&apos;</t></si>"#,
                true,
            ),
            (
                r#"<si><r><t>ri</t></r><r><rPr><i/></rPr><t>ch</t></r></si><si><t>x</t><rPh><t>ph</t></rPh><phoneticPr fontId="1"/></si><si/><si><t/></si>"#,
                true,
            ),
            (
                r#"<si><t>a_x000D_b</t></si><si><t>b</t></si><si><t>c</t></si><si><t>d</t></si>"#,
                false,
            ),
            (
                r#"<si><t>&#233;</t></si><si><t>b</t></si><si><t>c</t></si><si><t>d</t></si>"#,
                false,
            ),
            (
                r#"<si><t><![CDATA[a]]></t></si><si><t>b</t></si><si><t>c</t></si><si><t>d</t></si>"#,
                false,
            ),
            (r#"<si><t>a</t></si><si><t>b</t></si>"#, false),
        ];
        for (i, (items, read)) in cases.iter().enumerate() {
            let mut data = sheet.clone().into_bytes();
            data.extend_from_slice(TEST_STRINGS_AFTER);
            data.extend_from_slice(
                format!(r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="x" count="4" uniqueCount="4">{items}</sst>"#)
                    .as_bytes(),
            );
            assert_eq!(compare_with_calamine(&data), Ok(*read), "case {i}: {items}");
        }
    }

    #[test]
    fn the_fuzz_targets_seeds_and_findings_read_the_same_as_with_calamine_alone() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz");
        let mut seen = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}/xlsx_cells")) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                if let Err(e) = compare_with_calamine(&data) {
                    panic!("{}: {e}", path.display());
                }
                seen += 1;
            }
        }
        assert!(seen >= 27, "{seen}");
    }

    #[test]
    fn the_window_reads_elements_across_refills() {
        // Cells longer than the window's first size, and many of them.
        let long = "x".repeat(300_000);
        let mut data = String::new();
        for r in 1..=3000 {
            data.push_str(&format!(
                r#"<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>{}</t></is></c><c r="B{r}"><v>{r}.5</v></c></row>"#,
                if r % 1000 == 0 { long.as_str() } else { "short" }
            ));
        }
        let bytes = test_package(data.as_bytes(), Some(TEST_STRINGS));
        let wb = same_both_ways("long.xlsx", &bytes).unwrap();
        assert!(read_alone(&wb));
        assert_eq!(
            Format::Xlsx,
            detect("long.xlsx", &bytes).unwrap(),
            "a workbook kam's own checks accept"
        );
    }
}
