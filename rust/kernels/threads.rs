//! The gradfast thread pool and the chunking every kernel shares.
//!
//! Work is cut into chunks of a fixed number of elements, independent of the thread count,
//! so reductions that combine per-chunk results in index order give the same bits whatever
//! the number of threads. Inputs smaller than [`PARALLEL_MIN`] run on the calling thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use rayon::ThreadPool;

/// Elements a parallel task handles: large enough to amortise scheduling, small enough
/// to balance two to a few dozen cores.
pub const CHUNK: usize = 1 << 16;
/// Below this many elements in a call, threads cost more than they save.
pub const PARALLEL_MIN: usize = 1 << 16;

static THREADS: AtomicUsize = AtomicUsize::new(0);
/// `available_parallelism` reads cgroup files on every call, so it is asked once.
static CPUS: OnceLock<usize> = OnceLock::new();
static POOL: Mutex<Option<Arc<ThreadPool>>> = Mutex::new(None);

/// The number of threads kernels use: the last [`set_num_threads`], else the number of
/// CPUs available to the process.
pub fn num_threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        n => n,
    }
}

/// Sets the number of threads (at least 1); the pool is rebuilt on next use.
pub fn set_num_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
    *POOL.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

fn pool() -> Option<Arc<ThreadPool>> {
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        // A pool that cannot be built (no threads left to spawn) means running serially.
        *guard = rayon::ThreadPoolBuilder::new()
            .num_threads(num_threads())
            .thread_name(|i| format!("gradfast-{i}"))
            .build()
            .ok()
            .map(Arc::new);
    }
    guard.clone()
}

/// Whether a call over `total` elements should use the pool.
fn parallel(total: usize) -> Option<Arc<ThreadPool>> {
    if total >= PARALLEL_MIN && num_threads() > 1 {
        pool()
    } else {
        None
    }
}

/// A bundle of equally long slices that a kernel walks together (one tensor's parameters,
/// gradients and state), which can be cut in two at an element index.
pub trait Split: Sized + Send {
    fn len(&self) -> usize;
    fn split_at(self, mid: usize) -> (Self, Self);
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs `f` on every bundle: on the calling thread for small inputs, otherwise on chunks of
/// [`CHUNK`] elements spread over the pool.
pub fn for_each_chunk<S: Split>(bundles: Vec<S>, f: impl Fn(S) + Sync + Send) {
    let total = bundles.iter().map(Split::len).sum();
    let Some(pool) = parallel(total) else {
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

/// Reduces each slice to per-chunk partial results (chunks of [`CHUNK`] elements, in index
/// order) with `f`; returns one vector of partials per slice. The chunking does not depend on
/// the thread count, so neither do the partials.
pub fn chunk_partials<T: Sync, R: Send>(
    slices: &[&[T]],
    f: impl Fn(&[T]) -> R + Sync + Send,
) -> Vec<Vec<R>> {
    let tasks: Vec<(usize, &[T])> = slices
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.chunks(CHUNK).map(move |c| (i, c)))
        .collect();
    let total = slices.iter().map(|s| s.len()).sum();
    let results: Vec<(usize, R)> = match parallel(total) {
        Some(pool) => pool.install(|| tasks.into_par_iter().map(|(i, c)| (i, f(c))).collect()),
        None => tasks.into_iter().map(|(i, c)| (i, f(c))).collect(),
    };
    let mut out: Vec<Vec<R>> = slices.iter().map(|_| Vec::new()).collect();
    for (i, r) in results {
        out[i].push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct One<'a>(&'a mut [u32]);
    impl Split for One<'_> {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn split_at(self, mid: usize) -> (Self, Self) {
            let (a, b) = self.0.split_at_mut(mid);
            (One(a), One(b))
        }
    }

    #[test]
    fn every_element_is_visited_once_for_any_thread_count() {
        for threads in [1, 2, 3] {
            set_num_threads(threads);
            let mut a = vec![0u32; 3 * CHUNK + 17];
            let mut b = vec![0u32; 5];
            let mut c: Vec<u32> = vec![];
            for_each_chunk(vec![One(&mut a), One(&mut b), One(&mut c)], |o| {
                o.0.iter_mut().for_each(|x| *x += 1)
            });
            assert!(a.iter().chain(&b).all(|&x| x == 1));
        }
    }

    #[test]
    fn partials_are_in_index_order() {
        set_num_threads(2);
        let a: Vec<u64> = (0..(2 * CHUNK as u64 + 3)).collect();
        let parts = chunk_partials(&[&a, &[]], |c: &[u64]| c[0]);
        assert_eq!(parts[0], vec![0, CHUNK as u64, 2 * CHUNK as u64]);
        assert!(parts[1].is_empty());
    }
}
