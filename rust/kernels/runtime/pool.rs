//! The gradfast thread pool and the chunking every kernel shares.
//!
//! Work is cut into chunks of a fixed number of elements, independent of the thread count,
//! so reductions that combine per-chunk results in index order give the same bits whatever
//! the number of threads. A call whose work is too small to pay for waking the pool runs on
//! the calling thread. A process forked after the pool ran gets a pool of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::runtime::bundle::Split;

/// Elements a parallel task handles: large enough to amortise scheduling, small enough
/// to balance two to a few dozen cores.
pub const CHUNK: usize = 1 << 16;
/// The largest thread count [`set_num_threads`] takes.
pub const MAX_THREADS: usize = 1024;
/// Bytes of memory traffic below which a call runs on the calling thread, by default. Up to
/// about a last-level cache of data (32 MiB here), one core streams it from cache about as
/// fast as two that must first be woken and handed the chunks, and often faster (measured with
/// `gradfast bench --thread-sweep`); beyond it, memory bandwidth grows with the threads.
pub const PARALLEL_MIN_BYTES: usize = 32 << 20;

static PARALLEL_MIN: AtomicUsize = AtomicUsize::new(PARALLEL_MIN_BYTES);

/// Sets the traffic threshold of the pool (tests lower it to run the threaded paths on
/// small data; results do not depend on it).
pub fn set_parallel_min_bytes(bytes: usize) {
    PARALLEL_MIN.store(bytes, Ordering::Relaxed);
}

static THREADS: AtomicUsize = AtomicUsize::new(0);
/// `available_parallelism` reads cgroup files on every call, so it is asked once.
static CPUS: OnceLock<usize> = OnceLock::new();
static POOL: Mutex<Option<(u32, Arc<ThreadPool>)>> = Mutex::new(None);

/// The number of threads kernels use: the last [`set_num_threads`], else the number of
/// CPUs available to the process.
pub fn num_threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => *CPUS.get_or_init(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
        }),
        n => n,
    }
}

/// Sets the number of threads (clamped to `1..=MAX_THREADS`); the pool is rebuilt on next use.
pub fn set_num_threads(n: usize) {
    THREADS.store(n.clamp(1, MAX_THREADS), Ordering::Relaxed);
    *POOL.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

fn pool() -> Option<Arc<ThreadPool>> {
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if let Some((owner, _)) = guard.as_ref() {
        if *owner != pid {
            // A forked child: the parent's workers do not exist here, so its pool must be
            // neither used nor dropped (dropping would wait on them).
            std::mem::forget(guard.take());
        }
    }
    if guard.is_none() {
        // A pool that cannot be built (no threads left to spawn) means running serially.
        *guard = rayon::ThreadPoolBuilder::new()
            .num_threads(num_threads())
            .thread_name(|i| format!("gradfast-{i}"))
            .build()
            .ok()
            .map(|p| (pid, Arc::new(p)));
    }
    guard.as_ref().map(|(_, p)| p.clone())
}

/// The pool, when a call moving `bytes` bytes of memory should use it.
fn parallel(bytes: usize) -> Option<Arc<ThreadPool>> {
    if bytes >= PARALLEL_MIN.load(Ordering::Relaxed) && num_threads() > 1 {
        pool()
    } else {
        None
    }
}

/// Runs `f` on every bundle: on the calling thread when the call is small, otherwise on
/// chunks of [`CHUNK`] elements spread over the pool. `bytes_per_element` is the memory
/// traffic of one element of a bundle (all its reads and writes), the measure of the work.
pub fn for_each_chunk<S: Split>(
    bundles: Vec<S>,
    bytes_per_element: usize,
    f: impl Fn(S) + Sync + Send,
) {
    let total: usize = bundles.iter().map(Split::len).sum();
    let Some(pool) = parallel(total.saturating_mul(bytes_per_element)) else {
        bundles.into_iter().for_each(f);
        return;
    };
    let mut tasks = Vec::with_capacity(total / CHUNK + bundles.len());
    for mut b in bundles {
        while b.len() > CHUNK {
            let (head, tail) = b.split_at(CHUNK);
            tasks.push(head);
            b = tail;
        }
        tasks.push(b);
    }
    pool.install(|| tasks.into_par_iter().for_each(f));
}

/// Maps `f` over `tasks` on the pool when the call moves `bytes` bytes of memory, else on the
/// calling thread; the results are in the tasks' order whatever order they finish in.
pub fn map_tasks<I: Send, R: Send>(
    tasks: Vec<I>,
    bytes: usize,
    f: impl Fn(I) -> R + Sync + Send,
) -> Vec<R> {
    match parallel(bytes) {
        // An indexed collect keeps the tasks' order.
        Some(pool) => pool.install(|| tasks.into_par_iter().map(f).collect()),
        None => tasks.into_iter().map(f).collect(),
    }
}

/// Runs `f` on every task over the pool: for compute-bound work that the caller judged worth
/// the threads (the tasks are fixed by the caller, so they do not depend on the thread count).
pub fn for_each_task<I: Send>(tasks: Vec<I>, f: impl Fn(I) + Sync + Send) {
    match pool() {
        Some(pool) if num_threads() > 1 => pool.install(|| tasks.into_par_iter().for_each(f)),
        _ => tasks.into_iter().for_each(f),
    }
}

/// Maps every chunk of [`CHUNK`] elements of each slice to a partial result with `f`;
/// returns one vector of partials per slice, in index order whatever order the chunks
/// finish in. The chunking does not depend on the thread count, so neither do the partials.
pub fn chunk_partials<T: Sync, R: Send>(
    slices: &[&[T]],
    f: impl Fn(&[T]) -> R + Sync + Send,
) -> Vec<Vec<R>> {
    let tasks: Vec<(usize, &[T])> = slices
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.chunks(CHUNK).map(move |c| (i, c)))
        .collect();
    let bytes = slices.iter().map(|s| std::mem::size_of_val(*s)).sum();
    let results = map_tasks(tasks, bytes, |(i, c)| (i, f(c)));
    let mut out: Vec<Vec<R>> = slices.iter().map(|_| Vec::new()).collect();
    for (i, r) in results {
        out[i].push(r);
    }
    out
}

/// [`for_each_chunk`] for a kernel that also reduces: runs `f` on every chunk of [`CHUNK`]
/// elements of every bundle (cut the same way on one thread or many) and returns one vector
/// of the partial results per bundle, in index order whatever order the chunks finish in.
pub fn bundle_partials<S: Split, R: Send>(
    bundles: Vec<S>,
    bytes_per_element: usize,
    f: impl Fn(S) -> R + Sync + Send,
) -> Vec<Vec<R>> {
    map_chunks(bundles, CHUNK, bytes_per_element, f)
}

/// [`bundle_partials`] with pieces of `chunk` elements (the last of a bundle shorter), for
/// kernels whose pieces must be whole rows of a layout.
pub fn map_chunks<S: Split, R: Send>(
    bundles: Vec<S>,
    chunk: usize,
    bytes_per_element: usize,
    f: impl Fn(S) -> R + Sync + Send,
) -> Vec<Vec<R>> {
    let chunk = chunk.max(1);
    let total: usize = bundles.iter().map(Split::len).sum();
    let mut counts = Vec::with_capacity(bundles.len());
    let mut tasks = Vec::with_capacity(total / chunk + bundles.len());
    for mut b in bundles {
        let before = tasks.len();
        while b.len() > chunk {
            let (head, tail) = b.split_at(chunk);
            tasks.push(head);
            b = tail;
        }
        if !b.is_empty() {
            tasks.push(b);
        }
        counts.push(tasks.len() - before);
    }
    let mut results = map_tasks(tasks, total.saturating_mul(bytes_per_element), f).into_iter();
    counts
        .into_iter()
        .map(|n| results.by_ref().take(n).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::bundle! {
        pub struct One<'a, T> {
            pub x: &'a mut [T],
        }
    }

    #[test]
    fn every_element_is_visited_once_for_any_thread_count() {
        for threads in [1, 2, 3] {
            set_num_threads(threads);
            let mut a = vec![0u32; 3 * CHUNK + 17];
            let mut b = vec![0u32; 5];
            let mut c: Vec<u32> = vec![];
            let bundles = vec![One { x: &mut a }, One { x: &mut b }, One { x: &mut c }];
            for_each_chunk(bundles, PARALLEL_MIN_BYTES, |o| {
                o.x.iter_mut().for_each(|x| *x += 1)
            });
            assert!(a.iter().chain(&b).all(|&x| x == 1));
        }
    }

    #[test]
    fn bundle_partials_are_per_bundle_in_index_order_and_the_chunks_are_written() {
        // chunk 0 made the slowest, with more threads than cores
        set_num_threads(8);
        let chunks = PARALLEL_MIN_BYTES / (8 * CHUNK) + 1;
        let mut a = vec![0u64; chunks * CHUNK + 3];
        let mut b = vec![0u64; 2];
        let mut e: Vec<u64> = vec![];
        let (a0, b0) = (a.as_ptr() as usize, b.as_ptr() as usize);
        let bundles = vec![One { x: &mut a }, One { x: &mut e }, One { x: &mut b }];
        let parts = bundle_partials(bundles, 8, |o: One<u64>| {
            let at = o.x.as_ptr() as usize;
            if at == a0 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            o.x.iter_mut().for_each(|x| *x = 1);
            at
        });
        let want: Vec<usize> = (0..=chunks).map(|i| a0 + 8 * i * CHUNK).collect();
        assert_eq!(parts, vec![want, vec![], vec![b0]]);
        assert!(a.iter().chain(&b).all(|&x| x == 1));
    }

    #[test]
    fn partials_are_in_index_order_even_when_the_first_chunk_finishes_last() {
        // More threads than cores, and chunk 0 made the slowest: a collect in completion
        // order would put it last.
        set_num_threads(8);
        let chunks = PARALLEL_MIN_BYTES / (8 * CHUNK) + 1;
        let a: Vec<u64> = (0..(chunks * CHUNK + 3) as u64).collect();
        let parts = chunk_partials(&[&a, &[]], |c: &[u64]| {
            if c[0] == 0 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            c[0]
        });
        let want: Vec<u64> = (0..=chunks).map(|i| (i * CHUNK) as u64).collect();
        assert_eq!(parts[0], want);
        assert!(parts[1].is_empty());
    }

    #[test]
    fn map_chunks_cuts_the_same_pieces_for_any_size_and_thread_count() {
        let n = PARALLEL_MIN_BYTES / 4 + 3 * CHUNK + 5;
        let run = |threads, len: usize| {
            set_num_threads(threads);
            let mut a = vec![1u32; len];
            let mut e: Vec<u32> = vec![];
            map_chunks(vec![One { x: &mut a }, One { x: &mut e }], 1000, 4, |o| {
                o.x.iter_mut().for_each(|v| *v += 1);
                o.x.len()
            })
        };
        for threads in [1, 3] {
            let parts = run(threads, n);
            assert_eq!(parts[0].len(), n.div_ceil(1000));
            assert!(parts[0][..parts[0].len() - 1].iter().all(|&l| l == 1000));
            assert_eq!(parts[0].iter().sum::<usize>(), n);
            assert!(parts[1].is_empty());
            assert_eq!(run(threads, 2500)[0], vec![1000, 1000, 500]);
        }
    }
}
