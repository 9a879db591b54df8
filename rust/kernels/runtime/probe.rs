//! The memory-bandwidth measure behind `gradfast bench`'s roofline: a copy and a triad
//! (STREAM's kernels) over arrays far larger than the caches, on the pool's threads and chunks.
//!
//! Bytes are counted as the memory bus moves them with ordinary stores: a written array is
//! first read into the cache (write-allocate), so a copy moves 3 arrays' bytes per pass and a
//! triad 4. A fused kernel whose outputs are also its inputs moves exactly the bytes it
//! declares, so the two figures compare.

use std::time::Instant;

use crate::runtime::pool::for_each_chunk;

crate::bundle! {
    /// One output and two inputs at one element range.
    pub struct Triad<'a, T> {
        pub a: &'a mut [T],
        pub b: &'a [T],
        pub c: &'a [T],
    }
}

crate::bundle! {
    /// One output and one input at one element range.
    pub struct Pair<'a, T> {
        pub a: &'a mut [T],
        pub b: &'a [T],
    }
}

crate::simd! {
    fn triad_slices(a: &mut [f64], b: &[f64], c: &[f64], s: f64) {
        a.iter_mut()
            .zip(b.iter().zip(c))
            .for_each(|(a, (&b, &c))| *a = b + s * c);
    }
}

/// The best rates one pass reached, in bytes per second (write-allocate counted).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bandwidth {
    pub copy: f64,
    pub triad: f64,
}

const WORD: usize = std::mem::size_of::<f64>();

/// Times `repeat` copies (`a = b`) and triads (`a = b + s c`) over arrays of `elements`
/// float64 values after one untimed pass of each, and returns the best rate of each. The
/// arrays are allocated and first written here; pick them several times the last-level cache.
pub fn memory_bandwidth(elements: usize, repeat: usize) -> Bandwidth {
    let (mut a, b, c) = (
        vec![0.0; elements],
        vec![1.0; elements],
        vec![2.0; elements],
    );
    let best = |bytes: usize, pass: &mut dyn FnMut()| {
        let mut fastest = f64::INFINITY;
        for run in 0..=repeat.max(1) {
            let start = Instant::now();
            pass();
            let t = start.elapsed().as_secs_f64();
            if run > 0 {
                fastest = fastest.min(t);
            }
        }
        (bytes * elements) as f64 / fastest.max(f64::MIN_POSITIVE)
    };
    let copy = best(3 * WORD, &mut || {
        let bundle = Pair { a: &mut a, b: &b };
        for_each_chunk(vec![bundle], 3 * WORD, |t| t.a.copy_from_slice(t.b));
    });
    let triad = best(4 * WORD, &mut || {
        let bundle = Triad {
            a: &mut a,
            b: &b,
            c: &c,
        };
        for_each_chunk(vec![bundle], 4 * WORD, |t| triad_slices(t.a, t.b, t.c, 3.0));
    });
    Bandwidth { copy, triad }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_positive_and_finite_even_for_empty_arrays() {
        for n in [0, 1000] {
            let bw = memory_bandwidth(n, 2);
            assert!(bw.copy.is_finite() && bw.copy >= 0.0, "{bw:?}");
            assert!(bw.triad.is_finite() && bw.triad >= 0.0, "{bw:?}");
        }
        assert!(memory_bandwidth(1000, 1).triad > 0.0);
    }

    #[test]
    fn the_triad_writes_b_plus_s_c() {
        let (mut a, b, c) = (vec![0.0; 5], vec![1.0; 5], vec![2.0; 5]);
        triad_slices(&mut a, &b, &c, 3.0);
        assert_eq!(a, vec![7.0; 5]);
    }
}
