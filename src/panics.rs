//! Containment of panics in the readers kam builds on. A malformed file can make a third-party
//! reader (calamine) index out of bounds; kam turns that into an error for the one workbook,
//! never a crash of the run. Everything else that panics is a bug in kam: the binary's panic
//! hook prints a short apology and exits with code 2.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many contained sections are running (on any thread: readers work on rayon's threads).
static CONTAINED: AtomicUsize = AtomicUsize::new(0);

/// True while a contained section runs: a panic hook should stay silent and let it unwind.
pub fn is_contained() -> bool {
    CONTAINED.load(Ordering::SeqCst) > 0
}

/// The text of a panic payload.
pub fn payload_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}

/// Runs `f`; a panic inside it (or in the threads it waits for) comes back as `Err` with the
/// panic's message.
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    CONTAINED.fetch_add(1, Ordering::SeqCst);
    let r = catch_unwind(AssertUnwindSafe(f));
    CONTAINED.fetch_sub(1, Ordering::SeqCst);
    r.map_err(|p| payload_text(p.as_ref()))
}

/// For fuzz targets: a panic inside a contained section unwinds to it quietly, as in the
/// binary; any other panic prints and aborts, so the fuzzer records the input as a finding.
pub fn abort_unless_contained() {
    std::panic::set_hook(Box::new(|info| {
        if is_contained() {
            return;
        }
        eprintln!("{info}");
        std::process::abort();
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r: Result<(), String> = contain(|| panic!("index out of bounds"));
        std::panic::set_hook(prev);
        assert_eq!(r, Err("index out of bounds".to_string()));
        assert_eq!(contain(|| 5), Ok(5));
    }
}
