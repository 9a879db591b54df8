//! Deterministic reductions: the norms of many tensors, accumulated in float64 over fixed
//! chunks in index order, so the result does not depend on the thread count. Shared by
//! clipping and by every layer-wise optimizer.

use crate::runtime::pool::{chunk_partials, map_tasks, CHUNK};
use crate::Real;

/// The order of a vector norm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Order {
    /// Largest absolute value.
    Inf,
    /// Euclidean.
    Two,
    /// `(sum |x|^p)^(1/p)` for a finite `p > 0`.
    P(f64),
}

impl Order {
    pub fn new(p: f64) -> Self {
        if p == f64::INFINITY {
            Order::Inf
        } else if p == 2.0 {
            Order::Two
        } else {
            Order::P(p)
        }
    }
}

/// Float64 accumulators: four groups of four, one AVX2 register each, enough to hide the
/// add latency. Every path sums the same lanes in the same order, so results do not depend
/// on the instruction set.
const GROUPS: usize = 4;
const WIDTH: usize = 4;
const LANES: usize = GROUPS * WIDTH;

/// Sums the lanes in a fixed tree order.
#[inline(always)]
fn fold(a: [[f64; WIDTH]; GROUPS]) -> f64 {
    let mut w = [0.0; WIDTH];
    for (j, x) in w.iter_mut().enumerate() {
        *x = (a[0][j] + a[1][j]) + (a[2][j] + a[3][j]);
    }
    (w[0] + w[2]) + (w[1] + w[3])
}

/// Applies `f` to every element into the lane accumulators, combining with `add`.
#[inline(always)]
fn lanes<T: Real>(
    x: &[T],
    init: f64,
    f: impl Fn(f64) -> f64,
    add: impl Fn(f64, f64) -> f64,
) -> [[f64; WIDTH]; GROUPS] {
    let mut acc = [[init; WIDTH]; GROUPS];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (k, group) in acc.iter_mut().enumerate() {
            for (j, a) in group.iter_mut().enumerate() {
                *a = add(*a, f(c[k * WIDTH + j].to_f64()));
            }
        }
    }
    for (i, r) in rest.iter().enumerate() {
        let a = &mut acc[i / WIDTH][i % WIDTH];
        *a = add(*a, f(r.to_f64()));
    }
    acc
}

crate::simd! {
    /// The sum of squares of `x`, element `i` in lane `i % LANES` of a [`Squares`].
    pub(crate) fn sum_squares<T: Real>(x: &[T]) -> f64 {
        let mut s = Squares::ZERO;
        let blocks = x.chunks_exact(Squares::LANES);
        let rest = blocks.remainder();
        for block in blocks {
            s.add_block(block);
        }
        for (lane, &v) in rest.iter().enumerate() {
            s.add(lane, v);
        }
        s.sum()
    }
}

crate::simd! {
    /// The sums of squares of two slices of one length, walked together: the same bits as
    /// [`sum_squares`] of each.
    pub fn sum_squares2<T: Real>(x: &[T], y: &[T]) -> (f64, f64) {
        let (mut s, mut t) = (Squares::ZERO, Squares::ZERO);
        let n = x.len();
        let y = &y[..n];
        let bx = x.chunks_exact(Squares::LANES);
        let by = y.chunks_exact(Squares::LANES);
        let (rx, ry) = (bx.remainder(), by.remainder());
        for (a, b) in bx.zip(by) {
            s.add_block(a);
            t.add_block(b);
        }
        for (lane, (&v, &w)) in rx.iter().zip(ry).enumerate() {
            s.add(lane, v);
            t.add(lane, w);
        }
        (s.sum(), t.sum())
    }
}

crate::simd! {
    fn max_abs<T: Real>(x: &[T]) -> f64 {
        lanes(x, 0.0, f64::abs, f64::nan_max)
            .iter()
            .flatten()
            .fold(0.0, |a, &b| a.nan_max(b))
    }
}

fn sum_pow<T: Real>(x: &[T], p: f64) -> f64 {
    fold(lanes(x, 0.0, |v| v.abs().powf(p), |a, b| a + b))
}

/// Float64 accumulators of a sum of squares: eight AVX-512 registers (sixteen AVX2 ones),
/// enough independent additions to keep the floating-point units busy while memory streams.
const SQUARE_LANES: usize = 64;

/// A sum of squares, also fused into another kernel's loop over one chunk: element `i` of the
/// chunk goes to lane `i % LANES` and the lanes fold in a fixed tree, so the sum depends on
/// the chunk alone, not on the thread count or the instruction set. The lanes are float64
/// whatever the element type.
#[derive(Clone, Copy, Debug)]
pub struct Squares(pub [f64; SQUARE_LANES]);

impl Squares {
    pub const LANES: usize = SQUARE_LANES;
    pub const ZERO: Self = Squares([0.0; SQUARE_LANES]);

    /// Adds `x * x` to lane `lane` (`< LANES`).
    #[inline(always)]
    pub fn add<T: Real>(&mut self, lane: usize, x: T) {
        let x = x.to_f64();
        self.0[lane] += x * x;
    }

    /// Adds the squares of a block of exactly `LANES` elements, element `j` to lane `j`.
    #[inline(always)]
    pub fn add_block<T: Real>(&mut self, block: &[T]) {
        let block = &block[..SQUARE_LANES];
        for (a, x) in self.0.iter_mut().zip(block) {
            let x = x.to_f64();
            *a += x * x;
        }
    }

    /// The lanes summed pairwise: lane `j` with lane `j + n` for n = 32, 16, ..., 1.
    #[inline(always)]
    pub fn sum(self) -> f64 {
        fold_lanes(self.0)
    }
}

/// The sum of the lanes, halving: `a[l] + a[l + L/2]`, then `L/4` apart, down to 1 (`L` a
/// power of two). Shared by the norms, the linear models, regularization and BatchNorm (the
/// 4 x 4 [`fold`] above is a different order, kept for its kernels' bits).
#[inline(always)]
pub(crate) fn fold_lanes<T: Real, const L: usize>(mut a: [T; L]) -> T {
    let mut n = L;
    while n > 1 {
        n /= 2;
        for l in 0..n {
            a[l] = a[l] + a[l + n];
        }
    }
    a[0]
}

/// The Euclidean norm of every row of each tensor, a tensor being `(data, row_length)` with
/// `row_length > 0` dividing the data's length. A row's sum is taken over its chunks of
/// [`CHUNK`] elements in order, so it depends on the row alone, not on the thread count.
pub fn row_norms<T: Real>(tensors: &[(&[T], usize)]) -> Vec<Vec<f64>> {
    // A task is a block of whole short rows no longer than a chunk, or one chunk of a long
    // row; it returns the sum of squares of each of its rows (or its one piece).
    let mut tasks: Vec<(&[T], usize)> = Vec::new();
    for &(x, k) in tensors {
        if k >= CHUNK {
            tasks.extend(
                x.chunks(k)
                    .flat_map(|row| row.chunks(CHUNK))
                    .map(|c| (c, c.len())),
            );
        } else {
            tasks.extend(x.chunks(CHUNK / k * k).map(|b| (b, k)));
        }
    }
    let bytes = tensors.iter().map(|(x, _)| std::mem::size_of_val(*x)).sum();
    let sums = map_tasks(tasks, bytes, |(b, k)| {
        b.chunks(k).map(sum_squares).collect::<Vec<f64>>()
    });
    let mut sums = sums.into_iter().flatten();
    tensors
        .iter()
        .map(|&(x, k)| {
            let pieces = k.div_ceil(CHUNK);
            (0..x.len() / k)
                .map(|_| sums.by_ref().take(pieces).sum::<f64>().sqrt())
                .collect()
        })
        .collect()
}

/// The norm of each tensor.
pub fn norms<T: Real>(tensors: &[&[T]], order: Order) -> Vec<f64> {
    match order {
        Order::Inf => chunk_partials(tensors, max_abs)
            .into_iter()
            .map(|parts| parts.into_iter().fold(0.0, f64::nan_max))
            .collect(),
        Order::Two => chunk_partials(tensors, sum_squares)
            .into_iter()
            .map(|parts| parts.into_iter().sum::<f64>().sqrt())
            .collect(),
        Order::P(p) => chunk_partials(tensors, |c| sum_pow(c, p))
            .into_iter()
            .map(|parts| parts.into_iter().sum::<f64>().powf(1.0 / p))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    #[test]
    fn norms_of_known_vectors() {
        let a = [3.0f32, -4.0];
        let b: [f32; 0] = [];
        assert_eq!(norms(&[&a, &b], Order::Two), vec![5.0, 0.0]);
        assert_eq!(norms(&[&a[..]], Order::Inf), vec![4.0]);
        let n1 = norms(&[&a[..]], Order::P(1.0))[0];
        assert!((n1 - 7.0).abs() < 1e-12);
    }

    #[test]
    fn nan_propagates_through_every_order() {
        let a = [1.0f64, f64::NAN, 2.0];
        for order in [Order::Two, Order::Inf, Order::P(3.0)] {
            assert!(norms(&[&a[..]], order)[0].is_nan(), "{order:?}");
        }
    }

    #[test]
    fn two_slices_walked_together_give_each_one_s_bits() {
        for n in [0, 5, Squares::LANES, 3 * Squares::LANES + 7] {
            let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 101) as f32 / 7.0).collect();
            let y: Vec<f32> = (0..n).map(|i| 1.0 / (1.0 + i as f32)).collect();
            let (sx, sy) = sum_squares2(&x, &y);
            assert_eq!(
                (sx.to_bits(), sy.to_bits()),
                (sum_squares(&x).to_bits(), sum_squares(&y).to_bits())
            );
        }
    }

    #[test]
    fn fused_squares_sum_every_lane() {
        let mut s = Squares::ZERO;
        for i in 0..Squares::LANES {
            s.add(i, i as f32);
        }
        s.add(3, 2.0f64);
        let want: f64 = (0..Squares::LANES).map(|i| (i * i) as f64).sum::<f64>() + 4.0;
        assert_eq!(s.sum(), want);
    }

    #[test]
    fn row_norms_by_hand_short_and_long_rows() {
        let a = [3.0f32, 4.0, 0.0, -2.0, 1.0, 2.0];
        let long: Vec<f64> = (0..2 * (CHUNK + 5)).map(|i| (i % 3) as f64).collect();
        let want_long: Vec<f64> = long
            .chunks(CHUNK + 5)
            .map(|r| r.iter().map(|x| x * x).sum::<f64>().sqrt())
            .collect();
        assert_eq!(
            row_norms(&[(&a[..], 2), (&a[..], 6), (&[], 3)]),
            vec![vec![5.0, 2.0, 5f64.sqrt()], vec![34f64.sqrt()], vec![]]
        );
        let got = row_norms(&[(&long[..], CHUNK + 5)]);
        for (g, w) in got[0].iter().zip(&want_long) {
            assert!((g - w).abs() <= 1e-12 * w, "{g} vs {w}");
        }
    }

    #[test]
    fn row_norms_are_bitwise_identical_for_any_thread_count() {
        let x: Vec<f32> = (0..(PARALLEL_MIN_BYTES / 4 + 3 * CHUNK))
            .map(|i| ((i % 613) as f32).cos())
            .collect();
        let n = x.len();
        let run = |t| {
            set_num_threads(t);
            row_norms(&[(&x[..], n / 8), (&x[..n - n % 7], 7), (&x[..], n)])
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(5));
    }

    #[test]
    fn norm_is_bitwise_identical_for_any_thread_count() {
        let x: Vec<f32> = (0..(PARALLEL_MIN_BYTES / 4 + 5 * CHUNK + 3))
            .map(|i| ((i % 977) as f32).sin())
            .collect();
        let run = |t| {
            set_num_threads(t);
            norms(&[&x[..], &x[..7]], Order::Two)
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }

    /// Naive float64 norms, summed in a different order: equal up to rounding.
    fn naive(x: &[f64], p: f64) -> f64 {
        x.iter().map(|v| v.abs().powf(p)).sum::<f64>().powf(1.0 / p)
    }

    #[test]
    fn every_order_covers_the_tail_past_the_lanes() {
        // 16 lanes: lengths that leave a tail of 1 to 15 elements, and a finite p not 1 or 2
        for n in [17usize, 31, 37, 100] {
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
            for p in [1.0, 2.0, 3.0, 0.5] {
                let got = norms(&[&x[..]], Order::new(p))[0];
                let want = naive(&x, p);
                assert!(
                    (got - want).abs() <= 1e-12 * want,
                    "n={n} p={p}: {got} vs {want}"
                );
            }
            let inf = norms(&[&x[..]], Order::Inf)[0];
            assert_eq!(inf, x.iter().fold(0.0f64, |a, v| a.max(v.abs())));
        }
    }
}
