//! Adam and AdamW (with AMSGrad), fused into one pass over memory.
//!
//! The arithmetic is PyTorch's single-tensor CPU Adam operation by operation: scalars are
//! formed in float64 and rounded once to the element type; `exp_avg.lerp_(g, 1 - beta1)`,
//! `exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2)`,
//! `denom = sqrt(v) / sqrt(1 - beta2^t) + eps`, `p.addcdiv_(m, denom, -lr / (1 - beta1^t))`
//! (that is `p + (-step_size * m) / denom`).

use crate::pool::for_each_chunk;
use crate::Real;

/// Hyper-parameters of one step; `step` is the 1-based step number.
#[derive(Clone, Copy, Debug)]
pub struct AdamHyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
    pub step: u64,
}

crate::bundle! {
    /// One tensor: parameters, gradients and state, all of one length.
    pub struct AdamTensor<'a, T> {
        pub p: &'a mut [T],
        pub g: &'a [T],
        pub m: &'a mut [T],
        pub v: &'a mut [T],
        /// AMSGrad's running maximum of `v`.
        pub vmax: Option<&'a mut [T]>,
    }
}

/// The constants of Adam's moment update, rounded once to `T`; shared with LAMB.
#[derive(Clone, Copy)]
pub(crate) struct Moments<T> {
    /// lerp weight `1 - beta1`, and `1 - weight` for lerp's upper branch.
    w: T,
    one_minus_w: T,
    /// Which of lerp's two branches ATen takes (`weight < 0.5`): a constant of the call,
    /// passed to [`moments`] as a const parameter.
    pub low_weight: bool,
    beta2: T,
    one_minus_beta2: T,
}

impl<T: Real> Moments<T> {
    pub fn new(beta1: f64, beta2: f64) -> Self {
        let w = T::of(1.0 - beta1);
        Moments {
            w,
            one_minus_w: T::ONE - w,
            low_weight: w < T::of(0.5),
            beta2: T::of(beta2),
            one_minus_beta2: T::of(1.0 - beta2),
        }
    }
}

/// Adam's moment update of one element: `m.lerp_(g, 1 - beta1)` and
/// `v.mul_(beta2).addcmul_(g, g, 1 - beta2)`; returns the new `(m, v)`.
#[inline(always)]
pub(crate) fn moments<T: Real, const LOW_WEIGHT: bool>(g: T, m: T, v: T, c: &Moments<T>) -> (T, T) {
    let m = if LOW_WEIGHT {
        m + c.w * (g - m)
    } else {
        g - (g - m) * c.one_minus_w
    };
    (m, v * c.beta2 + (c.one_minus_beta2 * g) * g)
}

/// The per-element constants, rounded once to `T`.
#[derive(Clone, Copy)]
struct Consts<T> {
    /// `1 - lr * weight_decay` for AdamW, 1 otherwise.
    decay: T,
    /// L2 weight decay added to the gradient (Adam), 0 for AdamW.
    l2: T,
    coupled: bool,
    moments: Moments<T>,
    bc2_sqrt: T,
    eps: T,
    neg_step_size: T,
}

impl<T: Real> Consts<T> {
    fn new(h: &AdamHyper) -> Self {
        let t = h.step as f64;
        let coupled = !h.decoupled && h.weight_decay != 0.0;
        Consts {
            decay: T::of(if h.decoupled {
                1.0 - h.lr * h.weight_decay
            } else {
                1.0
            }),
            l2: T::of(h.weight_decay),
            coupled,
            moments: Moments::new(h.beta1, h.beta2),
            bc2_sqrt: T::of((1.0 - h.beta2.powf(t)).sqrt()),
            eps: T::of(h.eps),
            neg_step_size: T::of(-(h.lr / (1.0 - h.beta1.powf(t)))),
        }
    }
}

/// One Adam step over every tensor, in place.
pub fn adam<T: Real>(tensors: Vec<AdamTensor<'_, T>>, h: &AdamHyper) {
    let c = Consts::<T>::new(h);
    // p, m, v (and vmax) read and written, g read
    let streams = if tensors.iter().any(|t| t.vmax.is_some()) {
        9
    } else {
        7
    };
    for_each_chunk(tensors, streams * std::mem::size_of::<T>(), |t| {
        adam_slices(t.p, t.g, t.m, t.v, t.vmax.unwrap_or_default(), &c)
    });
}

crate::simd! {
    /// The branches of the update are constants of the call; as const parameters they leave
    /// every loop free of branches, which lets it vectorize.
    fn adam_slices<T: Real>(
        p: &mut [T],
        g: &[T],
        m: &mut [T],
        v: &mut [T],
        vmax: &mut [T],
        c: &Consts<T>,
    ) {
        let ams = !vmax.is_empty();
        match (c.coupled, c.moments.low_weight, ams) {
            (false, true, false) => adam_loop::<T, false, true, false>(p, g, m, v, vmax, c),
            (false, true, true) => adam_loop::<T, false, true, true>(p, g, m, v, vmax, c),
            (false, false, false) => adam_loop::<T, false, false, false>(p, g, m, v, vmax, c),
            (false, false, true) => adam_loop::<T, false, false, true>(p, g, m, v, vmax, c),
            (true, true, false) => adam_loop::<T, true, true, false>(p, g, m, v, vmax, c),
            (true, true, true) => adam_loop::<T, true, true, true>(p, g, m, v, vmax, c),
            (true, false, false) => adam_loop::<T, true, false, false>(p, g, m, v, vmax, c),
            (true, false, true) => adam_loop::<T, true, false, true>(p, g, m, v, vmax, c),
        }
    }
}

#[inline(always)]
fn adam_loop<T: Real, const COUPLED: bool, const LOW_WEIGHT: bool, const AMSGRAD: bool>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    vmax: &mut [T],
    c: &Consts<T>,
) {
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    let vmax = if AMSGRAD { &mut vmax[..n] } else { vmax };
    let c = *c;
    for i in 0..n {
        let mut pi = p[i];
        let gi = if COUPLED { g[i] + c.l2 * pi } else { g[i] };
        if !COUPLED {
            pi = pi * c.decay;
        }
        let (mi, mut vi) = moments::<T, LOW_WEIGHT>(gi, m[i], v[i], &c.moments);
        m[i] = mi;
        v[i] = vi;
        if AMSGRAD {
            vi = vmax[i].nan_max(vi);
            vmax[i] = vi;
        }
        let denom = vi.sqrt() / c.bc2_sqrt + c.eps;
        // addcdiv's `self + value * t1 / t2`, evaluated left to right as ATen does
        p[i] = pi + (c.neg_step_size * mi) / denom;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    fn hyper(step: u64) -> AdamHyper {
        AdamHyper {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            step,
        }
    }

    #[test]
    fn first_step_moves_each_weight_by_lr_against_the_gradient_sign() {
        // At t = 1, m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps).
        let (mut p, g) = (vec![1.0f64, -2.0, 0.5], vec![0.3, -4.0, 1e-3]);
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        let t = AdamTensor {
            p: &mut p,
            g: &g,
            m: &mut m,
            v: &mut v,
            vmax: None,
        };
        adam(vec![t], &hyper(1));
        for (pi, (p0, gi)) in p.iter().zip([1.0, -2.0, 0.5].iter().zip(&g)) {
            let expected = p0 - 1e-3 * gi / (gi.abs() + 1e-8);
            assert!((pi - expected).abs() < 1e-12, "{pi} vs {expected}");
        }
    }

    #[test]
    fn decoupled_decay_shrinks_params_with_zero_gradient() {
        let mut p = vec![2.0f32; 4];
        let g = vec![0.0f32; 4];
        let (mut m, mut v) = (vec![0.0; 4], vec![0.0; 4]);
        let h = AdamHyper {
            lr: 0.1,
            weight_decay: 0.5,
            decoupled: true,
            ..hyper(1)
        };
        adam(
            vec![AdamTensor {
                p: &mut p,
                g: &g,
                m: &mut m,
                v: &mut v,
                vmax: None,
            }],
            &h,
        );
        assert!(p.iter().all(|&x| x == 2.0 * (1.0 - 0.05f32)));
    }

    #[test]
    fn decoupled_decay_with_a_gradient_decays_then_steps() {
        // AdamW at t = 1: p = p * (1 - lr * wd), then p -= lr * g / (|g| + eps) (m_hat = g,
        // v_hat = g^2), in float64 with the kernel's order of operations up to rounding.
        let (lr, wd, eps) = (0.1, 0.5, 1e-8);
        let p0 = [2.0f64, -1.0, 0.25];
        let g = [0.5f64, -3.0, 1e-4];
        let mut p = p0.to_vec();
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        let h = AdamHyper {
            lr,
            weight_decay: wd,
            decoupled: true,
            eps,
            ..hyper(1)
        };
        adam(
            vec![AdamTensor {
                p: &mut p,
                g: &g,
                m: &mut m,
                v: &mut v,
                vmax: None,
            }],
            &h,
        );
        for i in 0..3 {
            let want = p0[i] * (1.0 - lr * wd) - lr * g[i] / (g[i].abs() + eps);
            assert!((p[i] - want).abs() < 1e-12, "{} vs {want}", p[i]);
            assert!((m[i] - 0.1 * g[i]).abs() < 1e-15);
        }
    }

    #[test]
    fn amsgrad_keeps_the_running_maximum() {
        let mut p = vec![0.0f64; 2];
        let (mut m, mut v, mut vmax) = (vec![0.0; 2], vec![0.0; 2], vec![5.0, 0.0]);
        let g = vec![1.0, 1.0];
        let t = AdamTensor {
            p: &mut p,
            g: &g,
            m: &mut m,
            v: &mut v,
            vmax: Some(&mut vmax),
        };
        adam(vec![t], &hyper(1));
        assert_eq!(vmax[0], 5.0);
        assert_eq!(vmax[1], v[1]);
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        // above the parallel threshold with 9 streams of 4 bytes
        let n = PARALLEL_MIN_BYTES / 36 + 2 * CHUNK + 5;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let (mut p, mut m, mut v, mut x) =
                (vec![0.5f32; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            for step in 1..=3 {
                let t = AdamTensor {
                    p: &mut p,
                    g: &g,
                    m: &mut m,
                    v: &mut v,
                    vmax: Some(&mut x),
                };
                let h = AdamHyper {
                    weight_decay: 0.01,
                    ..hyper(step)
                };
                adam(
                    vec![
                        t,
                        AdamTensor {
                            p: &mut [],
                            g: &[],
                            m: &mut [],
                            v: &mut [],
                            vmax: None,
                        },
                    ],
                    &h,
                );
            }
            (p, m, v)
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(4));
    }
}
