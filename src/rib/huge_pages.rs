//! Big tables on transparent huge pages (`MADV_HUGEPAGE`, a hint).
//!
//! The route table's per-dest arrays (the slab, each Adj-RIB-Out, the prefix
//! index) reach tens of MiB at a million routes. On 4 KiB pages every one of
//! their pages costs a fault and a zeroing as the table grows, and every
//! random probe a TLB miss; backed by 2 MiB pages both mostly go. The advice
//! is given when a buffer is (re)allocated, before its new part is touched,
//! so pages are filled anyway and RSS does not grow; buffers under 2 MiB have
//! no aligned 2 MiB range and are left alone.

const HUGE: usize = 2 << 20;

/// Advises huge pages for `v`'s buffer (one of 2 MiB or more). The range
/// covers the buffer's whole pages, not only its aligned 2 MiB ranges: an
/// advice on part of a mapping splits it, and the allocator's `mremap` of
/// a split mapping fails into a copy.
pub(crate) fn advise<T>(v: &Vec<T>) {
    const PAGE: usize = 4096;
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < HUGE {
        return;
    }
    let start = v.as_ptr() as usize;
    let (first, end) = (
        start & !(PAGE - 1),
        (start + bytes + PAGE - 1) & !(PAGE - 1),
    );
    // SAFETY: whole pages of `v`'s allocation (the first and last may hold
    // the allocator's neighbouring data); MADV_HUGEPAGE changes no content,
    // only how the kernel backs the pages.
    unsafe {
        libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
    }
}

/// `v.push(item)`, with the advice renewed whenever the buffer grows.
pub(crate) fn push<T>(v: &mut Vec<T>, item: T) {
    if v.len() == v.capacity() {
        v.reserve(1);
        advise(v);
    }
    v.push(item);
}

/// `v.resize(len, value)`, with the advice renewed whenever the buffer grows.
pub(crate) fn resize<T: Clone>(v: &mut Vec<T>, len: usize, value: T) {
    if len > v.capacity() {
        v.reserve(len - v.len());
        advise(v);
    }
    v.resize(len, value);
}

#[cfg(test)]
mod tests {
    #[test]
    fn growth_keeps_contents_and_amortizes() {
        let mut v: Vec<u32> = Vec::new();
        let mut grown = 0;
        for i in 0..2_000_000u32 {
            let cap = v.capacity();
            super::push(&mut v, i);
            grown += usize::from(v.capacity() != cap);
        }
        assert!(v.iter().enumerate().all(|(i, &x)| i as u32 == x));
        // Doubling: about log2(2M) reallocations, not one per push.
        assert!(grown < 40, "{grown} reallocations");
        super::resize(&mut v, 5_000_000, 7);
        assert_eq!(
            (v.len(), v[1_999_999], v[4_999_999]),
            (5_000_000, 1_999_999, 7)
        );
    }
}
