//! Hints to the processor's cache. A walk that goes from value to value through pointers
//! (the decoding of a snapshot, from each resource to its community) waits on memory at each
//! step; asking for the next values a few steps ahead lets the loads overlap. A hint reads
//! nothing and changes nothing: a wrong address costs a wasted fetch, never a fault.

use std::sync::Arc;

const LINE: usize = 64;

/// Asks for the cache line holding `p`.
#[inline(always)]
pub(crate) fn fetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it does not dereference `p` and faults on no address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for every line of the `len` bytes from `p`.
#[inline(always)]
pub(crate) fn fetch_bytes(p: *const u8, len: usize) {
    lines(p, len).for_each(fetch);
}

/// The start of each cache line the `len` bytes from `p` touch.
fn lines(p: *const u8, len: usize) -> impl Iterator<Item = *const u8> {
    let into_line = p as usize % LINE;
    let line_start = p.wrapping_sub(into_line);
    (0..into_line + len)
        .step_by(LINE)
        .map(move |offset| line_start.wrapping_add(offset))
}

/// Asks for the start of what `a` points to, with the counts before it (which a clone
/// changes).
#[inline(always)]
pub(crate) fn fetch_arc<T: ?Sized>(a: &Arc<T>) {
    let counts = 2 * std::mem::size_of::<usize>();
    fetch(Arc::as_ptr(a).cast::<u8>().wrapping_sub(counts));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_the_bytes_touch_is_asked_for_once() {
        let at = |a: usize| a as *const u8;
        let starts =
            |p: usize, len: usize| lines(at(p), len).map(|l| l as usize).collect::<Vec<_>>();
        assert_eq!(starts(640, 64), [640]);
        assert_eq!(starts(700, 4), [640]);
        assert_eq!(starts(700, 5), [640, 704]);
        assert_eq!(starts(700, 20), [640, 704]);
        assert_eq!(starts(640, 65), [640, 704]);
        assert_eq!(starts(641, 192), [640, 704, 768, 832]);
        assert_eq!(starts(640, 0), Vec::<usize>::new());
        // A hint reads nothing: not even the null address faults.
        fetch_bytes(std::ptr::null(), 256);
        fetch_arc(&Arc::<str>::from("x"));
    }
}
