//! torch's SGD (`torch.optim.SGD`, its single-tensor path): with `d` the gradient (negated
//! for `maximize`) plus `weight_decay * p`, the momentum buffer is `b = d` on its first step and
//! `b = momentum * b + (1 - dampening) * d` after; the step direction is `d + momentum * b`
//! (Nesterov) or `b`, and `p -= lr * direction`. Without momentum there is no buffer and the
//! direction is `d`.
//!
//! This is not the original design's `MomentumOptimizer` rule (its velocity holds `-lr * ...`,
//! so a changed learning rate acts differently). As in Adam, parameters and gradients (`P`) and
//! the buffer (`S`) may be stored narrower than the arithmetic type `C`; the step uses the
//! buffer as computed, before it is rounded for storage (to nearest even, or stochastically
//! by the tensor's [`Draws`]).

use crate::runtime::pool::for_each_chunk;
use crate::runtime::store::{with_bits, Bits, Draws};
use crate::{Real, Store};

#[derive(Clone, Copy, Debug)]
pub struct SgdArgs {
    pub learning_rate: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    /// Ascend the gradient: it is negated first.
    pub maximize: bool,
    /// The buffers have no value yet: this step sets them to the direction (no dampening).
    pub first: bool,
}

crate::bundle! {
    /// One tensor with a momentum buffer: parameters and gradients stored as `P`, the buffer as `S`.
    pub struct SgdTensor<'a, P, S> {
        pub p: &'a mut [P],
        pub g: &'a [P],
        pub buf: &'a mut [S],
        /// How the buffer (slot 0) is rounded when stored.
        pub draws: Draws,
    }
}

crate::bundle! {
    /// One tensor of a step without momentum (no buffer).
    pub struct SgdPlainTensor<'a, P> {
        pub p: &'a mut [P],
        pub g: &'a [P],
    }
}

/// The scalars of a step in the arithmetic type, and its two switches.
#[derive(Clone, Copy)]
struct Coefficients<C> {
    sign: C,
    wd: Option<C>,
    mu: C,
    keep: C,
    neg_lr: C,
    first: bool,
    nesterov: bool,
}

impl<C: Real> Coefficients<C> {
    fn of(h: &SgdArgs) -> Self {
        Coefficients {
            sign: C::of(if h.maximize { -1.0 } else { 1.0 }),
            wd: (h.weight_decay != 0.0).then(|| C::of(h.weight_decay)),
            mu: C::of(h.momentum),
            keep: C::of(1.0 - h.dampening),
            neg_lr: C::of(-h.learning_rate),
            first: h.first,
            nesterov: h.nesterov,
        }
    }
}

/// One SGD step with momentum buffers over every tensor, in place, computed in `C`.
pub fn sgd<C: Real, P: Store<C>, S: Store<C>>(tensors: Vec<SgdTensor<'_, P, S>>, h: &SgdArgs) {
    let k = Coefficients::<C>::of(h);
    // p read and written, g read, the buffer written (and read after the first step)
    for_each_chunk(tensors, 3 * size_of::<P>() + 2 * size_of::<S>(), |t| {
        with_bits(
            t,
            |t| t.draws,
            1,
            |t, bits| momentum_slices(t.p, t.g, t.buf, bits, k),
        )
    });
}

/// One SGD step without momentum over every tensor, in place, computed in `C`.
pub fn sgd_plain<C: Real, P: Store<C>>(tensors: Vec<SgdPlainTensor<'_, P>>, h: &SgdArgs) {
    let k = Coefficients::<C>::of(h);
    for_each_chunk(tensors, 3 * size_of::<P>(), |t| plain_slices(t.p, t.g, k));
}

/// The gradient as torch's step first forms it: negated to ascend, plus the L2 term.
#[inline(always)]
fn direction<C: Real>(p: C, g: C, k: Coefficients<C>) -> C {
    let d = k.sign * g;
    match k.wd {
        Some(wd) => d + wd * p,
        None => d,
    }
}

crate::simd! {
    fn momentum_slices<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        buf: &mut [S],
        bits: &Bits,
        k: Coefficients<C>,
    ) {
        if bits.stochastic() {
            momentum_loop::<C, P, S::Drawn>(p, g, S::drawn(buf), bits, k)
        } else {
            momentum_loop::<C, P, S>(p, g, buf, bits, k)
        }
    }
}

#[inline(always)]
fn momentum_loop<C: Real, P: Store<C>, S: Store<C>>(
    p: &mut [P],
    g: &[P],
    buf: &mut [S],
    bits: &Bits,
    k: Coefficients<C>,
) {
    let n = p.len();
    let r = bits.slot::<C, S>(0, n);
    let (g, buf) = (&g[..n], &mut buf[..n]);
    for i in 0..n {
        let pi = p[i].load();
        let d = direction(pi, g[i].load(), k);
        let b = if k.first {
            d
        } else {
            k.mu * buf[i].load() + k.keep * d
        };
        buf[i] = S::store_drawn(b, S::bit(r, i));
        let step = if k.nesterov { d + k.mu * b } else { b };
        p[i] = P::store(pi + k.neg_lr * step);
    }
}

crate::simd! {
    fn plain_slices<C: Real, P: Store<C>>(p: &mut [P], g: &[P], k: Coefficients<C>) {
        let n = p.len();
        let g = &g[..n];
        for i in 0..n {
            let pi = p[i].load();
            p[i] = P::store(pi + k.neg_lr * direction(pi, g[i].load(), k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        momentum: f64,
        dampening: f64,
        weight_decay: f64,
        nesterov: bool,
        first: bool,
    ) -> SgdArgs {
        SgdArgs {
            learning_rate: 0.1,
            momentum,
            dampening,
            weight_decay,
            nesterov,
            maximize: false,
            first,
        }
    }

    fn step(p: &mut Vec<f64>, g: &[f64], buf: &mut Vec<f64>, h: SgdArgs) {
        let draws = Draws::NEAREST;
        sgd(vec![SgdTensor { p, g, buf, draws }], &h);
    }

    #[test]
    fn two_steps_by_hand() {
        // momentum 0.5, dampening 0.5, weight decay 1: d1 = 2 + 1 = 3, b1 = 3, p1 = 1 - 0.3 = 0.7;
        // d2 = 2 + 0.7 = 2.7, b2 = 1.5 + 1.35 = 2.85, p2 = 0.7 - 0.285 = 0.415
        let (mut p, mut buf) = (vec![1.0], vec![0.0]);
        step(&mut p, &[2.0], &mut buf, args(0.5, 0.5, 1.0, false, true));
        assert!((buf[0] - 3.0).abs() < 1e-15 && (p[0] - 0.7).abs() < 1e-15);
        step(&mut p, &[2.0], &mut buf, args(0.5, 0.5, 1.0, false, false));
        assert!((buf[0] - 2.85).abs() < 1e-15 && (p[0] - 0.415).abs() < 1e-15);
    }

    #[test]
    fn nesterov_steps_along_the_gradient_plus_the_buffer() {
        // d = 2, b = 0.5 * 1 + 2 = 2.5, step = 2 + 0.5 * 2.5 = 3.25, p = 1 - 0.325
        let (mut p, mut buf) = (vec![1.0], vec![1.0]);
        step(&mut p, &[2.0], &mut buf, args(0.5, 0.0, 0.0, true, false));
        assert!((buf[0] - 2.5).abs() < 1e-15 && (p[0] - 0.675).abs() < 1e-15);
    }

    #[test]
    fn plain_and_maximize() {
        let mut p = vec![1.0f32, -1.0];
        let mut h = args(0.0, 0.0, 0.0, false, false);
        h.maximize = true;
        sgd_plain(
            vec![SgdPlainTensor {
                p: &mut p,
                g: &[1.0, 2.0],
            }],
            &h,
        );
        assert_eq!(p, vec![1.1, -0.8]);
    }

    #[test]
    fn zero_weight_decay_leaves_infinite_params_alone() {
        // with the L2 term skipped, an infinite weight does not become NaN through 0 * inf
        let mut p = vec![f32::INFINITY];
        sgd_plain(
            vec![SgdPlainTensor {
                p: &mut p,
                g: &[1.0],
            }],
            &args(0.0, 0.0, 0.0, false, false),
        );
        assert_eq!(p[0], f32::INFINITY);
    }

    #[test]
    fn empty_input() {
        sgd::<f32, f32, f32>(vec![], &args(0.9, 0.0, 0.0, false, true));
        sgd_plain::<f64, f64>(vec![], &args(0.0, 0.0, 0.0, false, false));
    }

    #[test]
    fn one_thread_equals_many() {
        use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};
        let n = PARALLEL_MIN_BYTES / 20 + 2 * CHUNK + 5;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let (mut p, mut buf) = (vec![0.5f32; n], vec![0.0f32; n]);
            for first in [true, false, false] {
                let h = args(0.9, 0.1, 0.01, true, first);
                sgd::<f32, f32, f32>(
                    vec![SgdTensor {
                        p: &mut p,
                        g: &g,
                        buf: &mut buf,
                        draws: Draws::NEAREST,
                    }],
                    &h,
                );
            }
            (p, buf)
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(4));
    }
}
