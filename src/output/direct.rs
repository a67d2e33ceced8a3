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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// Bytes gathered before a write: 4 MiB, a multiple of every block size in use.
const CHUNK: usize = 4 << 20;
/// Alignment of the buffer, the file offsets and the lengths of direct writes.
const ALIGN: usize = 4096;

/// A file written through a large buffer, directly to the device where the system allows it
/// (see the module documentation).
///
/// A direct write returns only when the device has the data, so a file that fills its buffer
/// hands the full chunk to a writer thread of its own and goes on filling a second buffer: the
/// caller waits on the device only when it produces faster than the device takes. At a million
/// accounts the thread scoring the accounts and writing `scores.json` used to wait on its
/// direct writes for about a quarter of the scoring stage.
#[derive(Debug)]
pub struct OutFile {
    /// The file, unless a writer thread holds it.
    sink: Option<Sink>,
    /// The writer thread, once a full chunk has gone to it (until the next flush).
    behind: Option<Behind>,
    /// `CHUNK + ALIGN` bytes, of which `start..start + CHUNK` is aligned to `ALIGN`.
    buf: Vec<u8>,
    start: usize,
    /// Bytes waiting in the buffer.
    len: usize,
}

/// The open file and how it is written.
#[derive(Debug)]
struct Sink {
    file: File,
    /// Whether the file is still open with `O_DIRECT`.
    direct: bool,
    /// Writes that succeed before one fails (tests of the error path only; later ones succeed,
    /// so an error that is dropped goes unnoticed unless reported).
    #[cfg(test)]
    writes_left: Option<usize>,
}

/// A thread writing full chunks in order while the owner fills the next one.
#[derive(Debug)]
struct Behind {
    /// Full buffers to write (closed to stop the thread).
    jobs: Option<mpsc::SyncSender<Vec<u8>>>,
    /// Buffers written, for reuse.
    back: mpsc::Receiver<Vec<u8>>,
    /// Set when a write failed: the owner stops and reports it.
    failed: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Returned>>,
    /// Buffers the thread holds.
    held: usize,
}

/// What the writer thread gives back: the file and the first error of its writes (nothing if
/// it never received the file).
type Returned = Option<(Sink, io::Result<()>)>;

/// Where the aligned part of a buffer starts.
fn aligned_start(buf: &[u8]) -> usize {
    buf.as_ptr().align_offset(ALIGN).min(ALIGN)
}

/// A buffer from the pool of closed files, or a new one.
fn new_buffer() -> Vec<u8> {
    POOL.lock()
        .ok()
        .and_then(|mut p| p.pop())
        .unwrap_or_else(|| vec![0u8; CHUNK + ALIGN])
}

/// Returns a buffer to the pool.
fn recycle(buf: Vec<u8>) {
    if let Ok(mut p) = POOL.lock()
        && p.len() < POOL_SIZE
    {
        p.push(buf);
    }
}

impl OutFile {
    /// Creates (or truncates) `path` for writing.
    pub fn create(path: &Path) -> io::Result<OutFile> {
        Self::open(path, allowed())
    }

    fn open(path: &Path, want_direct: bool) -> io::Result<OutFile> {
        let (file, direct) = open(path, want_direct)?;
        let buf = new_buffer();
        let start = aligned_start(&buf);
        Ok(OutFile {
            sink: Some(Sink {
                file,
                direct,
                #[cfg(test)]
                writes_left: None,
            }),
            behind: None,
            buf,
            start,
            len: 0,
        })
    }

    /// The buffer is full: its chunk goes to the writer thread when the file is written
    /// directly (started now if need be), is written here otherwise.
    fn spill(&mut self) -> io::Result<()> {
        if self.behind.is_none() {
            let direct = self.sink.as_ref().is_some_and(|s| s.direct);
            if !direct || !self.start_behind() {
                return self.drain(false);
            }
        }
        let Some(b) = self.behind.as_mut() else {
            return self.drain(false);
        };
        // Double buffering: wait for the chunk being written before handing over the next.
        let fresh = if b.held > 0 {
            match b.back.recv() {
                Ok(v) => {
                    b.held -= 1;
                    v
                }
                Err(_) => {
                    return self
                        .settle()
                        .and(Err(io::Error::other("writer thread stopped")));
                }
            }
        } else {
            new_buffer()
        };
        if b.failed.load(Ordering::Acquire) {
            recycle(fresh);
            return self.settle();
        }
        let full = std::mem::replace(&mut self.buf, fresh);
        self.start = aligned_start(&self.buf);
        self.len = 0;
        match b.jobs.as_ref().map(|j| j.send(full)) {
            Some(Ok(())) => {
                b.held += 1;
                Ok(())
            }
            _ => self
                .settle()
                .and(Err(io::Error::other("writer thread stopped"))),
        }
    }

    /// Starts the writer thread with the file; false when no thread can be started (the file
    /// is then written here, as before).
    fn start_behind(&mut self) -> bool {
        let (jobs, rx) = mpsc::sync_channel::<Vec<u8>>(1);
        let (tx, back) = mpsc::channel::<Vec<u8>>();
        // The file goes to the thread once it runs, so a failed start keeps it here.
        let (hand, take) = mpsc::channel::<Sink>();
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let spawned = std::thread::Builder::new()
            .name("kam-writer".into())
            .spawn(move || {
                let mut sink = take.recv().ok()?;
                let mut result = Ok(());
                for buf in rx {
                    if result.is_ok() {
                        let s = aligned_start(&buf);
                        result = sink.write_out(&buf[s..s + CHUNK]);
                        if result.is_err() {
                            flag.store(true, Ordering::Release);
                        }
                    }
                    if tx.send(buf).is_err() {
                        break;
                    }
                }
                Some((sink, result))
            });
        let Ok(thread) = spawned else {
            return false;
        };
        let Some(sink) = self.sink.take() else {
            return false;
        };
        if let Err(mpsc::SendError(sink)) = hand.send(sink) {
            self.sink = Some(sink);
            return false;
        }
        self.behind = Some(Behind {
            jobs: Some(jobs),
            back,
            failed,
            thread: Some(thread),
            held: 0,
        });
        true
    }

    /// Waits for the writer thread to write what it holds and takes the file back; the first
    /// error of its writes, if any.
    fn settle(&mut self) -> io::Result<()> {
        let Some(mut b) = self.behind.take() else {
            return Ok(());
        };
        b.jobs = None;
        let joined = b.thread.take().map(|t| t.join());
        for buf in b.back.try_iter() {
            recycle(buf);
        }
        match joined {
            Some(Ok(Some((sink, result)))) => {
                self.sink = Some(sink);
                result
            }
            _ => Err(io::Error::other(
                "the writer thread of an output file failed",
            )),
        }
    }

    /// Writes the whole blocks of the buffer, and the partial block at its end too when `all`
    /// (through the page cache, after which the file stays buffered).
    fn drain(&mut self, all: bool) -> io::Result<()> {
        let Some(sink) = self.sink.as_mut() else {
            return Err(io::Error::other(
                "the output file was lost by a failed write",
            ));
        };
        let whole = if sink.direct {
            self.len / ALIGN * ALIGN
        } else {
            self.len
        };
        sink.write_out(&self.buf[self.start..self.start + whole])?;
        let mut done = whole;
        if all && done < self.len {
            sink.buffered();
            sink.write_out(&self.buf[self.start + done..self.start + self.len])?;
            done = self.len;
        }
        self.buf
            .copy_within(self.start + done..self.start + self.len, self.start);
        self.len -= done;
        Ok(())
    }
}

impl Sink {
    /// Writes `bytes` at the file's offset.
    fn write_out(&mut self, bytes: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        if let Some(n) = self.writes_left.as_mut() {
            if *n == 0 {
                self.writes_left = None;
                return Err(io::Error::other("injected write failure"));
            }
            *n -= 1;
        }
        let mut done = 0;
        while done < bytes.len() {
            match self.file.write(&bytes[done..]) {
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
                self.spill()?;
            }
            let n = data.len().min(CHUNK - self.len);
            let at = self.start + self.len;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
        }
        Ok(())
    }

    /// Writes everything buffered (after what the writer thread holds). A flush before the end
    /// leaves a partial block, so the rest of the file is written through the page cache.
    fn flush(&mut self) -> io::Result<()> {
        self.settle()?;
        self.drain(true)?;
        match self.sink.as_mut() {
            Some(s) => s.file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        if self.settle().is_ok() {
            let _ = self.drain(true);
        }
        recycle(std::mem::take(&mut self.buf));
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
    /// A new folder under target/, on the disk, where direct writes are taken (/tmp may be a
    /// tmpfs).
    fn test_dir(name: &str) -> std::path::PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(format!("kam-direct-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn files_read_back_byte_for_byte() {
        let dir = test_dir("test");
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
        // Whole blocks stay direct until the tail; full chunks go to the writer thread.
        let mut f = OutFile::open(&dir.join("blocks"), true).unwrap();
        if f.sink.as_ref().unwrap().direct {
            f.write_all(&vec![1u8; 3 * CHUNK + ALIGN + 1]).unwrap();
            assert!(f.behind.is_some(), "full chunks went to the writer thread");
            f.settle().unwrap();
            assert!(f.behind.is_none());
            assert!(
                f.sink.as_ref().unwrap().direct,
                "the chunks were written directly"
            );
            f.flush().unwrap();
            assert!(
                !f.sink.as_ref().unwrap().direct,
                "the tail went through the page cache"
            );
            drop(f);
            assert_eq!(
                std::fs::read(dir.join("blocks")).unwrap(),
                vec![1u8; 3 * CHUNK + ALIGN + 1]
            );
        } else {
            drop(f);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A write that fails on the writer thread is reported to the owner (by a later write or
    /// by the flush), never dropped; so is one on the owner's own thread.
    #[test]
    fn a_failed_write_is_reported() {
        let dir = test_dir("fail");
        for want_direct in [true, false] {
            for ok_writes in [0, 1, 2] {
                let mut f = OutFile::open(&dir.join("f"), want_direct).unwrap();
                f.sink.as_mut().unwrap().writes_left = Some(ok_writes);
                let mut errors = Vec::new();
                for _ in 0..6 {
                    if let Err(e) = f.write_all(&vec![3u8; CHUNK / 2 + 7]) {
                        errors.push(e.to_string());
                    }
                }
                if let Err(e) = f.flush() {
                    errors.push(e.to_string());
                }
                assert!(
                    errors.iter().any(|e| e == "injected write failure"),
                    "direct {want_direct}, {ok_writes} good writes: {errors:?}"
                );
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
