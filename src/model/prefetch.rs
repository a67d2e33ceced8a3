//! Hints that ask the processor to start loading records before they are read: the loops
//! that write a KAM's evidence and dossiers visit records scattered over the whole dataset,
//! and a hint some rows ahead lets several of those loads wait at once instead of one after
//! another (`crate::score::kams::Renderer::prefetch`). A hint reads nothing into the program
//! and changes nothing; on processors other than x86_64 it does nothing.

/// Asks the processor to load the cache line at `p`.
#[inline(always)]
pub fn prefetch_line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults and reads nothing into the program,
    // whatever the address; SSE, which it needs, is part of every x86_64 processor.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks the processor to load every cache line of a record.
#[inline(always)]
pub fn prefetch_record<T>(r: Option<&T>) {
    if let Some(r) = r {
        let p = (r as *const T).cast::<u8>();
        for off in (0..std::mem::size_of::<T>()).step_by(64) {
            prefetch_line(p.wrapping_add(off));
        }
    }
}
