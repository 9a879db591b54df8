//! Elastic-net regularization: the penalty `l1 * sum |w| + l2 * sum w^2` and its gradient
//! `l1 * sign(w) + (2 l2) * w`, in one pass over each array.
//!
//! The gradient is NumPy's `g = sign(w); g *= l1; g += (2 l2) * w` operation by operation in
//! the array's type (scalars rounded once to it), so it matches the reference bit for bit.
//! The sums are float64, over fixed pieces combined in index order.

use crate::runtime::pool::{map_chunks, CHUNK};
use crate::runtime::reduce::fold_lanes;
use crate::Real;

crate::bundle! {
    /// One array: the weights and the gradient written for them.
    pub struct RegTensor<'a, T> {
        pub w: &'a [T],
        pub g: &'a mut [T],
    }
}

/// Accumulator lanes: enough independent float64 sums to vectorize and hide add latency.
const LANES: usize = 8;

crate::simd! {
    /// Writes the gradient of one piece; returns its `(sum |w|, sum w^2)`.
    fn piece<T: Real>(w: &[T], g: &mut [T], l1: T, l2x2: T) -> (f64, f64) {
        let g = &mut g[..w.len()];
        let mut abs = [0.0f64; LANES];
        let mut sq = [0.0f64; LANES];
        let mut wc = w.chunks_exact(LANES);
        let mut gc = g.chunks_exact_mut(LANES);
        for (wl, gl) in (&mut wc).zip(&mut gc) {
            for j in 0..LANES {
                let v = wl[j];
                gl[j] = sign(v) * l1 + l2x2 * v;
                let d = v.to_f64();
                abs[j] += d.abs();
                sq[j] += d * d;
            }
        }
        for (j, (&v, o)) in wc.remainder().iter().zip(gc.into_remainder()).enumerate() {
            *o = sign(v) * l1 + l2x2 * v;
            let d = v.to_f64();
            abs[j] += d.abs();
            sq[j] += d * d;
        }
        (fold_lanes(abs), fold_lanes(sq))
    }
}

/// `np.sign`: -1, 0 (+0 for both zeros) or 1, NaN for NaN; written with selects only, so
/// that the loop vectorizes.
#[inline(always)]
fn sign<T: Real>(v: T) -> T {
    let pos = if v > T::ZERO { T::ONE } else { T::ZERO };
    let neg = if v < T::ZERO { T::ONE } else { T::ZERO };
    #[allow(clippy::eq_op)]
    let number = v == v;
    if number {
        pos - neg
    } else {
        v
    }
}

/// Writes every gradient; returns the penalty, its sums added over the arrays in order.
pub fn regularization<T: Real>(tensors: Vec<RegTensor<'_, T>>, l1: f64, l2: f64) -> f64 {
    let (l1t, l2x2) = (T::of(l1), T::of(2.0 * l2));
    // w read, g written
    let parts = map_chunks(tensors, CHUNK, 2 * std::mem::size_of::<T>(), |t| {
        piece(t.w, t.g, l1t, l2x2)
    });
    let (mut abs, mut sq) = (0.0, 0.0);
    for p in parts {
        abs += p.iter().map(|s| s.0).sum::<f64>();
        sq += p.iter().map(|s| s.1).sum::<f64>();
    }
    l1 * abs + l2 * sq
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, PARALLEL_MIN_BYTES};

    fn run<T: Real>(w: &[T], l1: f64, l2: f64) -> (f64, Vec<T>) {
        let mut g = vec![T::ZERO; w.len()];
        let p = regularization(vec![RegTensor { w, g: &mut g }], l1, l2);
        (p, g)
    }

    #[test]
    fn penalty_and_gradient_of_known_values() {
        let w = [1.0f64, -2.0, 0.0, -0.0, 0.5, 3.0, -1.0, 2.0, 4.0, -0.25];
        let (p, g) = run(&w, 0.5, 0.25);
        let abs: f64 = w.iter().map(|v| v.abs()).sum();
        let sq: f64 = w.iter().map(|v| v * v).sum();
        assert!((p - (0.5 * abs + 0.25 * sq)).abs() < 1e-12);
        let want: Vec<f64> = w
            .iter()
            .map(|&v| 0.5 * v.signum() * (v != 0.0) as u8 as f64 + 0.5 * v)
            .collect();
        assert_eq!(g, want);
        // sign(-0) = +0 as NumPy's, and -0 + 0.5 * -0 = +0
        assert_eq!(g[3].to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn nan_propagates_and_empty_input_gives_zero() {
        let (p, g) = run(&[f32::NAN, 1.0], 0.1, 0.1);
        assert!(p.is_nan() && g[0].is_nan() && g[1] == 0.1f32 + 0.2f32);
        assert_eq!(run::<f32>(&[], 0.1, 0.1), (0.0, vec![]));
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let n = PARALLEL_MIN_BYTES / 8 + 3 * CHUNK + 11;
        let w: Vec<f32> = (0..n).map(|i| ((i % 977) as f32).sin()).collect();
        let go = |threads| {
            set_num_threads(threads);
            run(&w, 0.01, 0.02)
        };
        let one = go(1);
        assert_eq!(one, go(2));
        assert_eq!(one, go(3));
    }
}
