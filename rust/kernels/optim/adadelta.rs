//! Adadelta, fused into one pass over memory.
//!
//! The arithmetic is PyTorch's single-tensor CPU Adadelta operation by operation:
//! `square_avg = square_avg * rho + ((1 - rho) * g) * g`,
//! `delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g`,
//! `acc_delta = acc_delta * rho + ((1 - rho) * delta) * delta`, `p = p + (-lr) * delta`.
//!
//! Parameters and gradients (`P`) and state (`S`) may be stored as bfloat16, as in Adam.
//! bfloat16 state may be rounded stochastically ([`Draws`]): `square_avg` and `acc_delta` are
//! its slots 0 and 1.

use super::gradient::with_flags;
use crate::runtime::pool::for_each_chunk;
use crate::runtime::store::{with_bits, Bits, Draws};
use crate::{Real, Store};

#[derive(Clone, Copy, Debug)]
pub struct AdadeltaArgs {
    pub learning_rate: f64,
    pub rho: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

crate::bundle! {
    /// One tensor: parameters and gradients stored as `P`, the averages as `S`, all of one length.
    pub struct AdadeltaTensor<'a, P, S> {
        pub p: &'a mut [P],
        pub g: &'a [P],
        pub square_avg: &'a mut [S],
        pub acc_delta: &'a mut [S],
        /// How the averages (slots 0 and 1) are rounded when stored.
        pub draws: Draws,
    }
}

/// The per-element constants, rounded once to `T`.
#[derive(Clone, Copy)]
struct Consts<T> {
    /// -1 to maximize, 1 otherwise.
    sign: T,
    l2: T,
    rho: T,
    one_minus_rho: T,
    eps: T,
    neg_lr: T,
}

/// One Adadelta step over every tensor, in place, computed in `C`.
pub fn adadelta<C: Real, P: Store<C>, S: Store<C>>(
    tensors: Vec<AdadeltaTensor<'_, P, S>>,
    h: &AdadeltaArgs,
) {
    let c = Consts::<C> {
        sign: C::of(if h.maximize { -1.0 } else { 1.0 }),
        l2: C::of(h.weight_decay),
        rho: C::of(h.rho),
        one_minus_rho: C::of(1.0 - h.rho),
        eps: C::of(h.epsilon),
        neg_lr: C::of(-h.learning_rate),
    };
    let coupled = h.weight_decay != 0.0;
    // p read and written, g read; both averages read and written
    let bytes = 3 * size_of::<P>() + 4 * size_of::<S>();
    for_each_chunk(tensors, bytes, |t| {
        with_bits(
            t,
            |t| t.draws,
            2,
            |t, bits| adadelta_slices(t.p, t.g, t.square_avg, t.acc_delta, bits, &c, coupled),
        )
    });
}

crate::simd! {
    fn adadelta_slices<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        sq: &mut [S],
        acc: &mut [S],
        bits: &Bits,
        c: &Consts<C>,
        coupled: bool,
    ) {
        if bits.stochastic() {
            let (sq, acc) = (S::drawn(sq), S::drawn(acc));
            with_flags!(adadelta_loop::<C, P, S::Drawn>(p, g, sq, acc, bits, c) [coupled])
        } else {
            with_flags!(adadelta_loop::<C, P, S>(p, g, sq, acc, bits, c) [coupled])
        }
    }
}

#[inline(always)]
fn adadelta_loop<C: Real, P: Store<C>, S: Store<C>, const COUPLED: bool>(
    p: &mut [P],
    g: &[P],
    sq: &mut [S],
    acc: &mut [S],
    bits: &Bits,
    c: &Consts<C>,
) {
    let n = p.len();
    let r = [0, 1].map(|k| bits.slot::<C, S>(k, n));
    let (g, sq, acc) = (&g[..n], &mut sq[..n], &mut acc[..n]);
    let c = *c;
    for i in 0..n {
        let pi = p[i].load();
        let mut gi = g[i].load() * c.sign;
        if COUPLED {
            gi = gi + c.l2 * pi;
        }
        let s = sq[i].load() * c.rho + (c.one_minus_rho * gi) * gi;
        let a = acc[i].load();
        let delta = (a + c.eps).sqrt() / (s + c.eps).sqrt() * gi;
        sq[i] = S::store_drawn(s, S::bit(r[0], i));
        let a = a * c.rho + (c.one_minus_rho * delta) * delta;
        acc[i] = S::store_drawn(a, S::bit(r[1], i));
        p[i] = P::store(pi + c.neg_lr * delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bf16::{bf16_from_f32, f32_from_bf16};
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    fn args() -> AdadeltaArgs {
        AdadeltaArgs {
            learning_rate: 0.5,
            rho: 0.9,
            epsilon: 1e-6,
            weight_decay: 0.0,
            maximize: false,
        }
    }

    fn step<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        sq: &mut [S],
        acc: &mut [S],
        h: &AdadeltaArgs,
    ) {
        adadelta(
            vec![AdadeltaTensor {
                p,
                g,
                square_avg: sq,
                acc_delta: acc,
                draws: Draws::NEAREST,
            }],
            h,
        );
    }

    #[test]
    fn matches_zeilers_rule_over_several_steps() {
        let n = 9;
        for (wd, maximize) in [(0.0, false), (0.2, true)] {
            let h = AdadeltaArgs {
                weight_decay: wd,
                maximize,
                ..args()
            };
            let mut want: Vec<f64> = (0..n).map(|i| i as f64 * 0.2 - 0.7).collect();
            let (mut ws, mut wa) = (vec![0.0; n], vec![0.0; n]);
            let (mut p, mut sq, mut acc) = (want.clone(), vec![0.0; n], vec![0.0; n]);
            for k in 0..4 {
                let g: Vec<f64> = (0..n).map(|i| ((i * 5 + k) as f64 * 0.41).sin()).collect();
                for i in 0..n {
                    let gi = if maximize { -g[i] } else { g[i] } + wd * want[i];
                    ws[i] = 0.9 * ws[i] + 0.1 * gi * gi;
                    let d = ((wa[i] + 1e-6) / (ws[i] + 1e-6)).sqrt() * gi;
                    wa[i] = 0.9 * wa[i] + 0.1 * d * d;
                    want[i] -= 0.5 * d;
                }
                step(&mut p, &g, &mut sq, &mut acc, &h);
            }
            for i in 0..n {
                assert!((p[i] - want[i]).abs() < 1e-12, "{} vs {}", p[i], want[i]);
                assert!((acc[i] - wa[i]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn empty_input_is_a_no_op() {
        let (mut p, mut sq, mut acc) = (Vec::<f64>::new(), Vec::<f64>::new(), Vec::<f64>::new());
        step(&mut p, &[], &mut sq, &mut acc, &args());
    }

    #[test]
    fn bf16_state_rounds_what_the_float32_step_computes() {
        let n = 29;
        let q = |x: f32| f32_from_bf16(bf16_from_f32(x));
        let p0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.3).cos()).collect();
        let g: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin()).collect();
        let (mut p, mut sq, mut acc) = (p0.clone(), vec![q(0.3); n], vec![q(0.01); n]);
        let (mut p2, mut sq2, mut acc2) = (
            p0,
            vec![bf16_from_f32(0.3); n],
            vec![bf16_from_f32(0.01); n],
        );
        step(&mut p, &g, &mut sq, &mut acc, &args());
        step(&mut p2, &g, &mut sq2, &mut acc2, &args());
        let bits = |x: &[f32]| x.iter().map(|&y| bf16_from_f32(y)).collect::<Vec<u16>>();
        assert_eq!((p2, sq2, acc2), (p, bits(&sq), bits(&acc)));
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let n = PARALLEL_MIN_BYTES / 56 + 2 * CHUNK + 5;
        let g: Vec<f64> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0)
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let (mut p, mut sq, mut acc) = (vec![0.5f64; n], vec![0.0; n], vec![0.0; n]);
            let h = AdadeltaArgs {
                weight_decay: 0.01,
                ..args()
            };
            for _ in 0..3 {
                step(&mut p, &g, &mut sq, &mut acc, &h);
            }
            (p, sq, acc)
        };
        assert_eq!(run(1), run(3));
    }
}
