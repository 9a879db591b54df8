//! Averages: the exponential moving average of the weights that `EMA` keeps for evaluation,
//! and the sums of gradients that `Accumulate` and `DataParallel` accumulate over steps.

use crate::runtime::pool::for_each_chunk;
use crate::Real;

crate::bundle! {
    struct Pair<'a, T> {
        pub avg: &'a mut [T],
        pub x: &'a [T],
    }
}

/// `avg[i] = f(avg[i], x[i])` for every `i`, in one plain walk: three streams (avg read and
/// written, x read) are what the hardware prefetchers follow best. Walking four quarters
/// together (twelve streams) was 25-45% slower on one core of an AMD Zen 5 and no faster on two.
#[inline(always)]
fn pairwise<T: Real>(avg: &mut [T], x: &[T], f: impl Fn(T, T) -> T) {
    for (a, &x) in avg.iter_mut().zip(x) {
        *a = f(*a, x);
    }
}

crate::simd! {
    fn lerp_slice<T: Real>(avg: &mut [T], x: &[T], w: T) {
        // torch's lerp: the form that rounds least for the side of 0.5 the weight is on
        if w < T::of(0.5) {
            pairwise(avg, x, |a, x| a + w * (x - a));
        } else {
            let v = T::ONE - w;
            pairwise(avg, x, |a, x| x - (x - a) * v);
        }
    }
}

/// `avg += weight * (x - avg)` for every `(avg, x)` pair of equal lengths (torch's
/// `lerp_(avg, x, weight)` without fused multiply-adds), the weight rounded once to `T`.
pub fn lerp<T: Real>(pairs: Vec<(&mut [T], &[T])>, weight: f64) {
    let w = T::of(weight);
    let bundles = pairs.into_iter().map(|(avg, x)| Pair { avg, x }).collect();
    // avg read and written, x read
    for_each_chunk(bundles, 3 * std::mem::size_of::<T>(), |p| {
        lerp_slice(p.avg, p.x, w)
    });
}

crate::simd! {
    /// `sum = (first ? x : sum + x) / divisor`, the division skipped for a divisor of 1
    /// (`x / 1 == x`): the branches are constants of the call.
    fn accumulate_slice<T: Real>(sum: &mut [T], x: &[T], first: bool, divisor: T) {
        match (first, divisor == T::ONE) {
            (true, true) => sum.copy_from_slice(&x[..sum.len()]),
            (true, false) => pairwise(sum, x, |_, x| x / divisor),
            (false, true) => pairwise(sum, x, |s, x| s + x),
            (false, false) => pairwise(sum, x, |s, x| (s + x) / divisor),
        }
    }
}

/// Folds each `x` into its `sum` (pairs of equal lengths) in one pass: `sum = x` for the
/// `first` of a cycle, else `sum += x`; then, unless `divisor` is 1, `sum /= divisor` (rounded
/// once to `T`), so that the last call of a cycle leaves the mean. Element-wise, so the same
/// bits for every thread count.
pub fn accumulate<T: Real>(pairs: Vec<(&mut [T], &[T])>, first: bool, divisor: f64) {
    let d = T::of(divisor);
    let bundles = pairs.into_iter().map(|(avg, x)| Pair { avg, x }).collect();
    // sum written (and read unless first), x read
    let streams = if first { 2 } else { 3 };
    for_each_chunk(bundles, streams * std::mem::size_of::<T>(), |p| {
        accumulate_slice(p.avg, p.x, first, d)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    #[test]
    fn lerp_by_hand_on_both_sides_of_a_half() {
        let mut a = [1.0f64, 2.0, -4.0];
        lerp(vec![(&mut a[..], &[3.0, 2.0, 0.0][..])], 0.25);
        assert_eq!(a, [1.5, 2.0, -3.0]);
        let mut b = [1.0f32, 8.0];
        lerp(
            vec![(&mut b[..], &[3.0, 0.0][..]), (&mut [], &[][..])],
            0.75,
        );
        assert_eq!(b, [3.0 - 2.0 * 0.25, 0.0 - (0.0 - 8.0) * 0.25]);
        let mut c = [5.0f32];
        lerp(vec![(&mut c[..], &[7.0][..])], 1.0);
        assert_eq!(c, [7.0]);
    }

    #[test]
    fn one_thread_gives_the_bits_of_many() {
        let n = PARALLEL_MIN_BYTES / 8 + CHUNK + 5;
        let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 * 1e-3).collect();
        let run = |threads| {
            set_num_threads(threads);
            let mut a = vec![0.5f32; n];
            lerp(vec![(&mut a[..], &x[..])], 1e-3);
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn lerp_reaches_every_element_of_every_length() {
        for n in 0..23 {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let mut a = vec![1.0f64; n];
            lerp(vec![(&mut a[..], &x[..])], 0.25);
            let want: Vec<f64> = x.iter().map(|&x| 1.0 + 0.25 * (x - 1.0)).collect();
            assert_eq!(a, want, "length {n}");
        }
    }

    #[test]
    fn accumulate_by_hand() {
        let mut s = [9.0f64, 9.0];
        accumulate(vec![(&mut s[..], &[1.0, -2.0][..])], true, 1.0);
        assert_eq!(s, [1.0, -2.0]);
        accumulate(
            vec![(&mut s[..], &[2.0, 0.5][..]), (&mut [], &[][..])],
            false,
            1.0,
        );
        assert_eq!(s, [3.0, -1.5]);
        accumulate(vec![(&mut s[..], &[3.0, 0.0][..])], false, 3.0);
        assert_eq!(s, [2.0, -0.5]);
        let mut t = [3.0f32];
        accumulate(vec![(&mut t[..], &[1.0][..])], true, 3.0);
        assert_eq!(t, [1.0f32 / 3.0]);
        accumulate::<f32>(vec![], false, 2.0);
    }

    #[test]
    fn accumulate_reaches_every_element_of_every_length() {
        for n in 0..23 {
            let x: Vec<f64> = (0..n).map(|i| i as f64 + 1.0).collect();
            let mut s = vec![9.0f64; n];
            accumulate(vec![(&mut s[..], &x[..])], true, 2.0);
            let halves: Vec<f64> = x.iter().map(|&x| x / 2.0).collect();
            assert_eq!(s, halves, "length {n}, first with a divisor");
            accumulate(vec![(&mut s[..], &x[..])], true, 1.0);
            assert_eq!(s, x, "length {n}, first");
            accumulate(vec![(&mut s[..], &x[..])], false, 1.0);
            let doubles: Vec<f64> = x.iter().map(|&x| 2.0 * x).collect();
            assert_eq!(s, doubles, "length {n}, summed");
            accumulate(vec![(&mut s[..], &x[..])], false, 4.0);
            let means: Vec<f64> = x.iter().map(|&x| 3.0 * x / 4.0).collect();
            assert_eq!(s, means, "length {n}, summed with a divisor");
        }
    }

    #[test]
    fn accumulate_one_thread_equals_many() {
        let n = PARALLEL_MIN_BYTES / 8 + 3 * CHUNK + 5;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 7.0 - 60.0)
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let mut s = vec![0.5f32; n];
            accumulate(vec![(&mut s[..], &x[..])], false, 1.0);
            accumulate(vec![(&mut s[..], &x[..])], false, 3.0);
            s
        };
        let one = run(1);
        assert_eq!(one, run(3));
    }
}
