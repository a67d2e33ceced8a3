//! A bounds check of legacy .xls workbooks before calamine opens them.
//!
//! calamine reads an .xls whole when it is opened: it follows the compound file's sector
//! chains and builds one dense cell grid per sheet, spanning the smallest and largest row and
//! column any cell record names. A damaged or hostile file of a few kilobytes can name a cell
//! at row 65 535 and column 65 535 (4 G cells, over 100 GiB) or loop a sector chain, and the
//! process runs out of memory before any error can be reported.
//!
//! [`check`] walks the same structures the way calamine does (MS-CFB sectors and chains, then
//! the BIFF records of each sheet) without building anything, and refuses the file when a
//! chain loops or a sheet's grid would be absurd for the cells it holds. Where calamine itself
//! would return an error, the check says nothing and lets calamine report it.

use std::collections::HashSet;

const ENDOFCHAIN: u32 = 0xFFFF_FFFE;
const RESERVED_SECTORS: u32 = 0xFFFF_FFFA;
const DIFSECT: u32 = 0xFFFF_FFFC;

/// Grids up to this many cells are always allowed (16 384 rows × 256 columns).
const SMALL_GRID: u64 = 1 << 22;
/// A larger grid must hold at least one cell in this many.
const MIN_DENSITY: u64 = 64;
/// BIFF8's own sheet size: 65 536 rows × 256 columns.
const BIFF8_CELLS: u64 = 65_536 * 256;

/// Why an .xls must not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A sector chain of the compound file loops.
    LoopingChain(&'static str),
    /// A sheet's cells span a grid far larger than the cells it holds.
    SparseGrid {
        /// The sheet's name.
        sheet: String,
        /// Rows the grid spans.
        rows: u64,
        /// Columns the grid spans.
        cols: u64,
        /// Cell records the sheet holds.
        cells: u64,
    },
    /// A sheet's DIMENSIONS record declares more cells than an .xls sheet can have.
    Dimensions {
        /// The sheet's name.
        sheet: String,
        /// Rows declared.
        rows: u64,
        /// Columns declared.
        cols: u64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::LoopingChain(what) => write!(
                f,
                "the file is damaged: its {what} chain of sectors loops, so the Excel reader would never finish reading it; open it in Excel and save it again"
            ),
            Refusal::SparseGrid {
                sheet,
                rows,
                cols,
                cells,
            } => write!(
                f,
                "sheet {sheet} is damaged or built to exhaust memory: its {cells} cells span {rows} rows × {cols} columns, and the .xls reader would need {} GiB for that grid; open it in Excel and save it again, or save it as .xlsx",
                (rows * cols * 32) >> 30
            ),
            Refusal::Dimensions { sheet, rows, cols } => write!(
                f,
                "sheet {sheet} is damaged: it declares {rows} rows × {cols} columns, more than an .xls sheet can hold (65 536 × 256); open it in Excel and save it again"
            ),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The compound file as calamine reads it: sectors after the header, the FAT, the directory.
struct Cfb<'a> {
    body: &'a [u8],
    size: usize,
    maxid: u32,
    fats: Vec<u32>,
}

impl<'a> Cfb<'a> {
    /// Sector `id`, cut short at the end of the file (as calamine reads it).
    fn sector(&self, id: u32) -> Option<&'a [u8]> {
        if id > self.maxid {
            return None;
        }
        let start = (id as usize).checked_mul(self.size)?;
        let end = (start + self.size).min(self.body.len());
        self.body.get(start.min(end)..end)
    }

    /// Sector `id` read as sector numbers (a FAT or DIFAT sector); `None` where calamine fails.
    fn sector_ids(&self, id: u32) -> Option<impl Iterator<Item = u32> + 'a> {
        let s = self.sector(id)?;
        (s.len() % 4 == 0).then(|| {
            s.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        })
    }

    /// Follows a chain of `len` bytes at most; `Err` when it loops before it ends.
    fn chain(
        &self,
        start: u32,
        len: usize,
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, Refusal> {
        let mut out = Vec::new();
        let mut id = start;
        let mut steps = 0usize;
        while id != ENDOFCHAIN {
            let Some(sector) = self.sector(id) else {
                return Ok(None);
            };
            let take = sector.len().min(len - out.len());
            out.extend_from_slice(&sector[..take]);
            if out.len() >= len {
                break;
            }
            let Some(&next) = self.fats.get(id as usize) else {
                return Ok(None);
            };
            id = next;
            steps += 1;
            if steps > self.fats.len() {
                return Err(Refusal::LoopingChain(what));
            }
        }
        Ok(Some(out))
    }
}

/// Checks an .xls before calamine opens it; `Ok` when calamine may go ahead (it still reports
/// the errors it finds itself).
pub fn check(bytes: &[u8]) -> Result<(), Refusal> {
    match workbook_stream(bytes)? {
        Some(stream) => check_sheets(&stream),
        None => Ok(()),
    }
}

/// The `Workbook` (or BIFF5 `Book`) stream, or `None` when calamine would fail to read it.
fn workbook_stream(bytes: &[u8]) -> Result<Option<Vec<u8>>, Refusal> {
    let Some(header) = bytes.get(..512) else {
        return Ok(None);
    };
    if header[..8] != *b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1" {
        return Ok(None);
    }
    let (size, header_len) = match u16_at(header, 30) {
        Some(9) => (512usize, 512usize),
        Some(12) => (4096, 4096),
        _ => return Ok(None),
    };
    let body = bytes.get(header_len..).unwrap_or(&[]);
    let maxid = (bytes.len() / size) as u32;
    let mut cfb = Cfb {
        body,
        size,
        maxid,
        fats: Vec::new(),
    };
    let mut difat: Vec<u32> = header[76..512]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut id = u32_at(header, 68).unwrap_or(ENDOFCHAIN);
    let mut n = 0usize;
    while id < RESERVED_SECTORS {
        n += 1;
        if n > maxid as usize + 1 {
            return Ok(None);
        }
        let Some(ids) = cfb.sector_ids(id) else {
            return Ok(None);
        };
        difat.extend(ids);
        let Some(next) = difat.pop() else {
            return Ok(None);
        };
        id = next;
    }
    let mut fats = Vec::new();
    for id in difat.into_iter().filter(|id| *id < DIFSECT) {
        let Some(ids) = cfb.sector_ids(id) else {
            return Ok(None);
        };
        fats.extend(ids);
    }
    cfb.fats = fats;
    let dir_start = u32_at(header, 48).unwrap_or(ENDOFCHAIN);
    let Some(dirs) = cfb.chain(dir_start, usize::MAX, "directory")? else {
        return Ok(None);
    };
    // (name, start, len) of each directory entry, read as calamine reads them.
    let entries: Vec<(String, u32, u64)> = dirs
        .chunks_exact(128)
        .map(|d| {
            let units: Vec<u16> = d[..64]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|u| *u != 0)
                .collect();
            let len = if size == 512 {
                u64::from(u32_at(d, 120).unwrap_or(0))
            } else {
                u64_at(d, 120).unwrap_or(0)
            };
            (
                String::from_utf16_lossy(&units),
                u32_at(d, 116).unwrap_or(ENDOFCHAIN),
                len,
            )
        })
        .collect();
    let Some(root) = entries.first() else {
        return Ok(None);
    };
    let mini_fat_len = u32_at(header, 64).unwrap_or(0) as usize;
    let (mini_fats, ministream) = if mini_fat_len > 0 {
        let Some(ministream) = cfb.chain(root.1, root.2 as usize, "mini stream")? else {
            return Ok(None);
        };
        let mini_fat_start = u32_at(header, 60).unwrap_or(ENDOFCHAIN);
        let Some(minifat) = cfb.chain(
            mini_fat_start,
            mini_fat_len.saturating_mul(size),
            "mini FAT",
        )?
        else {
            return Ok(None);
        };
        let minifat: Vec<u32> = minifat
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (minifat, ministream)
    } else {
        (Vec::new(), Vec::new())
    };
    let find = |name: &str| {
        entries
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .cloned()
    };
    let Some((_, start, len)) = find("Workbook").or_else(|| find("Book")) else {
        return Ok(None);
    };
    if len < 4096 {
        let mini = Cfb {
            body: &ministream,
            size: 64,
            maxid: maxid.saturating_mul(8),
            fats: mini_fats,
        };
        mini.chain(start, len as usize, "mini stream")
    } else {
        cfb.chain(
            start,
            usize::try_from(len).unwrap_or(usize::MAX),
            "workbook stream",
        )
    }
}

/// The BIFF records of a stream from `pos`: (type, data), CONTINUE records skipped.
fn records(stream: &[u8], mut pos: usize) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        loop {
            let typ = u16_at(stream, pos)?;
            let len = u16_at(stream, pos + 2)? as usize;
            let data = stream.get(pos + 4..pos + 4 + len)?;
            pos += 4 + len;
            if typ != 0x003C {
                return Some((typ, data));
            }
        }
    })
}

/// Each sheet's cell records, bounded as calamine would lay them out.
fn check_sheets(stream: &[u8]) -> Result<(), Refusal> {
    // BoundSheet8 records of the globals substream: where each sheet starts, and its name.
    let mut sheets: Vec<(usize, String)> = Vec::new();
    for (typ, data) in records(stream, 0) {
        match typ {
            0x0085 if data.len() > 6 => {
                let pos = u32_at(data, 0).unwrap_or(0) as usize;
                let cch = data[6] as usize;
                let wide = data.get(7).is_some_and(|f| f & 1 == 1);
                let name = if wide {
                    let units: Vec<u16> = data
                        .get(8..)
                        .unwrap_or(&[])
                        .chunks_exact(2)
                        .take(cch)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    String::from_utf16_lossy(&units)
                } else {
                    data.get(8..)
                        .unwrap_or(&[])
                        .iter()
                        .take(cch)
                        .map(|b| char::from(*b))
                        .collect()
                };
                sheets.push((pos, name));
            }
            0x000A => break,
            _ => {}
        }
    }
    let mut seen = HashSet::new();
    for (pos, name) in sheets {
        if pos >= stream.len() || !seen.insert(pos) {
            continue;
        }
        let (mut r0, mut r1, mut c0, mut c1, mut cells) = (u32::MAX, 0u32, u32::MAX, 0u32, 0u64);
        let mut cell = |row: u32, col: u32| {
            r0 = r0.min(row);
            r1 = r1.max(row);
            c0 = c0.min(col);
            c1 = c1.max(col);
            cells += 1;
        };
        let mut bof_seen = false;
        let mut depth = 0usize;
        for (typ, data) in records(stream, pos) {
            if depth > 0 {
                match typ {
                    0x0809 => depth += 1,
                    0x000A => depth -= 1,
                    _ => {}
                }
                continue;
            }
            let at = |data: &[u8]| -> Option<(u32, u32)> {
                Some((u32::from(u16_at(data, 0)?), u32::from(u16_at(data, 2)?)))
            };
            match typ {
                0x0809 => {
                    if bof_seen {
                        depth += 1;
                    } else {
                        bof_seen = true;
                    }
                }
                0x0200 => {
                    let (rf, rl, cf, cl) = match data.len() {
                        10 => (
                            u32::from(u16_at(data, 0).unwrap_or(0)),
                            u32::from(u16_at(data, 2).unwrap_or(0)),
                            u32::from(u16_at(data, 4).unwrap_or(0)),
                            u32::from(u16_at(data, 6).unwrap_or(0)),
                        ),
                        14 | 16 => (
                            u32_at(data, 0).unwrap_or(0),
                            u32_at(data, 4).unwrap_or(0),
                            u32::from(u16_at(data, 8).unwrap_or(0)),
                            u32::from(u16_at(data, 10).unwrap_or(0)),
                        ),
                        _ => continue,
                    };
                    let cf = if cf > 0xFF || cl < cf { 0 } else { cf };
                    if rl >= 1 && cl >= 1 {
                        let rows = u64::from(rl.wrapping_sub(1).wrapping_sub(rf).wrapping_add(1));
                        let cols = u64::from(cl.wrapping_sub(1).wrapping_sub(cf).wrapping_add(1));
                        if rows.saturating_mul(cols) > BIFF8_CELLS {
                            return Err(Refusal::Dimensions {
                                sheet: name,
                                rows,
                                cols,
                            });
                        }
                    }
                }
                0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD | 0x0006 => {
                    if let Some((r, c)) = at(data) {
                        cell(r, c);
                    }
                }
                0x00BD if data.len() >= 6 => {
                    if let Some((r, c)) = at(data) {
                        let last = u32::from(u16_at(data, data.len() - 2).unwrap_or(0));
                        cell(r, c);
                        cell(r, last.max(c));
                    }
                }
                0x000A => break,
                _ => {}
            }
        }
        if cells == 0 {
            continue;
        }
        let rows = u64::from(r1 - r0) + 1;
        let cols = u64::from(c1 - c0) + 1;
        let grid = rows * cols;
        if grid > SMALL_GRID && grid / cells > MIN_DENSITY {
            return Err(Refusal::SparseGrid {
                sheet: name,
                rows,
                cols,
                cells,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal compound file: header, one FAT sector, one directory sector and the
    /// workbook stream in regular sectors.
    fn cfb(stream: &[u8]) -> Vec<u8> {
        let mut stream = stream.to_vec();
        stream.resize(stream.len().max(4096).div_ceil(512) * 512, 0);
        let n = stream.len() / 512;
        let mut h = vec![0u8; 512];
        h[..8].copy_from_slice(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1");
        h[26..28].copy_from_slice(&3u16.to_le_bytes());
        h[30..32].copy_from_slice(&9u16.to_le_bytes());
        h[32..34].copy_from_slice(&6u16.to_le_bytes());
        h[44..48].copy_from_slice(&1u32.to_le_bytes());
        h[48..52].copy_from_slice(&1u32.to_le_bytes()); // directory in sector 1
        h[60..64].copy_from_slice(&ENDOFCHAIN.to_le_bytes());
        h[68..72].copy_from_slice(&ENDOFCHAIN.to_le_bytes());
        for i in 0..109 {
            let v = if i == 0 { 0u32 } else { 0xFFFF_FFFF };
            h[76 + 4 * i..80 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        // FAT: sector 0 = FAT, 1 = directory, 2.. = the stream.
        let mut fat = vec![0xFFFF_FFFDu32, ENDOFCHAIN];
        for i in 0..n {
            fat.push(if i + 1 == n {
                ENDOFCHAIN
            } else {
                (i + 3) as u32
            });
        }
        fat.resize(128, 0xFFFF_FFFF);
        let mut out = h;
        out.extend(fat.iter().flat_map(|v| v.to_le_bytes()));
        let mut dir = vec![0u8; 512];
        let entry = |name: &str, start: u32, len: u32| {
            let mut e = vec![0u8; 128];
            for (i, u) in name.encode_utf16().enumerate() {
                e[2 * i..2 * i + 2].copy_from_slice(&u.to_le_bytes());
            }
            e[116..120].copy_from_slice(&start.to_le_bytes());
            e[120..124].copy_from_slice(&len.to_le_bytes());
            e
        };
        dir[..128].copy_from_slice(&entry("Root Entry", ENDOFCHAIN, 0));
        dir[128..256].copy_from_slice(&entry("Workbook", 2, stream.len() as u32));
        out.extend(dir);
        out.extend(stream);
        out
    }

    fn rec(typ: u16, data: &[u8]) -> Vec<u8> {
        let mut v = typ.to_le_bytes().to_vec();
        v.extend((data.len() as u16).to_le_bytes());
        v.extend(data);
        v
    }

    /// Globals with one BoundSheet8 "Data", then the sheet with the given records.
    fn workbook(sheet: &[Vec<u8>]) -> Vec<u8> {
        let mut globals = rec(0x0809, &[0; 16]);
        let bound_len = 4 + 8 + 4;
        let eof = rec(0x000A, &[]);
        let pos = (globals.len() + bound_len + eof.len()) as u32;
        let mut b = pos.to_le_bytes().to_vec();
        b.extend([0, 0, 4, 0]);
        b.extend(b"Data");
        globals.extend(rec(0x0085, &b));
        globals.extend(eof);
        globals.extend(rec(0x0809, &[0; 16]));
        for r in sheet {
            globals.extend(r);
        }
        globals.extend(rec(0x000A, &[]));
        globals
    }

    fn number(row: u16, col: u16) -> Vec<u8> {
        let mut d = row.to_le_bytes().to_vec();
        d.extend(col.to_le_bytes());
        d.extend([0u8; 10]);
        rec(0x0203, &d)
    }

    #[test]
    fn an_ordinary_sheet_passes() {
        let book = cfb(&workbook(&[number(0, 0), number(1, 1), number(5000, 40)]));
        assert_eq!(check(&book), Ok(()));
    }

    #[test]
    fn two_far_corners_are_refused() {
        let book = cfb(&workbook(&[number(0, 0), number(65_535, 65_535)]));
        assert_eq!(
            check(&book),
            Err(Refusal::SparseGrid {
                sheet: "Data".into(),
                rows: 65_536,
                cols: 65_536,
                cells: 2
            })
        );
    }

    #[test]
    fn absurd_dimensions_are_refused() {
        let mut d = 0u32.to_le_bytes().to_vec();
        d.extend(4_000_000u32.to_le_bytes());
        d.extend([0, 0, 0, 1, 0, 0]);
        let book = cfb(&workbook(&[rec(0x0200, &d), number(0, 0)]));
        assert!(matches!(
            check(&book),
            Err(Refusal::Dimensions {
                rows: 4_000_000,
                cols: 256,
                ..
            })
        ));
    }

    #[test]
    fn a_looping_chain_is_refused() {
        let mut book = cfb(&workbook(&[number(0, 0)]));
        // The stream's last sector points back at its first.
        let fat_at = 512;
        let n = (book.len() - 512 * 3) / 512;
        let last = 2 + n - 1;
        book[fat_at + 4 * last..fat_at + 4 * last + 4].copy_from_slice(&2u32.to_le_bytes());
        // Declare a stream longer than the file so the chain never ends by length.
        let dir = 512 * 2 + 128;
        book[dir + 120..dir + 124].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(check(&book), Err(Refusal::LoopingChain("workbook stream")));
    }

    #[test]
    fn not_a_compound_file_is_left_to_calamine() {
        assert_eq!(check(b"PK\x03\x04 not an xls"), Ok(()));
    }
}
