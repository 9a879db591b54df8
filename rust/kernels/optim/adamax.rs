//! Adamax, fused into one pass over memory.
//!
//! The arithmetic is PyTorch's single-tensor CPU Adamax operation by operation (see
//! `gradfast.reference.Adamax`): `exp_avg.lerp_(g, 1 - beta1)` (Adam's first moment),
//! `exp_inf = maximum(exp_inf * beta2, |g| + eps)` (NaN-propagating), then
//! `p.addcdiv_(exp_avg, exp_inf, -lr / (1 - beta1^t))`. State may be stored as bfloat16, as in
//! [`super::adam`]; the parameter update uses the moments before they are rounded. bfloat16
//! state may be rounded stochastically ([`Draws`]): `exp_avg` and `exp_inf` are its slots 0
//! and 1.

use super::adam::{moments, Moments};
use super::gradient::{with_flags, Gradient};
use crate::runtime::pool::for_each_chunk;
use crate::runtime::store::{with_bits, Bits, Draws};
use crate::{Real, Store};

/// Hyper-parameters of one step; `step` is the 1-based step number.
#[derive(Clone, Copy, Debug)]
pub struct AdamaxArgs {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    pub maximize: bool,
    pub step: u64,
}

crate::bundle! {
    /// One tensor: parameters and gradients stored as `P`, state as `S`, all of one length.
    pub struct AdamaxTensor<'a, P, S> {
        pub p: &'a mut [P],
        pub g: &'a [P],
        pub exp_avg: &'a mut [S],
        pub exp_inf: &'a mut [S],
        /// How the moments (slots 0 and 1) are rounded when stored.
        pub draws: Draws,
    }
}

#[derive(Clone, Copy)]
struct Consts<T> {
    grad: Gradient<T>,
    /// Adam's moments, of which only the first (`exp_avg`) is used.
    moments: Moments<T>,
    beta2: T,
    epsilon: T,
    neg_clr: T,
}

/// One Adamax step over every tensor, in place, computed in `C`.
pub fn adamax<C: Real, P: Store<C>, S: Store<C>>(
    tensors: Vec<AdamaxTensor<'_, P, S>>,
    args: &AdamaxArgs,
) {
    let clr = args.learning_rate / (1.0 - args.beta1.powf(args.step as f64));
    let c = Consts {
        grad: Gradient::new(args.maximize, args.weight_decay),
        moments: Moments::new(args.beta1, 0.0),
        beta2: C::of(args.beta2),
        epsilon: C::of(args.epsilon),
        neg_clr: C::of(-clr),
    };
    // p, exp_avg and exp_inf read and written, g read
    let bytes = 3 * size_of::<P>() + 4 * size_of::<S>();
    for_each_chunk(tensors, bytes, |t| {
        with_bits(
            t,
            |t| t.draws,
            2,
            |t, bits| adamax_slices(t.p, t.g, t.exp_avg, t.exp_inf, bits, &c),
        )
    });
}

crate::simd! {
    fn adamax_slices<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        m: &mut [S],
        u: &mut [S],
        bits: &Bits,
        c: &Consts<C>,
    ) {
        if bits.stochastic() {
            let (m, u) = (S::drawn(m), S::drawn(u));
            with_flags!(adamax_loop::<C, P, S::Drawn>(p, g, m, u, bits, c) [c.grad.l2, c.moments.low_weight])
        } else {
            with_flags!(adamax_loop::<C, P, S>(p, g, m, u, bits, c) [c.grad.l2, c.moments.low_weight])
        }
    }
}

#[inline(always)]
fn adamax_loop<C: Real, P: Store<C>, S: Store<C>, const L2: bool, const LOW_WEIGHT: bool>(
    p: &mut [P],
    g: &[P],
    m: &mut [S],
    u: &mut [S],
    bits: &Bits,
    c: &Consts<C>,
) {
    let n = p.len();
    let r = [0, 1].map(|k| bits.slot::<C, S>(k, n));
    let (g, m, u) = (&g[..n], &mut m[..n], &mut u[..n]);
    let c = *c;
    for i in 0..n {
        let pi = p[i].load();
        let gi = c.grad.of::<L2>(g[i].load(), pi);
        let (mi, _) = moments::<C, LOW_WEIGHT>(gi, m[i].load(), C::ZERO, &c.moments);
        let ui = (u[i].load() * c.beta2).nan_max(gi.abs() + c.epsilon);
        m[i] = S::store_drawn(mi, S::bit(r[0], i));
        u[i] = S::store_drawn(ui, S::bit(r[1], i));
        // addcdiv's `self + value * t1 / t2`, left to right
        p[i] = P::store(pi + (c.neg_clr * mi) / ui);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::gradient::testing::{
        assert_any_thread_count_agrees, bf16_bits, pooled_gradients,
    };

    fn args(step: u64) -> AdamaxArgs {
        AdamaxArgs {
            learning_rate: 0.01,
            beta1: 0.9,
            beta2: 0.5,
            epsilon: 1e-3,
            weight_decay: 0.1,
            maximize: true,
            step,
        }
    }

    fn step<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        m: &mut [S],
        u: &mut [S],
        a: &AdamaxArgs,
    ) {
        adamax(
            vec![AdamaxTensor {
                p,
                g,
                exp_avg: m,
                exp_inf: u,
                draws: Draws::NEAREST,
            }],
            a,
        );
    }

    #[test]
    fn three_steps_against_the_formula() {
        let (p0, g) = ([1.0f64, -2.0, 0.5], [0.3f64, -4.0, 0.0]);
        let (mut p, mut m, mut u) = (p0.to_vec(), vec![0.0; 3], vec![0.0; 3]);
        for t in 1..=3 {
            step(&mut p, &g, &mut m, &mut u, &args(t));
        }
        for i in 0..3 {
            let (mut q, mut mm, mut uu) = (p0[i], 0.0f64, 0.0f64);
            for t in 1..=3 {
                let gi = -g[i] + 0.1 * q;
                mm = 0.9 * mm + 0.1 * gi;
                uu = (0.5 * uu).max(gi.abs() + 1e-3);
                q -= 0.01 / (1.0 - 0.9f64.powi(t)) * mm / uu;
            }
            assert!((p[i] - q).abs() < 1e-14, "{} vs {q}", p[i]);
            assert!((u[i] - uu).abs() < 1e-15);
        }
    }

    #[test]
    fn a_nan_gradient_propagates_into_exp_inf() {
        let (mut p, mut m, mut u) = (vec![1.0f32], vec![0.0f32], vec![5.0f32]);
        step(&mut p, &[f32::NAN], &mut m, &mut u, &args(1));
        assert!(u[0].is_nan() && p[0].is_nan());
    }

    #[test]
    fn empty_input_is_a_no_op() {
        adamax::<f32, f32, f32>(vec![], &args(1));
        step::<f32, f32, f32>(&mut [], &[], &mut [], &mut [], &args(1));
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let g = pooled_gradients(28);
        assert_any_thread_count_agrees(|| {
            let n = g.len();
            let (mut p, mut m, mut u) = (vec![0.5f32; n], vec![0.0f32; n], vec![0.0f32; n]);
            for t in 1..=3 {
                step(&mut p, &g, &mut m, &mut u, &args(t));
            }
            (p, m, u)
        });
    }

    #[test]
    fn bf16_state_is_rounded_after_the_step_uses_it() {
        let (p0, g) = (vec![1.0f32, -0.5, 0.25], vec![0.3f32, 0.7, -0.1]);
        let (mut p, mut m, mut u) = (p0.clone(), vec![0.0f32; 3], vec![0.0f32; 3]);
        step(&mut p, &g, &mut m, &mut u, &args(1));
        let (mut p2, mut m2, mut u2) = (p0.clone(), vec![0u16; 3], vec![0u16; 3]);
        step(&mut p2, &g, &mut m2, &mut u2, &args(1));
        assert_eq!(p2, p);
        assert_eq!((m2, u2), (bf16_bits(&m), bf16_bits(&u)));
    }
}
