//! Large index arrays in memory backed by transparent huge pages.
//!
//! A query touches a few thousand random places of arrays that are hundreds
//! of megabytes at 10 million entries. With 4 KB pages nearly every one of
//! those accesses also misses the TLB and waits for a page walk; with 2 MB
//! pages the page tables of the whole index fit the TLB. Linux grants huge
//! pages to anonymous memory that asks for them (`madvise(MADV_HUGEPAGE)`,
//! which `memmap2` exposes safely); where that fails, or for small arrays,
//! the array lives on the heap. Values are plain data (`bytemuck::Pod`), so
//! viewing the mapping as a slice needs no `unsafe` here.

use bytemuck::{Pod, Zeroable};
use memmap2::{Advice, MmapMut};

/// Arrays smaller than this stay on the heap.
const MIN_MAPPED_BYTES: usize = 4 << 20;

/// A fixed-length, zero-initialised array of `T`.
pub(crate) enum HugeArray<T: Pod> {
    Mapped(MmapMut, usize),
    Heap(Vec<T>),
}

impl<T: Pod + Zeroable> HugeArray<T> {
    pub(crate) fn zeroed(len: usize) -> Self {
        let bytes = len.saturating_mul(std::mem::size_of::<T>());
        if bytes >= MIN_MAPPED_BYTES
            && let Ok(map) = MmapMut::map_anon(bytes)
        {
            // Only advice: if the kernel declines, the mapping still works.
            let _ = map.advise(Advice::HugePage);
            return HugeArray::Mapped(map, len);
        }
        HugeArray::Heap(vec![T::zeroed(); len])
    }

    pub(crate) fn from_slice(values: &[T]) -> Self {
        let mut a = Self::zeroed(values.len());
        a.as_mut_slice().copy_from_slice(values);
        a
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            HugeArray::Mapped(map, len) => &bytemuck::cast_slice(&map[..])[..*len],
            HugeArray::Heap(v) => v,
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            HugeArray::Mapped(map, len) => &mut bytemuck::cast_slice_mut(&mut map[..])[..*len],
            HugeArray::Heap(v) => v,
        }
    }
}

impl<T: Pod> std::fmt::Debug for HugeArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HugeArray::Mapped(_, len) => write!(f, "HugeArray(mapped, {len})"),
            HugeArray::Heap(v) => write!(f, "HugeArray(heap, {})", v.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_arrays_read_back_what_was_written() {
        for len in [0usize, 10, 3 << 20] {
            let mut a = HugeArray::<u32>::zeroed(len);
            assert!(a.as_slice().iter().all(|&v| v == 0));
            for (i, v) in a.as_mut_slice().iter_mut().enumerate() {
                *v = i as u32;
            }
            assert!(a.as_slice().iter().enumerate().all(|(i, &v)| v == i as u32));
            assert_eq!(a.as_slice().len(), len);
        }
        let words = HugeArray::<[u64; 4]>::from_slice(&vec![[1, 2, 3, 4]; 200_000]);
        assert!(words.as_slice().iter().all(|w| *w == [1, 2, 3, 4]));
    }
}
