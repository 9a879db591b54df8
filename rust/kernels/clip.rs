//! Gradient clipping: the global norm of many tensors (from the per-tensor norms of
//! [`reduce`](crate::runtime::reduce)) and the in-place scaling that clips them; unit-wise
//! adaptive clipping (`adaptive_grad_clip`); the threshold of the adaptive per-tensor clipper
//! (`AdaptiveClipper`).

use crate::runtime::bundle::Each;
use crate::runtime::pool::for_each_chunk;
use crate::runtime::reduce::{norms, row_norms, Order};
use crate::Real;

/// The global `order`-norm of all tensors together (torch's `get_total_norm`): the norm of
/// their per-tensor norms, float64, the same bits for every thread count.
pub fn total_norm<T: Real>(tensors: &[&[T]], order: Order) -> f64 {
    combine(&norms(tensors, order), order)
}

/// torch's clipping factor for a global norm `total`: `min(max_norm / (total + 1e-6), 1)`, NaN
/// for a NaN norm (so that a NaN gradient spreads as torch's does).
pub fn clip_coef(max_norm: f64, total: f64) -> f64 {
    if total.is_nan() {
        f64::NAN
    } else {
        (max_norm / (total + 1e-6)).min(1.0)
    }
}

/// Scales every tensor by [`clip_coef`] (torch's `clip_grads_with_norm_`), rounded once to
/// `T`; a factor of one changes no bit, so that pass is skipped.
pub fn clip_to_norm<T: Real>(tensors: Vec<&mut [T]>, max_norm: f64, total: f64) {
    let coef = clip_coef(max_norm, total);
    if coef != 1.0 {
        scale(tensors, T::of(coef));
    }
}

#[inline(always)]
fn clamp_one<T: Real>(a: T, lo: T, hi: T) -> T {
    if a < lo {
        lo
    } else if a > hi {
        hi
    } else {
        a
    }
}

crate::simd! {
    /// The four quarters of the slice are walked together: a pass that streams one array in
    /// place keeps more memory requests in flight per core as four streams than as one.
    fn clamp_slice<T: Real>(x: &mut [T], lo: T, hi: T) {
        let q = x.len() / 4;
        let (a, rest) = x.split_at_mut(q);
        let (b, rest) = rest.split_at_mut(q);
        let (c, rest) = rest.split_at_mut(q);
        let (d, tail) = rest.split_at_mut(q);
        for i in 0..q {
            a[i] = clamp_one(a[i], lo, hi);
            b[i] = clamp_one(b[i], lo, hi);
            c[i] = clamp_one(c[i], lo, hi);
            d[i] = clamp_one(d[i], lo, hi);
        }
        for v in tail {
            *v = clamp_one(*v, lo, hi);
        }
    }
}

/// Clamps every element into `[-clip_value, clip_value]` in one pass (torch's
/// `clip_grad_value_`); NaN stays NaN, as torch's `clamp`.
pub fn clamp<T: Real>(tensors: Vec<&mut [T]>, clip_value: f64) {
    let (lo, hi) = (T::of(-clip_value), T::of(clip_value));
    let bundles = tensors.into_iter().map(|x| Slice { x }).collect();
    // read and written
    for_each_chunk(bundles, 2 * std::mem::size_of::<T>(), |s| {
        clamp_slice(s.x, lo, hi)
    });
}

/// The norm of the per-tensor norms: the global norm of all tensors together.
pub fn combine(norms: &[f64], order: Order) -> f64 {
    match order {
        Order::Inf => norms.iter().fold(0.0, |a, &b| a.nan_max(b)),
        Order::Two => norms.iter().map(|n| n * n).sum::<f64>().sqrt(),
        Order::P(p) => norms.iter().map(|n| n.powf(p)).sum::<f64>().powf(1.0 / p),
    }
}

crate::bundle! {
    struct Slice<'a, T> {
        pub x: &'a mut [T],
    }
}

crate::simd! {
    fn scale_slice<T: Real>(x: &mut [T], c: T) {
        for v in x {
            *v = *v * c;
        }
    }
}

/// Multiplies every element of every tensor by `c`.
pub fn scale<T: Real>(tensors: Vec<&mut [T]>, c: T) {
    let bundles = tensors.into_iter().map(|x| Slice { x }).collect();
    for_each_chunk(bundles, 2 * std::mem::size_of::<T>(), |s| {
        scale_slice(s.x, c)
    });
}

crate::bundle! {
    struct Pair<'a, T> {
        pub src: &'a [T],
        pub dst: &'a mut [T],
        pub c: Each<f64>,
    }
}

crate::simd! {
    fn scale_into_slice<T: Real>(src: &[T], dst: &mut [T], c: T) {
        let n = dst.len();
        let src = &src[..n];
        for i in 0..n {
            dst[i] = src[i] * c;
        }
    }
}

/// Writes `src * c` into `dst` for every `(src, dst, c)` (of equal lengths), `c` rounded
/// once to `T`.
pub fn scale_into<T: Real>(pairs: Vec<(&[T], &mut [T], f64)>) {
    let bundles = pairs
        .into_iter()
        .map(|(src, dst, c)| Pair {
            src,
            dst,
            c: Each(c),
        })
        .collect();
    // src read, dst written
    for_each_chunk(bundles, 2 * std::mem::size_of::<T>(), |p| {
        scale_into_slice(p.src, p.dst, T::of(p.c.0))
    });
}

/// Unit-wise adaptive gradient clipping (Brock et al., 2021) of one tensor: its gradient
/// and parameters, cut into units (rows) of `unit` elements.
pub struct AdaptiveGradClipTensor<'a, T> {
    pub g: &'a mut [T],
    pub p: &'a [T],
    pub unit: usize,
}

/// The floor of a unit's gradient norm in the clipping factor, as in the paper's code.
const GRAD_NORM_FLOOR: f64 = 1e-6;

crate::bundle! {
    struct Row<'a, T> {
        pub x: &'a mut [T],
        pub c: Each<f64>,
    }
}

/// `adaptive_grad_clip`'s hyper-parameters.
#[derive(Clone, Copy, Debug)]
pub struct AdaptiveGradClipArgs {
    pub clipping: f64,
    pub eps: f64,
}

/// Clips every unit whose gradient norm exceeds `clipping * max(||w||, eps)` to that norm,
/// in place; other units are not written. Norms and factors are float64, the factor is
/// rounded once to `T`. A NaN norm never clips.
pub fn adaptive_grad_clip<T: Real>(
    tensors: Vec<AdaptiveGradClipTensor<'_, T>>,
    args: &AdaptiveGradClipArgs,
) {
    let AdaptiveGradClipArgs { clipping, eps } = *args;
    let tensors: Vec<AdaptiveGradClipTensor<T>> = tensors
        .into_iter()
        .filter(|t| t.unit > 0 && !t.g.is_empty())
        .collect();
    let views: Vec<(&[T], usize)> = tensors
        .iter()
        .flat_map(|t| [(t.p, t.unit), (&*t.g, t.unit)])
        .collect();
    let norms = row_norms(&views);
    let mut rows = Vec::new();
    for (t, wg) in tensors.into_iter().zip(norms.chunks(2)) {
        for ((x, &w), &g) in t.g.chunks_mut(t.unit).zip(&wg[0]).zip(&wg[1]) {
            let max_norm = clipping * w.nan_max(eps);
            if g > max_norm {
                let c = Each(max_norm / g.nan_max(GRAD_NORM_FLOOR));
                rows.push(Row { x, c });
            }
        }
    }
    // read and written
    for_each_chunk(rows, 2 * std::mem::size_of::<T>(), |r| {
        scale_slice(r.x, T::of(r.c.0))
    });
}

/// The state of the adaptive clipper: a bias-corrected running average of the largest finite
/// per-tensor norm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveClipperState {
    pub running_max: f64,
    pub running_weight: f64,
}

impl AdaptiveClipperState {
    /// Observes one call's per-tensor norms (their largest finite one, if any).
    pub fn observe(&mut self, norms: &[f64], rate: f64) {
        let finite = norms.iter().copied().filter(|n| n.is_finite());
        if let Some(x) = finite.reduce(f64::max) {
            self.running_max = (1.0 - rate) * self.running_max + rate * x;
            self.running_weight = (1.0 - rate) * self.running_weight + rate;
        }
    }

    /// The threshold: the bias-corrected average held between `lo` and `hi`, or `hi` before
    /// any observation counts.
    pub fn clip_value(&self, lo: f64, hi: f64) -> f64 {
        if self.running_weight == 0.0 {
            hi
        } else {
            hi.min(lo.max(self.running_max / self.running_weight))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::CHUNK;

    #[test]
    fn combine_is_the_norm_of_the_norms() {
        assert_eq!(combine(&[3.0, 4.0], Order::Two), 5.0);
        assert_eq!(combine(&[3.0, 4.0], Order::Inf), 4.0);
        assert!((combine(&[1.0, 2.0], Order::P(3.0)) - 9f64.powf(1.0 / 3.0)).abs() < 1e-15);
    }

    #[test]
    fn scale_into_writes_the_scaled_source() {
        let a = vec![2.0f64; CHUNK + 3];
        let (mut x, mut y) = (vec![0.0; CHUNK + 3], vec![7.0; 0]);
        scale_into(vec![(&a[..], &mut x[..], 0.25), (&[], &mut y[..], 2.0)]);
        assert!(x.iter().all(|&v| v == 0.5));
    }

    #[test]
    fn agc_clips_only_the_units_over_their_bound() {
        // units of 2: ||w|| = 5 and 0 (floored by eps = 1), clipping 0.1 gives bounds 0.5, 0.1
        let p = [3.0f32, 4.0, 0.0, 0.0, 1.0, 0.0];
        let mut g = [0.3f32, 0.4, 0.0, 1.0, f32::NAN, 1.0];
        let mut g2 = [6.0f32, 8.0];
        adaptive_grad_clip(
            vec![
                AdaptiveGradClipTensor {
                    g: &mut g,
                    p: &p,
                    unit: 2,
                },
                AdaptiveGradClipTensor {
                    g: &mut g2,
                    p: &p[..2],
                    unit: 2,
                },
                AdaptiveGradClipTensor {
                    g: &mut [],
                    p: &[],
                    unit: 0,
                },
            ],
            &AdaptiveGradClipArgs {
                clipping: 0.1,
                eps: 1.0,
            },
        );
        // unit 0 has norm 0.5, not over; unit 1 norm 1 > 0.1 is scaled by 0.1; NaN passes
        assert_eq!(g[..2], [0.3, 0.4]);
        assert_eq!(g[2..4], [0.0, (0.1f64 / 1.0) as f32]);
        assert!(g[4].is_nan() && g[5] == 1.0);
        assert_eq!(g2, [6.0 * 0.05, 8.0 * 0.05]);
    }

    #[test]
    fn agc_floors_the_gradient_norm() {
        // clipping 0 makes every nonzero unit exceed its bound of 0, factor 0 / max(n, 1e-6)
        let mut g = [1e-9f64];
        adaptive_grad_clip(
            vec![AdaptiveGradClipTensor {
                g: &mut g,
                p: &[1.0],
                unit: 1,
            }],
            &AdaptiveGradClipArgs {
                clipping: 0.0,
                eps: 0.0,
            },
        );
        assert_eq!(g, [0.0]);
    }

    #[test]
    fn adaptive_threshold_by_hand() {
        let mut a = AdaptiveClipperState {
            running_max: 0.0,
            running_weight: 0.0,
        };
        assert_eq!(a.clip_value(0.01, 1.0), 1.0);
        a.observe(&[f64::NAN, f64::INFINITY], 0.5);
        assert_eq!(a.running_weight, 0.0);
        a.observe(&[0.2, 0.4, f64::NAN], 0.5);
        assert_eq!((a.running_max, a.running_weight), (0.2, 0.5));
        assert_eq!(a.clip_value(0.01, 1.0), 0.4);
        assert_eq!(a.clip_value(0.5, 1.0), 0.5);
        assert_eq!(a.clip_value(0.01, 0.3), 0.3);
    }

    #[test]
    fn clamp_holds_values_in_the_band_and_keeps_nan() {
        let mut a = vec![3.0f32; CHUNK * 2 + 1];
        a[0] = -5.0;
        a[1] = f32::NAN;
        a[2] = -0.0;
        a[3] = 0.25;
        let mut b = [-1.0f64; 3];
        clamp(vec![&mut a[..]], 0.5);
        clamp(vec![&mut b[..], &mut []], 2.0);
        assert_eq!(a[0], -0.5);
        assert!(a[1].is_nan());
        assert!(a[2] == 0.0 && a[2].is_sign_negative());
        assert_eq!(a[3], 0.25);
        assert!(a[4..].iter().all(|&x| x == 0.5));
        assert!(b.iter().all(|&x| x == -1.0));
    }

    #[test]
    fn clamp_reaches_every_element_of_every_length() {
        // the quarters and the tail together: each element clamped once, in place
        for n in 0..23 {
            let x: Vec<f32> = (0..n).map(|i| i as f32 - 11.0).collect();
            let mut a = x.clone();
            clamp(vec![&mut a[..]], 4.0);
            let want: Vec<f32> = x.iter().map(|v| v.clamp(-4.0, 4.0)).collect();
            assert_eq!(a, want, "length {n}");
        }
    }

    #[test]
    fn clip_to_norm_scales_by_torch_factor() {
        let mut a = vec![3.0f64, 4.0];
        clip_to_norm(vec![&mut a[..]], 1.0, 5.0);
        assert_eq!(a, [3.0 * (1.0 / (5.0 + 1e-6)), 4.0 * (1.0 / (5.0 + 1e-6))]);
        let mut b = [3.0f64];
        clip_to_norm(vec![&mut b[..]], 10.0, 3.0);
        assert_eq!(b, [3.0]);
        clip_to_norm(vec![&mut b[..]], 10.0, f64::NAN);
        assert!(b[0].is_nan());
        assert_eq!(clip_coef(1.0, f64::INFINITY), 0.0);
    }

    #[test]
    fn total_norm_is_the_same_for_every_thread_count() {
        use crate::runtime::pool::{set_num_threads, PARALLEL_MIN_BYTES};
        let n = PARALLEL_MIN_BYTES / 4 + CHUNK + 7;
        let a: Vec<f32> = (0..n).map(|i| (i % 13) as f32 * 0.37 - 2.0).collect();
        let b = vec![0.5f32; 100];
        let views = [&a[..], &b[..]];
        let run = |threads| {
            set_num_threads(threads);
            [Order::Two, Order::Inf, Order::P(1.5)].map(|o| total_norm(&views, o).to_bits())
        };
        assert_eq!(run(1), run(3));
        assert_eq!(total_norm::<f32>(&[], Order::Two), 0.0);
    }

    #[test]
    fn scale_multiplies_everything() {
        let mut a = vec![1.0f32; CHUNK * 2 + 1];
        let mut b = vec![2.0f32; 3];
        scale(vec![&mut a, &mut b], 0.5);
        assert!(a.iter().all(|&x| x == 0.5) && b.iter().all(|&x| x == 1.0));
    }
}
