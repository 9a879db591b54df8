//! Inverted dropout with the reference's counter-based mask.
//!
//! Element `i` of the `k`-th training forward is kept iff `uniform(seed, k, i) >= p`
//! (`p = drop_rate`). The uniform is `(bits >> 11) * 2^-53`, so the test is exact in integers:
//! `bits >> 11 >= ceil(p * 2^53)`. The mask is kept as one byte per element (1 = kept);
//! output and gradient are `value * m` with `m` the scale or zero in the element type, as the
//! reference multiplies by its mask (so a dropped NaN or inf gives NaN).

use crate::runtime::bundle::Index;
use crate::runtime::pool::for_each_chunk;
use crate::runtime::random::Stream;
use crate::Real;

crate::bundle! {
    struct Forward<'a, T> {
        pub x: &'a [T],
        pub out: &'a mut [T],
        pub keep: &'a mut [u8],
        pub at: Index,
    }
}

crate::bundle! {
    struct Backward<'a, T> {
        pub g: &'a [T],
        pub keep: &'a [u8],
        pub out: &'a mut [T],
    }
}

/// A training forward's mask: the layer's `drop_rate` and `seed`, and its
/// `num_training_calls` so far (the stream of this mask).
#[derive(Clone, Copy, Debug)]
pub struct DropoutArgs {
    pub drop_rate: f64,
    pub seed: u64,
    pub num_training_calls: u64,
}

/// `1 / (1 - drop_rate)` rounded once to `T`: the factor of the kept elements.
pub fn scale<T: Real>(drop_rate: f64) -> T {
    T::of(1.0 / (1.0 - drop_rate))
}

/// The smallest `bits >> 11` that is kept: `ceil(drop_rate * 2^53)` (exact in [0, 1)).
fn threshold(drop_rate: f64) -> u64 {
    (drop_rate * (1u64 << 53) as f64).ceil() as u64
}

crate::simd! {
    fn forward_piece<T: Real>(x: &[T], out: &mut [T], keep: &mut [u8], at: u64, s: Stream, thr: u64, scale: T) {
        let n = x.len();
        let (out, keep) = (&mut out[..n], &mut keep[..n]);
        for i in 0..n {
            let k = s.bits(at + i as u64) >> 11 >= thr;
            keep[i] = k as u8;
            out[i] = x[i] * if k { scale } else { T::ZERO };
        }
    }
}

crate::simd! {
    fn backward_piece<T: Real>(g: &[T], keep: &[u8], out: &mut [T], scale: T) {
        let n = g.len();
        let (keep, out) = (&keep[..n], &mut out[..n]);
        for i in 0..n {
            out[i] = g[i] * if keep[i] != 0 { scale } else { T::ZERO };
        }
    }
}

/// Training forward: draws the mask of stream `args.num_training_calls` into `keep` and writes
/// `out`. `x`, `out` and `keep` have one length; `args.drop_rate` is in [0, 1).
pub fn forward<T: Real>(x: &[T], out: &mut [T], keep: &mut [u8], args: &DropoutArgs) {
    let p = args.drop_rate;
    let s = Stream::new(args.seed, args.num_training_calls);
    let (thr, c) = (threshold(p), scale::<T>(p));
    let b = Forward {
        x,
        out,
        keep,
        at: Index(0),
    };
    // x read, out written, one mask byte; the hashing costs about as much again
    let bytes = 4 * std::mem::size_of::<T>() + 1;
    for_each_chunk(vec![b], bytes, |b| {
        forward_piece(b.x, b.out, b.keep, b.at.0, s, thr, c)
    });
}

/// Backward: `out = g * mask` with the mask of the forward and its `drop_rate`.
pub fn backward<T: Real>(g: &[T], keep: &[u8], out: &mut [T], drop_rate: f64) {
    let c = scale::<T>(drop_rate);
    let b = Backward { g, keep, out };
    for_each_chunk(vec![b], 2 * std::mem::size_of::<T>() + 1, |b| {
        backward_piece(b.g, b.keep, b.out, c)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    fn args(drop_rate: f64, seed: u64, num_training_calls: u64) -> DropoutArgs {
        DropoutArgs {
            drop_rate,
            seed,
            num_training_calls,
        }
    }

    #[test]
    fn threshold_is_the_float_comparison() {
        let s = Stream::new(3, 1);
        for p in [0.0, 0.1, 0.5, 0.7, 1.0 - f64::EPSILON / 2.0] {
            let thr = threshold(p);
            for i in 0..2000 {
                assert_eq!(s.bits(i) >> 11 >= thr, s.uniform(i) >= p, "p={p} i={i}");
            }
        }
        assert_eq!(threshold(0.0), 0);
    }

    #[test]
    fn masks_follow_the_stream_and_scale_the_kept_values() {
        let x: Vec<f32> = (0..1000).map(|i| i as f32 - 500.0).collect();
        let (mut out, mut keep) = (vec![0.0f32; 1000], vec![9u8; 1000]);
        forward(&x, &mut out, &mut keep, &args(0.3, 42, 7));
        let s = Stream::new(42, 7);
        let c = (1.0 / 0.7) as f32;
        for i in 0..1000 {
            let kept = s.uniform(i as u64) >= 0.3;
            assert_eq!(keep[i], kept as u8);
            assert_eq!(out[i], x[i] * if kept { c } else { 0.0 });
        }
        let g = vec![2.0f32; 1000];
        let mut gx = vec![0.0f32; 1000];
        backward(&g, &keep, &mut gx, 0.3);
        for i in 0..1000 {
            assert_eq!(gx[i], if keep[i] == 1 { 2.0 * c } else { 0.0 });
        }
    }

    #[test]
    fn dropped_nan_stays_nan_and_empty_input_is_fine() {
        let x = [f64::NAN, f64::INFINITY];
        let (mut out, mut keep) = ([0.0; 2], [0u8; 2]);
        // p so close to 1 that both are dropped
        forward(&x, &mut out, &mut keep, &args(1.0 - 1e-15, 1, 0));
        assert_eq!(keep, [0, 0]);
        assert!(out.iter().all(|v| v.is_nan()));
        forward::<f32>(&[], &mut [], &mut [], &args(0.5, 1, 0));
        backward::<f32>(&[], &[], &mut [], 0.5);
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let n = PARALLEL_MIN_BYTES / 8 + 3 * CHUNK + 7;
        let x: Vec<f32> = (0..n).map(|i| (i % 101) as f32).collect();
        let go = |threads| {
            set_num_threads(threads);
            let (mut out, mut keep, mut gx) = (vec![0.0f32; n], vec![0u8; n], vec![0.0f32; n]);
            forward(&x, &mut out, &mut keep, &args(0.5, 5, 2));
            backward(&x, &keep, &mut gx, 0.5);
            (out, keep, gx)
        };
        let one = go(1);
        assert!(one == go(2));
        assert!(one == go(3));
    }
}
