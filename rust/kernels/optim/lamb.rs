//! LAMB (You et al., 2019): Adam's moments, then a per-layer trust ratio `||p|| / ||r||`
//! scaling the bias-corrected Adam direction `r` (plus weight decay).
//!
//! Two passes over memory, the least the trust ratio allows: the first updates the moments
//! and sums the squares of `p` and of `r` without storing `r`; the second recomputes `r`
//! from the new moments and moves `p`. Both read `p` before it is written, so `r` is the
//! same in both. The sums are per chunk, combined in index order (see [`Squares`]).

use crate::optim::adam::{moments, Moments};
use crate::runtime::bundle::Each;
use crate::runtime::pool::{bundle_partials, for_each_chunk};
use crate::runtime::reduce::Squares;
use crate::Real;

/// Hyper-parameters of one step; `step` is the 1-based step number.
#[derive(Clone, Copy, Debug)]
pub struct LambArgs {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    /// Ascend the gradient: it is negated first.
    pub maximize: bool,
    pub step: u64,
}

crate::bundle! {
    /// One layer: parameters, gradients and the two moments, all of one length.
    pub struct LambTensor<'a, T> {
        pub p: &'a mut [T],
        pub g: &'a [T],
        pub m: &'a mut [T],
        pub v: &'a mut [T],
    }
}

crate::bundle! {
    struct Measure<'a, T> {
        pub p: &'a [T],
        pub g: &'a [T],
        pub m: &'a mut [T],
        pub v: &'a mut [T],
    }
}

crate::bundle! {
    struct Apply<'a, T> {
        pub p: &'a mut [T],
        pub m: &'a [T],
        pub v: &'a [T],
        /// `lr * trust`, rounded to `T` by the kernel.
        pub scale: Each<f64>,
    }
}

/// The per-element constants, rounded once to `T`.
#[derive(Clone, Copy)]
struct Consts<T> {
    moments: Moments<T>,
    /// `1 / (1 - beta1^t)` and `1 / sqrt(1 - beta2^t)`: one division per element, not three.
    inv_bc1: T,
    inv_bc2_sqrt: T,
    eps: T,
    wd: T,
    decay: bool,
    /// -1 to maximize, 1 otherwise (a product by it is exact).
    sign: T,
}

impl<T: Real> Consts<T> {
    fn new(h: &LambArgs) -> Self {
        let t = h.step as f64;
        Consts {
            moments: Moments::new(h.beta1, h.beta2),
            inv_bc1: T::of(1.0 / (1.0 - h.beta1.powf(t))),
            inv_bc2_sqrt: T::of(1.0 / (1.0 - h.beta2.powf(t)).sqrt()),
            eps: T::of(h.epsilon),
            wd: T::of(h.weight_decay),
            decay: h.weight_decay != 0.0,
            sign: T::of(if h.maximize { -1.0 } else { 1.0 }),
        }
    }
}

/// The update direction `r` of one element, from the new moments.
#[inline(always)]
fn direction<T: Real, const DECAY: bool>(p: T, m: T, v: T, c: &Consts<T>) -> T {
    let r = (m * c.inv_bc1) / (v.sqrt() * c.inv_bc2_sqrt + c.eps);
    if DECAY {
        r + c.wd * p
    } else {
        r
    }
}

/// The trust ratio from the squared norms; 1 when either norm is zero or NaN.
fn trust(p_squares: f64, r_squares: f64) -> f64 {
    let (p, r) = (p_squares.sqrt(), r_squares.sqrt());
    if p > 0.0 && r > 0.0 {
        p / r
    } else {
        1.0
    }
}

/// One LAMB step over every layer, in place.
pub fn lamb<T: Real>(mut tensors: Vec<LambTensor<'_, T>>, h: &LambArgs) {
    let c = Consts::<T>::new(h);
    let size = std::mem::size_of::<T>();
    let measure = tensors
        .iter_mut()
        .map(|t| Measure {
            p: &*t.p,
            g: t.g,
            m: &mut *t.m,
            v: &mut *t.v,
        })
        .collect();
    // p and g read, m and v read and written
    let parts = bundle_partials(measure, 6 * size, |t| {
        measure_slices(t.p, t.g, t.m, t.v, &c)
    });
    let apply = tensors
        .into_iter()
        .zip(parts)
        .map(|(t, parts)| {
            let (p2, r2) = parts
                .iter()
                .fold((0.0, 0.0), |(a, b), &(p, r)| (a + p, b + r));
            Apply {
                scale: Each(h.learning_rate * trust(p2, r2)),
                p: t.p,
                m: &*t.m,
                v: &*t.v,
            }
        })
        .collect();
    // p read and written, m and v read
    for_each_chunk(apply, 4 * size, |t| {
        apply_slices(t.p, t.m, t.v, T::of(t.scale.0), &c)
    });
}

crate::simd! {
    /// Updates the moments of one chunk; returns the sums of squares of `p` and of `r`.
    fn measure_slices<T: Real>(p: &[T], g: &[T], m: &mut [T], v: &mut [T], c: &Consts<T>) -> (f64, f64) {
        match (c.moments.low_weight, c.decay) {
            (true, true) => measure_loop::<T, true, true>(p, g, m, v, c),
            (true, false) => measure_loop::<T, true, false>(p, g, m, v, c),
            (false, true) => measure_loop::<T, false, true>(p, g, m, v, c),
            (false, false) => measure_loop::<T, false, false>(p, g, m, v, c),
        }
    }
}

#[inline(always)]
fn measure_loop<T: Real, const LOW_WEIGHT: bool, const DECAY: bool>(
    p: &[T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    c: &Consts<T>,
) -> (f64, f64) {
    const L: usize = Squares::LANES;
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    let (mut sp, mut sr) = (Squares::ZERO, Squares::ZERO);
    // Whole blocks of lanes, through exact chunks so that the block loop has no bounds
    // checks and vectorizes; then the tail, element i to lane i.
    let blocks = p
        .chunks_exact(L)
        .zip(g.chunks_exact(L))
        .zip(m.chunks_exact_mut(L))
        .zip(v.chunks_exact_mut(L));
    for (((p, g), m), v) in blocks {
        // the directions of the block first, in T, then the squares in float64: two simple
        // loops vectorize where one mixing both widths did not
        let mut r = [T::ZERO; L];
        for lane in 0..L {
            let (mi, vi) = moments::<T, LOW_WEIGHT>(g[lane] * c.sign, m[lane], v[lane], &c.moments);
            m[lane] = mi;
            v[lane] = vi;
            r[lane] = direction::<T, DECAY>(p[lane], mi, vi, c);
        }
        sp.add_block(p);
        sr.add_block(&r);
    }
    let tail = n / L * L;
    for (lane, i) in (tail..n).enumerate() {
        let (mi, vi) = moments::<T, LOW_WEIGHT>(g[i] * c.sign, m[i], v[i], &c.moments);
        m[i] = mi;
        v[i] = vi;
        sp.add(lane, p[i]);
        sr.add(lane, direction::<T, DECAY>(p[i], mi, vi, c));
    }
    (sp.sum(), sr.sum())
}

crate::simd! {
    fn apply_slices<T: Real>(p: &mut [T], m: &[T], v: &[T], scale: T, c: &Consts<T>) {
        if c.decay {
            apply_loop::<T, true>(p, m, v, scale, c)
        } else {
            apply_loop::<T, false>(p, m, v, scale, c)
        }
    }
}

#[inline(always)]
fn apply_loop<T: Real, const DECAY: bool>(p: &mut [T], m: &[T], v: &[T], scale: T, c: &Consts<T>) {
    let n = p.len();
    let (m, v) = (&m[..n], &v[..n]);
    for i in 0..n {
        p[i] = p[i] - scale * direction::<T, DECAY>(p[i], m[i], v[i], c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    fn hyper(step: u64, weight_decay: f64) -> LambArgs {
        LambArgs {
            learning_rate: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-6,
            weight_decay,
            maximize: false,
            step,
        }
    }

    fn step<T: Real>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], h: &LambArgs) {
        lamb(vec![LambTensor { p, g, m, v }], h);
    }

    #[test]
    fn first_step_moves_the_layer_by_lr_times_its_norm() {
        // At t = 1 without decay, r = g / (|g| + eps), a vector of near-unit entries, and
        // the step lr * ||p|| / ||r|| * r has length lr * ||p||.
        let (mut p, g) = (vec![3.0f64, 4.0], vec![0.5, -2.0]);
        let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);
        step(&mut p, &g, &mut m, &mut v, &hyper(1, 0.0));
        let r: Vec<f64> = g.iter().map(|x| x / (x.abs() + 1e-6)).collect();
        let r_norm = (r[0] * r[0] + r[1] * r[1]).sqrt();
        let want = [
            3.0 - 0.01 * 5.0 * r[0] / r_norm,
            4.0 - 0.01 * 5.0 * r[1] / r_norm,
        ];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-14, "{a} vs {b}");
        }
        assert!((m[0] - 0.05).abs() < 1e-16 && (m[1] + 0.2).abs() < 1e-16);
    }

    #[test]
    fn weight_decay_joins_the_direction_and_zero_params_trust_one() {
        // p = 0: ||p|| = 0, trust 1, the step is lr * r exactly
        let (mut p, g) = (vec![0.0f32; 3], vec![1.0, -1.0, 0.0]);
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        step(&mut p, &g, &mut m, &mut v, &hyper(1, 0.5));
        let r = 1.0f32 / (1.0 + 1e-6);
        assert_eq!(p, vec![-0.01 * r, 0.01 * r, 0.0]);
        // zero gradient, decay only: r = wd * p, trust = ||p|| / (wd ||p||) = 1 / wd, so the
        // step is lr * p
        let (mut p, g) = (vec![2.0f64, -1.0], vec![0.0; 2]);
        let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);
        step(&mut p, &g, &mut m, &mut v, &hyper(1, 0.5));
        assert!((p[0] - 1.98).abs() < 1e-15 && (p[1] + 0.99).abs() < 1e-15);
    }

    #[test]
    fn nan_gradients_trust_one_and_propagate() {
        let (mut p, g) = (vec![1.0f64, 2.0], vec![f64::NAN, 1.0]);
        let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);
        step(&mut p, &g, &mut m, &mut v, &hyper(1, 0.0));
        assert!(p[0].is_nan());
        assert!((p[1] - (2.0 - 0.01 / (1.0 + 1e-6))).abs() < 1e-15);
    }

    #[test]
    fn empty_layers_change_nothing_else() {
        let (mut p, g) = (vec![1.0f32; 40], vec![0.25; 40]);
        let (mut m, mut v) = (vec![0.0; 40], vec![0.0; 40]);
        let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
        step(&mut p, &g, &mut m, &mut v, &hyper(1, 0.01));
        let empty = LambTensor {
            p: &mut [],
            g: &[],
            m: &mut [],
            v: &mut [],
        };
        let t = LambTensor {
            p: &mut p2,
            g: &g,
            m: &mut m2,
            v: &mut v2,
        };
        lamb(vec![empty, t], &hyper(1, 0.01));
        assert_eq!((p, m, v), (p2, m2, v2));
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        // above the parallel threshold with 6 streams of 4 bytes, a tail past the lanes
        let n = PARALLEL_MIN_BYTES / 24 + 2 * CHUNK + 13;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let mut p: Vec<f32> = (0..n).map(|i| (i % 37) as f32 / 10.0).collect();
            let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
            let mut q = vec![0.5f32; 21];
            let (mut m2, mut v2) = (vec![0.0; 21], vec![0.0; 21]);
            for t in 1..=3 {
                let a = LambTensor {
                    p: &mut p,
                    g: &g,
                    m: &mut m,
                    v: &mut v,
                };
                let b = LambTensor {
                    p: &mut q,
                    g: &g[..21],
                    m: &mut m2,
                    v: &mut v2,
                };
                lamb(vec![a, b], &hyper(t, 0.01));
            }
            (p, m, v, q)
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(4));
    }
}
