//! Writing results: files go into a temporary folder beside the target, which is renamed into
//! place only when everything was written, so a failed run leaves the previous output intact.

pub mod direct;
pub mod exports;
pub mod files;
pub mod scores;
pub mod xlsx;

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Buffer of `scores.xlsx` (the other large files have [`direct::OutFile`]'s): 8 KiB writes made
/// a quarter of a million system calls per file at a million accounts.
const WRITE_BUFFER: usize = 1 << 20;

/// The file whose presence marks a folder as kam output (safe to replace).
pub const MARKER: &str = "manifest.json";

/// Temporary folders being written, so an internal error can remove them before the process
/// exits (no destructor runs then).
static ACTIVE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes every temporary output folder not yet committed; called when kam stops on an
/// internal error.
pub fn abandon_all() {
    let dirs = match ACTIVE.lock() {
        Ok(mut g) => std::mem::take(&mut *g),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    for d in dirs {
        let _ = fs::remove_dir_all(d);
    }
}

fn forget(temp: &Path) {
    if let Ok(mut g) = ACTIVE.lock() {
        g.retain(|d| d != temp);
    }
}

/// A folder being written; becomes the output on [`Staging::commit`], vanishes on drop.
#[derive(Debug)]
pub struct Staging {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staging {
    /// Prepares to write `target`. Refuses to replace an existing folder that is not empty and
    /// was not written by kam.
    pub fn begin(target: &Path) -> Result<Staging> {
        if target.exists() {
            if !target.is_dir() {
                return Err(Error::Usage(format!(
                    "the output {} exists and is a file, not a folder: choose another --out",
                    target.display()
                )));
            }
            let empty = fs::read_dir(target)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty && !target.join(MARKER).is_file() {
                return Err(Error::Usage(format!(
                    "refusing to replace {}: it is not empty and was not written by kam (no {MARKER}); choose another --out",
                    target.display()
                )));
            }
        }
        let (parent, prefix) = temp_prefix(target);
        fs::create_dir_all(&parent)
            .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
        let temp = parent.join(format!("{prefix}{}", std::process::id()));
        if temp.exists() {
            let _ = fs::remove_dir_all(&temp);
        }
        fs::create_dir(&temp)
            .map_err(|e| Error::io(format!("cannot create {}", temp.display()), e))?;
        if let Ok(mut g) = ACTIVE.lock() {
            g.push(temp.clone());
        }
        Ok(Staging {
            temp,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// The temporary folder being written.
    pub fn dir(&self) -> &Path {
        &self.temp
    }

    /// The path of `name` inside the output, its folder created.
    fn path_for(&self, name: &str) -> Result<PathBuf> {
        let path = self.temp.join(safe_relative(name)?);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p)
                .map_err(|e| Error::io(format!("cannot create {}", p.display()), e))?;
        }
        Ok(path)
    }

    /// Writes one file (a plain name, or a relative path inside the output).
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path_for(name)?;
        fs::write(&path, bytes)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    }

    /// Creates a folder inside the output (and its parents).
    pub fn mkdir(&self, name: &str) -> Result<()> {
        let path = self.temp.join(safe_relative(name)?);
        fs::create_dir_all(&path)
            .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))
    }

    /// Writes one file whose folder exists (see [`Staging::mkdir`]): one system call less per
    /// file than [`Staging::write`], for the thousands of reports of a large run.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.temp.join(safe_relative(name)?);
        direct::write_file(&path, bytes)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    }

    /// Creates one file for writing piece by piece; returns its path (for messages) and a
    /// buffered writer that writes around the page cache where it can ([`direct::OutFile`]).
    pub fn create(&self, name: &str) -> Result<(PathBuf, direct::OutFile)> {
        let path = self.path_for(name)?;
        let file = direct::OutFile::create(&path)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        Ok((path, file))
    }

    /// Creates one file that is written and patched in place (`scores.xlsx` fills in each zip
    /// entry's header after its data): a buffered writer through the page cache.
    pub fn create_seekable(&self, name: &str) -> Result<(PathBuf, std::io::BufWriter<fs::File>)> {
        let path = self.path_for(name)?;
        let file = fs::File::create(&path)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        Ok((path, std::io::BufWriter::with_capacity(WRITE_BUFFER, file)))
    }

    /// Moves the finished output into place, replacing the previous one, which is removed
    /// before this returns.
    pub fn commit(self) -> Result<PathBuf> {
        let (target, previous) = self.commit_keeping_previous()?;
        if let Some(old) = previous {
            remove_previous(&old);
        }
        Ok(target)
    }

    /// Moves the finished output into place; the previous output, if any, is left in a hidden
    /// folder beside it ([`is_previous_output`] names it) for the caller to remove with
    /// [`remove_previous`], now or later. Returns the output and that folder.
    pub fn commit_keeping_previous(mut self) -> Result<(PathBuf, Option<PathBuf>)> {
        let old = self.temp.with_file_name(format!(
            "{}{OLD_SUFFIX}",
            self.temp
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        ));
        let had_old = self.target.exists();
        if had_old {
            fs::rename(&self.target, &old).map_err(|e| {
                Error::io(
                    format!("cannot move the previous {} aside", self.target.display()),
                    e,
                )
            })?;
        }
        if let Err(e) = fs::rename(&self.temp, &self.target) {
            if had_old {
                let _ = fs::rename(&old, &self.target);
            }
            return Err(Error::io(
                format!("cannot move the output into {}", self.target.display()),
                e,
            ));
        }
        self.committed = true;
        forget(&self.temp);
        Ok((self.target.clone(), had_old.then_some(old)))
    }
}

/// The end of the name of a previous output moved aside: `.NAME.kam-tmp-PID.old`.
const OLD_SUFFIX: &str = ".old";

/// What follows the output's name in its temporary folder's name (`.NAME.kam-tmp-PID`).
const TEMP_TAG: &str = ".kam-tmp-";

/// The folder beside `target` where its temporary folders go, and the start of their names
/// (`.NAME.kam-tmp-`, to which the process id is added).
fn temp_prefix(target: &Path) -> (PathBuf, String) {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "kam-out".into());
    (parent, format!(".{name}{TEMP_TAG}"))
}

/// Whether `dir` is named as a previous output moved aside by [`Staging::commit_keeping_previous`]
/// (`.NAME.kam-tmp-PID.old`) and is a folder, not a link: the only folders
/// [`remove_previous`] is given by `kam` (its hidden `remove-previous-output` command checks
/// this first).
pub fn is_previous_output(dir: &Path) -> bool {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some(rest) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(OLD_SUFFIX))
    else {
        return false;
    };
    let Some((stem, pid)) = rest.rsplit_once(TEMP_TAG) else {
        return false;
    };
    !stem.is_empty()
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir())
}

/// Previous outputs of `target` left beside it by runs whose removal did not finish (the
/// machine stopped, the process was killed), to remove with the next one.
pub fn stale_previous(target: &Path) -> Vec<PathBuf> {
    let (parent, prefix) = temp_prefix(target);
    let Ok(entries) = fs::read_dir(&parent) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(OLD_SUFFIX))
        })
        .map(|e| e.path())
        .filter(|p| is_previous_output(p))
        .collect();
    found.sort();
    found
}

/// Removes a previous output folder: its files and those of its subfolders (plans, reviews) by
/// several threads at once, as removing a file is mostly waiting on the file system (at a
/// million accounts, 4 000 reviews and 3 GB: 0.94–1.13 s with `remove_dir_all`, 0.60–0.62 s
/// this way), then the folders. Links are removed, never followed.
pub fn remove_previous(dir: &Path) {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    let mut i = 0;
    while let Some(d) = dirs.get(i).cloned() {
        i += 1;
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => dirs.push(e.path()),
                Ok(_) => files.push(e.path()),
                Err(_) => {}
            }
        }
    }
    const THREADS: usize = 8;
    let per = files.len().div_ceil(THREADS).max(1);
    std::thread::scope(|s| {
        for part in files.chunks(per) {
            s.spawn(move || {
                for f in part {
                    let _ = fs::remove_file(f);
                }
            });
        }
    });
    let _ = fs::remove_dir_all(dir);
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.temp);
            forget(&self.temp);
        }
    }
}

/// Prepares `items` on the worker threads a window at a time and hands the results to `write`
/// in order, on the calling thread, while the next window is prepared. The order of the
/// results never depends on the number of threads.
pub fn pipelined<T: Sync, R: Send, E: Send>(
    items: &[T],
    window: usize,
    prepare: &(dyn Fn(&T) -> R + Sync),
    write: &mut (dyn FnMut(R) -> std::result::Result<(), E> + Send),
) -> std::result::Result<(), E> {
    use rayon::prelude::*;
    let mut pending: Vec<R> = Vec::new();
    for w in items.chunks(window.max(1)) {
        let (done, wrote) = rayon::join(
            || w.par_iter().map(prepare).collect::<Vec<R>>(),
            || pending.drain(..).try_for_each(&mut *write),
        );
        wrote?;
        pending = done;
    }
    pending.into_iter().try_for_each(write)
}

/// Checks that a name stays inside the output folder: no absolute paths, no `..`.
pub fn safe_relative(name: &str) -> Result<PathBuf> {
    let p = Path::new(name);
    let ok = !name.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if ok {
        Ok(p.to_path_buf())
    } else {
        Err(Error::Usage(format!(
            "refusing to write `{name}`: output names must stay inside the output folder"
        )))
    }
}

/// Turns any text (an account name, an id) into a safe file name: lowercase ASCII letters,
/// digits and `-`, never empty, never `.` or `..`.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let trimmed = out
        .trim_end_matches('-')
        .chars()
        .take(60)
        .collect::<String>();
    if trimmed.is_empty() {
        "item".to_string()
    } else {
        trimmed
    }
}

/// Neutralises spreadsheet formula injection in user text written to CSV/xlsx: text starting
/// with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'` unless it is a number.
pub fn neutralise(text: &str) -> std::borrow::Cow<'_, str> {
    let risky = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && text.trim().parse::<f64>().is_err() {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_cannot_escape() {
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug(".."), "item");
        assert_eq!(slug("ООО Ромашка"), "item");
        assert_eq!(slug("Acme, Inc."), "acme-inc");
        assert!(safe_relative("../x").is_err());
        assert!(safe_relative("/etc/x").is_err());
        assert!(safe_relative("plans/a.html").is_ok());
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("-120"), "-120");
        assert_eq!(neutralise("Acme"), "Acme");
    }

    #[test]
    fn a_failed_run_leaves_the_previous_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let s = Staging::begin(&out).unwrap();
        s.write(MARKER, b"{}").unwrap();
        s.write("a.txt", b"first").unwrap();
        s.commit().unwrap();
        let s = Staging::begin(&out).unwrap();
        s.write("a.txt", b"second").unwrap();
        drop(s); // failure before commit
        assert_eq!(fs::read_to_string(out.join("a.txt")).unwrap(), "first");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary folder left behind"
        );
    }

    #[test]
    fn a_new_output_replaces_the_previous_one_whole_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let outside = dir.path().join("outside.txt");
        fs::write(&outside, "keep").unwrap();
        let s = Staging::begin(&out).unwrap();
        s.write(MARKER, b"{}").unwrap();
        for i in 0..50 {
            s.write(&format!("reviews/k{i}.md"), b"old").unwrap();
        }
        s.write("plans/a.md", b"old").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside, s.dir().join("reviews/link")).unwrap();
        s.commit().unwrap();
        let s = Staging::begin(&out).unwrap();
        s.write(MARKER, b"{}").unwrap();
        s.write("reviews/k0.md", b"new").unwrap();
        s.commit().unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(left, ["out", "outside.txt"], "the previous output is gone");
        assert_eq!(fs::read_dir(out.join("reviews")).unwrap().count(), 1);
        assert!(!out.join("plans").exists());
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
    }

    #[test]
    fn refuses_to_replace_foreign_folders() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("precious.txt"), "x").unwrap();
        let err = Staging::begin(dir.path()).unwrap_err().to_string();
        assert!(err.contains("refusing to replace"), "{err}");
    }
}
