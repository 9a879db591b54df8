//! RMSprop (with momentum, centered), fused into one pass over memory.
//!
//! The arithmetic is PyTorch's single-tensor CPU RMSprop operation by operation (see
//! `gradfast.reference.RMSprop`): `square_avg.mul_(alpha).addcmul_(g, g, 1 - alpha)` and
//! `grad_avg.lerp_(g, 1 - alpha)` (Adam's moment update with both betas `alpha`),
//! `avg = sqrt(square_avg - grad_avg^2) + eps`, then `buf.mul_(momentum).addcdiv_(g, avg)` and
//! `p.add_(buf, -lr)`, or `p.addcdiv_(g, avg, -lr)` without momentum. State may be stored as
//! bfloat16, as in [`super::adam`]; the parameter update uses the state before it is rounded.
//! bfloat16 state may be rounded stochastically ([`Draws`]): its slots are numbered by their
//! place in the tensor's present state, `square_avg`, `momentum_buffer`, `grad_avg` (so
//! `grad_avg` is slot 1 without momentum), as the optimizer's `slots` name them.

use super::adam::{moments, Moments};
use super::gradient::{with_flags, Gradient};
use crate::runtime::pool::for_each_chunk;
use crate::runtime::store::{with_bits, Bits, Draws};
use crate::{Real, Store};

/// Hyper-parameters of one step. The momentum buffer and the gradient average are those of
/// the tensors (present exactly when `momentum > 0` and when `centered`).
#[derive(Clone, Copy, Debug)]
pub struct RMSpropArgs {
    pub learning_rate: f64,
    pub alpha: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub centered: bool,
    pub maximize: bool,
}

crate::bundle! {
    /// One tensor: parameters and gradients stored as `P`, state as `S`, all of one length.
    pub struct RMSpropTensor<'a, P, S> {
        pub p: &'a mut [P],
        pub g: &'a [P],
        pub square_avg: &'a mut [S],
        pub momentum_buffer: Option<&'a mut [S]>,
        pub grad_avg: Option<&'a mut [S]>,
        /// How the state (its present slots numbered in order) is rounded when stored.
        pub draws: Draws,
    }
}

#[derive(Clone, Copy)]
struct Consts<T> {
    grad: Gradient<T>,
    /// `Moments::new(alpha, alpha)`: its first moment is `grad_avg`, its second `square_avg`.
    averages: Moments<T>,
    epsilon: T,
    momentum: T,
    neg_lr: T,
}

/// One RMSprop step over every tensor, in place, computed in `C`.
pub fn rmsprop<C: Real, P: Store<C>, S: Store<C>>(
    tensors: Vec<RMSpropTensor<'_, P, S>>,
    args: &RMSpropArgs,
) {
    let c = Consts {
        grad: Gradient::new(args.maximize, args.weight_decay),
        averages: Moments::new(args.alpha, args.alpha),
        epsilon: C::of(args.epsilon),
        momentum: C::of(args.momentum),
        neg_lr: C::of(-args.learning_rate),
    };
    // p and square_avg (and each optional buffer) read and written, g read
    let optional = |present: bool| if present { 2 } else { 0 };
    let state_streams = 2
        + optional(tensors.iter().any(|t| t.momentum_buffer.is_some()))
        + optional(tensors.iter().any(|t| t.grad_avg.is_some()));
    let bytes = 3 * size_of::<P>() + state_streams * size_of::<S>();
    for_each_chunk(tensors, bytes, |t| {
        let slots =
            1 + usize::from(t.momentum_buffer.is_some()) + usize::from(t.grad_avg.is_some());
        with_bits(
            t,
            |t| t.draws,
            slots,
            |t, bits| {
                let buf = t.momentum_buffer.unwrap_or_default();
                let ga = t.grad_avg.unwrap_or_default();
                rmsprop_slices(t.p, t.g, t.square_avg, buf, ga, bits, &c)
            },
        )
    });
}

crate::simd! {
    fn rmsprop_slices<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        sq: &mut [S],
        buf: &mut [S],
        ga: &mut [S],
        bits: &Bits,
        c: &Consts<C>,
    ) {
        let (centered, momentum) = (!ga.is_empty(), !buf.is_empty());
        // lerp's branch matters only to the centered average
        let low_weight = centered && c.averages.low_weight;
        if bits.stochastic() {
            let (sq, buf, ga) = (S::drawn(sq), S::drawn(buf), S::drawn(ga));
            with_flags!(
                rmsprop_loop::<C, P, S::Drawn>(p, g, sq, buf, ga, bits, c) [c.grad.l2, centered, low_weight, momentum]
            )
        } else {
            with_flags!(
                rmsprop_loop::<C, P, S>(p, g, sq, buf, ga, bits, c) [c.grad.l2, centered, low_weight, momentum]
            )
        }
    }
}

#[inline(always)]
fn rmsprop_loop<
    C: Real,
    P: Store<C>,
    S: Store<C>,
    const L2: bool,
    const CENTERED: bool,
    const LOW_WEIGHT: bool,
    const MOMENTUM: bool,
>(
    p: &mut [P],
    g: &[P],
    sq: &mut [S],
    buf: &mut [S],
    ga: &mut [S],
    bits: &Bits,
    c: &Consts<C>,
) {
    let n = p.len();
    // the slots present, in order: square_avg, momentum_buffer, grad_avg
    let (r_sq, r_buf) = (bits.slot::<C, S>(0, n), bits.slot::<C, S>(1, n));
    let r_ga = bits.slot::<C, S>(1 + usize::from(MOMENTUM), n);
    let (g, sq) = (&g[..n], &mut sq[..n]);
    let buf = if MOMENTUM { &mut buf[..n] } else { buf };
    let ga = if CENTERED { &mut ga[..n] } else { ga };
    let c = *c;
    for i in 0..n {
        let pi = p[i].load();
        let gi = c.grad.of::<L2>(g[i].load(), pi);
        let ga_old = if CENTERED { ga[i].load() } else { C::ZERO };
        let (gai, sqi) = moments::<C, LOW_WEIGHT>(gi, ga_old, sq[i].load(), &c.averages);
        sq[i] = S::store_drawn(sqi, S::bit(r_sq, i));
        let var = if CENTERED {
            ga[i] = S::store_drawn(gai, S::bit(r_ga, i));
            sqi - gai * gai
        } else {
            sqi
        };
        let avg = var.sqrt() + c.epsilon;
        p[i] = P::store(if MOMENTUM {
            let b = buf[i].load() * c.momentum + gi / avg;
            buf[i] = S::store_drawn(b, S::bit(r_buf, i));
            pi + c.neg_lr * b
        } else {
            // addcdiv's `self + value * t1 / t2`, left to right
            pi + (c.neg_lr * gi) / avg
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::gradient::testing::{
        assert_any_thread_count_agrees, bf16_bits, pooled_gradients,
    };

    fn args(momentum: f64, centered: bool) -> RMSpropArgs {
        RMSpropArgs {
            learning_rate: 0.01,
            alpha: 0.9,
            epsilon: 1e-8,
            weight_decay: 0.1,
            momentum,
            centered,
            maximize: false,
        }
    }

    /// One step of one tensor; `state` holds `square_avg`, `momentum_buffer` and `grad_avg`,
    /// the last two passed as the settings ask.
    fn step<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        state: &mut [Vec<S>; 3],
        a: &RMSpropArgs,
    ) {
        let [sq, buf, ga] = state;
        let t = RMSpropTensor {
            p,
            g,
            square_avg: sq,
            momentum_buffer: (a.momentum > 0.0).then_some(&mut buf[..]),
            grad_avg: a.centered.then_some(&mut ga[..]),
            draws: Draws::NEAREST,
        };
        rmsprop(vec![t], a);
    }

    /// `n` steps of one float64 tensor from zero state; returns the params.
    fn steps(p0: &[f64], g: &[f64], a: &RMSpropArgs, n: u64) -> Vec<f64> {
        let (mut p, mut state) = (p0.to_vec(), [0, 1, 2].map(|_| vec![0.0; p0.len()]));
        for _ in 0..n {
            step(&mut p, g, &mut state, a);
        }
        p
    }

    #[test]
    fn every_setting_against_the_formula() {
        let (p0, g) = ([1.0f64, -2.0, 0.5], [0.3f64, -4.0, 1e-3]);
        for (momentum, centered) in [(0.0, false), (0.9, false), (0.0, true), (0.5, true)] {
            let a = args(momentum, centered);
            let p = steps(&p0, &g, &a, 3);
            for i in 0..3 {
                let (mut q, mut s, mut b, mut m) = (p0[i], 0.0, 0.0, 0.0);
                for _ in 0..3 {
                    let gi = g[i] + 0.1 * q;
                    s = 0.9 * s + 0.1 * gi * gi;
                    m = if centered { m + 0.1 * (gi - m) } else { 0.0 };
                    let avg = (s - m * m).sqrt() + 1e-8;
                    b = momentum * b + gi / avg;
                    q -= 0.01 * if momentum > 0.0 { b } else { gi / avg };
                }
                assert!(
                    (p[i] - q).abs() < 1e-13,
                    "{momentum} {centered}: {} vs {q}",
                    p[i]
                );
            }
        }
    }

    #[test]
    fn empty_input_is_a_no_op() {
        rmsprop::<f64, f64, f64>(vec![], &args(0.9, true));
        assert!(steps(&[], &[], &args(0.9, true), 1).is_empty());
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let g = pooled_gradients(36);
        assert_any_thread_count_agrees(|| {
            let n = g.len();
            let mut state = [vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]];
            let mut p = vec![0.5f32; n];
            for _ in 0..3 {
                step(&mut p, &g, &mut state, &args(0.9, true));
            }
            (p, state)
        });
    }

    #[test]
    fn bf16_state_is_rounded_after_the_step_uses_it() {
        let (p0, g) = (vec![1.0f32, -0.5, 0.25], vec![0.3f32, 0.7, -0.1]);
        let a = args(0.9, true);
        let (mut p, mut state) = (p0.clone(), [0, 1, 2].map(|_| vec![0.0f32; 3]));
        step(&mut p, &g, &mut state, &a);
        let (mut p2, mut state2) = (p0.clone(), [0, 1, 2].map(|_| vec![0u16; 3]));
        step(&mut p2, &g, &mut state2, &a);
        assert_eq!(p2, p);
        assert_eq!(state2, state.map(|x| bf16_bits(&x)));
    }
}
