//! Large output files written around the page cache.
//!
//! A million-account run writes about 3 GB (`scores.json` alone is 1.75 GB). Through `write(2)`
//! the kernel copies every byte into fresh page-cache pages, and on the 2-core machines kam is
//! measured on that copy was 6–7 s of CPU time, a tenth of the run. On Linux, [`OutFile`] opens
//! the file with `O_DIRECT` and writes whole aligned blocks from its own buffer, so the device
//! reads them from memory and no CPU copies them; the last partial block is written through the
//! page cache. Where the file system refuses `O_DIRECT` (tmpfs on older kernels, some network
//! file systems) or a direct write fails, the file silently goes on as an ordinary buffered
//! file: the bytes written are the same either way.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Bytes gathered before a write: 4 MiB, a multiple of every block size in use.
const CHUNK: usize = 4 << 20;
/// Alignment of the buffer, the file offsets and the lengths of direct writes.
const ALIGN: usize = 4096;

/// A file written through a large buffer, directly to the device where the system allows it
/// (see the module documentation).
#[derive(Debug)]
pub struct OutFile {
    file: File,
    /// `CHUNK + ALIGN` bytes, of which `start..start + CHUNK` is aligned to `ALIGN`.
    buf: Vec<u8>,
    start: usize,
    /// Bytes waiting in the buffer.
    len: usize,
    /// Whether the file is still open with `O_DIRECT`.
    direct: bool,
}

impl OutFile {
    /// Creates (or truncates) `path` for writing.
    pub fn create(path: &Path) -> io::Result<OutFile> {
        Self::open(path, allowed())
    }

    fn open(path: &Path, want_direct: bool) -> io::Result<OutFile> {
        let (file, direct) = open(path, want_direct)?;
        let buf = POOL
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_else(|| vec![0u8; CHUNK + ALIGN]);
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Ok(OutFile {
            file,
            buf,
            start,
            len: 0,
            direct,
        })
    }

    /// Writes the whole blocks of the buffer, and the partial block at its end too when `all`
    /// (through the page cache, after which the file stays buffered).
    fn drain(&mut self, all: bool) -> io::Result<()> {
        let whole = if self.direct {
            self.len / ALIGN * ALIGN
        } else {
            self.len
        };
        self.write_out(0, whole)?;
        let mut done = whole;
        if all && done < self.len {
            self.buffered();
            self.write_out(done, self.len)?;
            done = self.len;
        }
        self.buf
            .copy_within(self.start + done..self.start + self.len, self.start);
        self.len -= done;
        Ok(())
    }

    /// Writes `from..to` of the buffer.
    fn write_out(&mut self, from: usize, to: usize) -> io::Result<()> {
        let mut done = from;
        while done < to {
            let piece = &self.buf[self.start + done..self.start + to];
            match self.file.write(piece) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    done += n;
                    if self.direct && n % ALIGN != 0 {
                        // A short direct write left the offset unaligned: go on buffered.
                        self.buffered();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.direct && e.raw_os_error() == Some(EINVAL) => {
                    // The file system took the flag but not the write.
                    self.buffered();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Goes on through the page cache.
    fn buffered(&mut self) {
        if self.direct {
            clear_direct(&self.file);
            self.direct = false;
        }
    }
}

impl Write for OutFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.len == CHUNK {
                self.drain(false)?;
            }
            let n = data.len().min(CHUNK - self.len);
            let at = self.start + self.len;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
        }
        Ok(())
    }

    /// Writes everything buffered. A flush before the end leaves a partial block, so the rest of
    /// the file is written through the page cache.
    fn flush(&mut self) -> io::Result<()> {
        self.drain(true)?;
        self.file.flush()
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        let _ = self.drain(true);
        if let Ok(mut p) = POOL.lock()
            && p.len() < POOL_SIZE
        {
            p.push(std::mem::take(&mut self.buf));
        }
    }
}

/// Buffers of closed files, for the next ones: a large run writes thousands of reports.
static POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
/// Buffers kept at most (one per file written at the same time, on two to four threads).
const POOL_SIZE: usize = 4;

/// Writes a whole file: directly to the device where the system allows it when the file is
/// large (a manager review of a big portfolio is hundreds of KB), through the page cache
/// otherwise.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_whole(path, bytes, allowed())
}

fn write_whole(path: &Path, bytes: &[u8], want_direct: bool) -> io::Result<()> {
    if bytes.len() < DIRECT_FROM {
        return std::fs::write(path, bytes);
    }
    let mut f = OutFile::open(path, want_direct)?;
    f.write_all(bytes)?;
    f.flush()
}

/// Files smaller than this are written through the page cache: two system calls more per file
/// would cost more than the copy saves.
const DIRECT_FROM: usize = 64 << 10;

#[cfg(target_os = "linux")]
const EINVAL: i32 = libc::EINVAL;
#[cfg(not(target_os = "linux"))]
const EINVAL: i32 = 22;

/// Whether direct writes may be tried: not when `KAM_NO_DIRECT_IO` is set (to compare, or for a
/// file system that takes the flag and misbehaves).
fn allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOWED.get_or_init(|| std::env::var_os("KAM_NO_DIRECT_IO").is_none())
}

#[cfg(target_os = "linux")]
fn open(path: &Path, want_direct: bool) -> io::Result<(File, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    if want_direct {
        match std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(f) => return Ok((f, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    File::create(path).map(|f| (f, false))
}

#[cfg(not(target_os = "linux"))]
fn open(path: &Path, _want_direct: bool) -> io::Result<(File, bool)> {
    File::create(path).map(|f| (f, false))
}

#[cfg(target_os = "linux")]
fn clear_direct(file: &File) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a file descriptor this `File` owns and keeps open; only the status
    // flags change.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn clear_direct(_: &File) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size around the block and chunk boundaries, written in uneven pieces, with and
    /// without a flush in the middle, directly and through the page cache, reads back byte for
    /// byte; so do whole files, small and large.
    #[test]
    fn files_read_back_byte_for_byte() {
        // Under target/, on the disk, where direct writes are taken (/tmp may be a tmpfs).
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(format!("kam-direct-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sizes = [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK + 3 * ALIGN + 17,
        ];
        for want_direct in [true, false] {
            for (i, &size) in sizes.iter().enumerate() {
                for mid_flush in [false, true] {
                    let data: Vec<u8> = (0..size).map(|j| (j * 31 + i) as u8).collect();
                    let path = dir.join(format!("f{i}-{mid_flush}-{want_direct}"));
                    let mut f = OutFile::open(&path, want_direct).unwrap();
                    let mut rest = &data[..];
                    let mut step = 1;
                    let mut pieces = 0;
                    while !rest.is_empty() {
                        let n = step.min(rest.len());
                        f.write_all(&rest[..n]).unwrap();
                        rest = &rest[n..];
                        step = step * 7 % 1_000_003 + 1;
                        pieces += 1;
                        if mid_flush && pieces == 3 {
                            f.flush().unwrap();
                        }
                    }
                    f.flush().unwrap();
                    drop(f);
                    assert_eq!(std::fs::read(&path).unwrap(), data, "size {size}");
                }
            }
            for size in [
                0,
                100,
                DIRECT_FROM - 1,
                DIRECT_FROM,
                DIRECT_FROM + ALIGN + 1,
                3 * CHUNK / 2,
            ] {
                let data: Vec<u8> = (0..size).map(|j| (j * 13) as u8).collect();
                let path = dir.join(format!("whole{size}-{want_direct}"));
                write_whole(&path, &data, want_direct).unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), data, "size {size}");
            }
            // Dropped without a flush: everything is still written.
            let path = dir.join(format!("dropped-{want_direct}"));
            let mut f = OutFile::open(&path, want_direct).unwrap();
            f.write_all(&[7u8; 3 * ALIGN + 5]).unwrap();
            drop(f);
            assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 3 * ALIGN + 5]);
        }
        // Whole blocks stay direct until the tail.
        let mut f = OutFile::open(&dir.join("blocks"), true).unwrap();
        if f.direct {
            f.write_all(&vec![1u8; CHUNK + ALIGN + 1]).unwrap();
            assert!(f.direct, "the first chunk was written directly");
            f.flush().unwrap();
            assert!(!f.direct, "the tail went through the page cache");
        }
        drop(f);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
