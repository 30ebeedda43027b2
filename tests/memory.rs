//! Heap budget of deciding one large repository: 100,000 images, 30,000 of them expired
//! untagged images, as `make bench`'s 1 × 100,000 scenario. The deployed function has
//! 128 MB and a live sweep of that repository must peak at 40 MB RSS (bench/RESULTS.md
//! measures the whole process); this holds the planner's share to a budget in `make test`.
//!
//! Its own test binary: the counting allocator sees nothing but this test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use ecr_janitor::decide::decide;
use ecr_janitor::decide::graph::Manifests;
use ecr_janitor::decide::policy::Policy;
use ecr_janitor::model::Image;

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    /// Resized in place where the system allocator can (large blocks are remapped, not
    /// copied), so a resize counts only its difference, as the process's memory does.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            let now = IN_USE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                + (new_size - layout.size());
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            IN_USE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const IMAGES: usize = 100_000;
/// The listed images, in bytes: 128 bytes an image, with no allocation for a sha256 digest
/// or a known media type (13.9 MB measured, tags included).
const LISTED_BUDGET: usize = 15 * 1024 * 1024;
/// What deciding may add on top of the listed images at its peak, in bytes (5.9 MB
/// measured: the images stay where the listing put them, and the decisions name them by
/// place, so deciding adds only the sort keys, the rule-match bits and the decisions).
const DECIDE_BUDGET: usize = 12 * 1024 * 1024;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
}

/// bench/run.py's mix: per 20 images, 6 expired untagged, 7 recent untagged, 7 tagged.
fn repository() -> Vec<Image> {
    (0..IMAGES)
        .map(|i| {
            let digest = format!(
                "sha256:{:064x}",
                (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            );
            let (tags, days) = match i % 20 {
                0..6 => (Vec::new(), 15 + (i % 45) as i64),
                6..13 => (Vec::new(), (i % 13) as i64),
                _ => (vec![format!("v{i}")], 1 + (i % 90) as i64),
            };
            let mut image = Image::plain(&digest, tags, now() - Duration::days(days));
            image.size_bytes = Some(30_000_000);
            image
        })
        .collect()
}

#[test]
fn deciding_a_repository_of_100k_images_stays_within_its_heap_budget() {
    let policy = Policy::untagged(Some(14), None).expect("a policy");
    let before = IN_USE.load(Ordering::Relaxed);
    let images = repository();
    let listed = IN_USE.load(Ordering::Relaxed);
    PEAK.store(listed, Ordering::Relaxed);
    let plan = decide(images, &Manifests::new(), &BTreeMap::new(), &policy, now());
    let added = PEAK.load(Ordering::Relaxed) - listed;
    assert_eq!(plan.expired.len(), 30_000);
    assert_eq!(plan.kept.len(), 70_000);
    let images = listed - before;
    println!(
        "listed images {:.1} MB, deciding added at most {:.1} MB",
        images as f64 / 1e6,
        added as f64 / 1e6
    );
    assert!(
        images <= LISTED_BUDGET,
        "the listed images take {images} bytes, over {LISTED_BUDGET}"
    );
    assert!(
        added <= DECIDE_BUDGET,
        "deciding added {added} bytes at its peak, over {DECIDE_BUDGET}"
    );
}
