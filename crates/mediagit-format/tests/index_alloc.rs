//! Reading a version 4 worktree index allocates nothing per entry: this
//! binary counts every allocation (its own global allocator) while
//! 100,000 entries are checked and read.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use mediagit_format::index::{IndexEntry, IndexFile, IndexKind, IndexView, StatInfo};
use mediagit_format::ObjectId;

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator, which
// upholds GlobalAlloc's contract; the only addition is an atomic counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout the caller gave us, as GlobalAlloc requires.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated by `System` with layout `l` above.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn reading_100k_entries_does_not_allocate_per_entry() {
    let entries: Vec<IndexEntry> = (0..100_000u32)
        .map(|i| IndexEntry {
            path: format!("shots/{:03}/frame_{i:07}.exr", i / 1000),
            kind: IndexKind::File,
            stat: StatInfo {
                size: i as u64,
                ..Default::default()
            },
            content: ObjectId::hash(&i.to_le_bytes()),
            manifest: ObjectId::hash(&(i + 1).to_le_bytes()),
            target: None,
        })
        .collect();
    let bytes = IndexFile {
        entries,
        ..Default::default()
    }
    .encode();
    let before = ALLOCS.load(Ordering::Relaxed);
    let view = IndexView::parse(&bytes).unwrap();
    let mut total = 0u64;
    let mut path_bytes = 0usize;
    for e in view.iter() {
        total += e.stat.size;
        path_bytes += e.path.len();
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(view.len(), 100_000);
    assert_eq!(total, (0..100_000u64).sum::<u64>());
    assert!(path_bytes > 100_000 * 20);
    assert!(
        after - before < 16,
        "{} allocations to read 100,000 entries",
        after - before
    );
    // The owned decode, for comparison, allocates at least one path each.
    let before = ALLOCS.load(Ordering::Relaxed);
    let owned = IndexFile::decode(&bytes).unwrap();
    assert!(ALLOCS.load(Ordering::Relaxed) - before >= 100_000);
    assert_eq!(owned.entries.len(), 100_000);
}
