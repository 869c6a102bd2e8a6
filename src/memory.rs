//! The process's allocator: the system's, except that very large blocks are mapped on their
//! own in transparent huge pages.
//!
//! The one such block in normal use is argon2's working memory, 19 MiB for every password
//! hashed or checked. From 4 KiB pages it costs about 4,900 page faults, each zeroing its page,
//! and the unmapping after: on the 2-core benchmark machine that took a hash from 15 ms to 25 ms
//! of CPU, so page faults, not argon2, bounded logins. In 2 MiB pages it takes ten faults. The
//! block is still returned to the system as soon as it is freed, so idle memory is unchanged.
//! Where huge pages are off (`/sys/kernel/mm/transparent_hugepage/enabled` set to `never`) the
//! advice is ignored and blocks are mapped as before.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks at least this large are mapped on their own, in huge pages.
pub const HUGE_BLOCK: usize = 16 << 20;

/// The size of a transparent huge page on x86-64 and (with 4 KiB base pages) AArch64.
const HUGE_PAGE: usize = 2 << 20;

/// A [`GlobalAlloc`] that maps blocks of [`HUGE_BLOCK`] and more in huge pages and leaves every
/// other block to [`System`]. Whether a block is huge depends only on its size, which the
/// caller gives again when freeing it, so every block returns to the path that made it.
pub struct HugeBlocks;

impl HugeBlocks {
    fn is_huge(layout: Layout) -> bool {
        layout.size() >= HUGE_BLOCK && layout.align() <= 4096
    }

    /// The length mapped for `size` bytes: whole huge pages, so that the kernel aligns the
    /// mapping on a huge page boundary and every page of it can be huge.
    fn mapped_len(size: usize) -> usize {
        size.div_ceil(HUGE_PAGE) * HUGE_PAGE
    }

    /// Maps `size` zeroed bytes and asks for huge pages.
    unsafe fn map(size: usize) -> *mut u8 {
        let len = Self::mapped_len(size);
        // SAFETY: an anonymous private mapping of `len` bytes; no existing memory is touched.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        // SAFETY: advice on the mapping just made. Refused advice (huge pages off) is harmless.
        unsafe { libc::madvise(address, len, libc::MADV_HUGEPAGE) };
        address.cast()
    }
}

// SAFETY: huge blocks come from `mmap` (page-aligned, zero-filled, exclusive to the caller)
// and go back with `munmap` of the same length; everything else is `System`'s.
unsafe impl GlobalAlloc for HugeBlocks {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::is_huge(layout) {
            // SAFETY: see `map`.
            unsafe { Self::map(layout.size()) }
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::is_huge(layout) {
            // SAFETY: see `map`; a fresh anonymous mapping is already zero.
            unsafe { Self::map(layout.size()) }
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if Self::is_huge(layout) {
            // SAFETY: `ptr` was mapped by `map` with this length (same size, same rounding).
            unsafe { libc::munmap(ptr.cast(), Self::mapped_len(layout.size())) };
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !Self::is_huge(layout) && !Self::is_huge(new_layout) {
            // SAFETY: the caller's contract, passed on.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // Into, out of or between huge blocks: a new block, the contents copied, the old freed.
        // SAFETY: as for `alloc`; the copy covers the smaller of the two sizes, inside both.
        unsafe {
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            moved
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn huge_pages_in(address: *const u8) -> Option<u64> {
        let wanted = address as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((start, end)) = range.split_once('-')
                && let (Ok(start), Ok(end)) = (
                    usize::from_str_radix(start, 16),
                    usize::from_str_radix(end, 16),
                )
            {
                inside = (start..end).contains(&wanted);
            } else if inside && let Some(kib) = line.strip_prefix("AnonHugePages:") {
                return kib.trim().trim_end_matches(" kB").trim().parse().ok();
            }
        }
        None
    }

    #[test]
    fn a_huge_block_is_zeroed_in_huge_pages_and_keeps_its_contents_when_resized() {
        let allocator = HugeBlocks;
        let small = Layout::from_size_align(4096, 8).unwrap();
        let huge = Layout::from_size_align(19 << 20, 8).unwrap();
        unsafe {
            let block = allocator.alloc_zeroed(huge);
            assert!(!block.is_null());
            assert_eq!(block as usize % 4096, 0, "page-aligned");
            let bytes = std::slice::from_raw_parts_mut(block, huge.size());
            assert!(bytes.iter().all(|b| *b == 0), "zeroed");
            bytes.fill(7);
            if std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
                .is_ok_and(|mode| !mode.contains("[never]"))
            {
                assert!(
                    huge_pages_in(block).is_some_and(|kib| kib >= 2048),
                    "the block is in huge pages where the system allows them"
                );
            }
            // Huge to small: the first bytes survive.
            let shrunk = allocator.realloc(block, huge, small.size());
            assert!(
                std::slice::from_raw_parts(shrunk, small.size())
                    .iter()
                    .all(|b| *b == 7)
            );
            // Small to huge and back to the system's allocator.
            let grown = allocator.realloc(shrunk, small, huge.size());
            assert!(
                std::slice::from_raw_parts(grown, small.size())
                    .iter()
                    .all(|b| *b == 7)
            );
            allocator.dealloc(grown, huge);
            // Between ordinary sizes the system's allocator does the work, contents kept.
            let block = allocator.alloc(small);
            block.write_bytes(9, small.size());
            let grown = allocator.realloc(block, small, 1 << 20);
            assert!(
                std::slice::from_raw_parts(grown, small.size())
                    .iter()
                    .all(|b| *b == 9)
            );
            allocator.dealloc(grown, Layout::from_size_align(1 << 20, 8).unwrap());
        }
    }
}
