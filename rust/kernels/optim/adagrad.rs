//! Adagrad, fused into one pass over memory.
//!
//! The arithmetic is PyTorch's single-tensor CPU Adagrad operation by operation (see
//! `gradfast.reference.Adagrad`): `sum.addcmul_(g, g)`, `std = sqrt(sum) + eps`,
//! `p.addcdiv_(g, std, -clr)` with `clr = lr / (1 + (t - 1) * lr_decay)` formed in float64.
//! Parameters and gradients (`P`) and the accumulator (`S`) may be stored as bfloat16, as in
//! [`super::adam`]; the parameter update uses the accumulator before it is rounded. A bfloat16
//! accumulator may be rounded stochastically ([`Draws`]): `sum` is its slot 0.

use super::gradient::{with_flags, Gradient};
use crate::runtime::pool::for_each_chunk;
use crate::runtime::store::{with_bits, Bits, Draws};
use crate::{Real, Store};

/// Hyper-parameters of one step; `step` is the 1-based step number.
#[derive(Clone, Copy, Debug)]
pub struct AdagradArgs {
    pub learning_rate: f64,
    pub lr_decay: f64,
    pub weight_decay: f64,
    pub epsilon: f64,
    pub maximize: bool,
    pub step: u64,
}

crate::bundle! {
    /// One tensor: parameters and gradients stored as `P`, the accumulator as `S`.
    pub struct AdagradTensor<'a, P, S> {
        pub p: &'a mut [P],
        pub g: &'a [P],
        pub sum: &'a mut [S],
        /// How `sum` (slot 0) is rounded when stored.
        pub draws: Draws,
    }
}

#[derive(Clone, Copy)]
struct Consts<T> {
    grad: Gradient<T>,
    epsilon: T,
    neg_clr: T,
}

/// One Adagrad step over every tensor, in place, computed in `C`.
pub fn adagrad<C: Real, P: Store<C>, S: Store<C>>(
    tensors: Vec<AdagradTensor<'_, P, S>>,
    args: &AdagradArgs,
) {
    let clr = args.learning_rate / (1.0 + (args.step - 1) as f64 * args.lr_decay);
    let c = Consts {
        grad: Gradient::new(args.maximize, args.weight_decay),
        epsilon: C::of(args.epsilon),
        neg_clr: C::of(-clr),
    };
    // p and sum read and written, g read
    let bytes = 3 * size_of::<P>() + 2 * size_of::<S>();
    for_each_chunk(tensors, bytes, |t| {
        with_bits(
            t,
            |t| t.draws,
            1,
            |t, bits| adagrad_slices(t.p, t.g, t.sum, bits, &c),
        )
    });
}

crate::simd! {
    fn adagrad_slices<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        sum: &mut [S],
        bits: &Bits,
        c: &Consts<C>,
    ) {
        if bits.stochastic() {
            with_flags!(adagrad_loop::<C, P, S::Drawn>(p, g, S::drawn(sum), bits, c) [c.grad.l2])
        } else {
            with_flags!(adagrad_loop::<C, P, S>(p, g, sum, bits, c) [c.grad.l2])
        }
    }
}

#[inline(always)]
fn adagrad_loop<C: Real, P: Store<C>, S: Store<C>, const L2: bool>(
    p: &mut [P],
    g: &[P],
    sum: &mut [S],
    bits: &Bits,
    c: &Consts<C>,
) {
    let n = p.len();
    let r = bits.slot::<C, S>(0, n);
    let (g, sum) = (&g[..n], &mut sum[..n]);
    let c = *c;
    for i in 0..n {
        let pi = p[i].load();
        let gi = c.grad.of::<L2>(g[i].load(), pi);
        let si = sum[i].load() + gi * gi;
        sum[i] = S::store_drawn(si, S::bit(r, i));
        // addcdiv's `self + value * t1 / t2`, left to right
        p[i] = P::store(pi + (c.neg_clr * gi) / (si.sqrt() + c.epsilon));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::gradient::testing::{
        assert_any_thread_count_agrees, bf16_bits, pooled_gradients,
    };

    fn args(step: u64) -> AdagradArgs {
        AdagradArgs {
            learning_rate: 0.1,
            lr_decay: 0.25,
            weight_decay: 0.5,
            epsilon: 1e-10,
            maximize: true,
            step,
        }
    }

    fn step<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        sum: &mut [S],
        a: &AdagradArgs,
    ) {
        let draws = Draws::NEAREST;
        adagrad(vec![AdagradTensor { p, g, sum, draws }], a);
    }

    #[test]
    fn two_steps_against_the_formula() {
        let (p0, g) = ([1.0f64, -2.0, 0.5], [0.3f64, -4.0, 0.0]);
        let (mut p, mut sum) = (p0.to_vec(), vec![0.1; 3]);
        step(&mut p, &g, &mut sum, &args(1));
        step(&mut p, &g, &mut sum, &args(2));
        for i in 0..3 {
            let (mut q, mut s) = (p0[i], 0.1);
            for t in 1..=2 {
                let gi = -g[i] + 0.5 * q;
                s += gi * gi;
                q -= 0.1 / (1.0 + (t - 1) as f64 * 0.25) * gi / (s.sqrt() + 1e-10);
            }
            assert!((p[i] - q).abs() < 1e-14, "{} vs {q}", p[i]);
            assert!((sum[i] - s).abs() < 1e-14);
        }
    }

    #[test]
    fn empty_input_is_a_no_op() {
        adagrad::<f32, f32, f32>(vec![], &args(1));
        step::<f32, f32, f32>(&mut [], &[], &mut [], &args(1));
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let g = pooled_gradients(20);
        assert_any_thread_count_agrees(|| {
            let (mut p, mut sum) = (vec![0.5f32; g.len()], vec![0.0f32; g.len()]);
            for t in 1..=3 {
                step(&mut p, &g, &mut sum, &args(t));
            }
            (p, sum)
        });
    }

    #[test]
    fn bf16_accumulator_is_rounded_after_the_step_uses_it() {
        let (p0, g) = (vec![1.0f32, -0.5], vec![0.3f32, 0.7]);
        let (mut p, mut sum) = (p0.clone(), vec![0.0f32; 2]);
        step(&mut p, &g, &mut sum, &args(1));
        let (mut p2, mut sum2) = (p0.clone(), vec![0u16; 2]);
        step(&mut p2, &g, &mut sum2, &args(1));
        assert_eq!(p2, p);
        assert_eq!(sum2, bf16_bits(&sum));
    }
}
