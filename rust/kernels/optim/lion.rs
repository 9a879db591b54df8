//! Lion (Chen et al., 2023), fused into one pass over memory.
//!
//! `lion_pytorch.Lion`'s `update_fn` operation by operation, scalars formed in float64 and
//! rounded once to the arithmetic type: `p *= 1 - lr * wd`,
//! `p += -lr * sign(m * beta1 + (1 - beta1) * g)`, `m = m * beta2 + (1 - beta2) * g`.
//! The sign of NaN is 0, as torch's.
//!
//! As in Adam, parameters and gradients (`P`) and the moment (`S`) may be stored narrower
//! than the arithmetic type `C`; the moment is rounded when stored. With 8-bit state
//! ([`lion_8bit`]) it is decoded and encoded block by block around the same loop.

use crate::runtime::pool::for_each_chunk;
use crate::runtime::quant8::{by_block, Codebook, Quantized, Tensor8};
use crate::runtime::store::{with_bits, Bits, Draws};
use crate::{Real, Store};

/// Hyper-parameters of one step.
#[derive(Clone, Copy, Debug)]
pub struct LionArgs {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
}

crate::bundle! {
    /// One tensor: parameters and gradients stored as `P`, the moment `exp_avg` as `S`.
    pub struct LionTensor<'a, P, S> {
        pub p: &'a mut [P],
        pub g: &'a [P],
        pub exp_avg: &'a mut [S],
        /// How the moment (slot 0) is rounded when stored.
        pub draws: Draws,
    }
}

/// The per-element constants, rounded once to `T`.
#[derive(Clone, Copy)]
struct Consts<T> {
    decay: T,
    neg_lr: T,
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
}

impl<T: Real> Consts<T> {
    fn new(a: &LionArgs) -> Self {
        Consts {
            decay: T::of(1.0 - a.learning_rate * a.weight_decay),
            neg_lr: T::of(-a.learning_rate),
            beta1: T::of(a.beta1),
            one_minus_beta1: T::of(1.0 - a.beta1),
            beta2: T::of(a.beta2),
            one_minus_beta2: T::of(1.0 - a.beta2),
        }
    }
}

/// One Lion step over every tensor, in place, computed in `C`.
pub fn lion<C: Real, P: Store<C>, S: Store<C>>(
    tensors: Vec<LionTensor<'_, P, S>>,
    args: &LionArgs,
) {
    let c = Consts::<C>::new(args);
    // p read and written, g read, exp_avg read and written
    for_each_chunk(tensors, 3 * size_of::<P>() + 2 * size_of::<S>(), |t| {
        with_bits(
            t,
            |t| t.draws,
            1,
            |t, bits| lion_slices(t.p, t.g, t.exp_avg, bits, &c),
        )
    });
}

/// torch's `sign`: -1, 0 or 1, and 0 for NaN.
#[inline(always)]
fn sign<T: Real>(x: T) -> T {
    if x > T::ZERO {
        T::ONE
    } else if x < T::ZERO {
        T::ZERO - T::ONE
    } else {
        T::ZERO
    }
}

crate::simd! {
    fn lion_slices<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        m: &mut [S],
        bits: &Bits,
        c: &Consts<C>,
    ) {
        if bits.stochastic() {
            lion_loop(p, g, S::drawn(m), bits, c)
        } else {
            lion_loop(p, g, m, bits, c)
        }
    }
}

#[inline(always)]
fn lion_loop<C: Real, P: Store<C>, S: Store<C>>(
    p: &mut [P],
    g: &[P],
    m: &mut [S],
    bits: &Bits,
    c: &Consts<C>,
) {
    let n = p.len();
    let r = bits.slot::<C, S>(0, n);
    let (g, m) = (&g[..n], &mut m[..n]);
    let c = *c;
    for i in 0..n {
        let (gi, mi) = (g[i].load(), m[i].load());
        let u = sign(mi * c.beta1 + c.one_minus_beta1 * gi);
        p[i] = P::store(p[i].load() * c.decay + c.neg_lr * u);
        m[i] = S::store_drawn(mi * c.beta2 + c.one_minus_beta2 * gi, S::bit(r, i));
    }
}

/// One Lion step over tensors whose moment is 8-bit (`first`, signed codes), in place.
pub fn lion_8bit(tensors: Vec<Tensor8<'_, f32>>, args: &LionArgs) {
    let c = Consts::<f32>::new(args);
    // p read and written, g read: 4 bytes each; the codes read and written
    for_each_chunk(tensors, 14, |t| lion_8bit_slices(t, &c));
}

crate::simd! {
    fn lion_8bit_slices<'a>(t: Tensor8<'a, f32>, c: &Consts<f32>) {
        let mut state = [Quantized { codes: t.first, absmax: t.first_max.0 }];
        let (p, g) = (t.p, t.g);
        by_block(p.len(), &mut state, [Codebook::signed()], |start, [m], len| {
            lion_loop(&mut p[start..start + len], &g[start..start + len], &mut m[..len], &Bits::NONE, c)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    fn args() -> LionArgs {
        LionArgs {
            learning_rate: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            weight_decay: 0.5,
        }
    }

    fn step<C: Real, P: Store<C>, S: Store<C>>(p: &mut [P], g: &[P], m: &mut [S], a: &LionArgs) {
        lion(
            vec![LionTensor {
                p,
                g,
                exp_avg: m,
                draws: Draws::NEAREST,
            }],
            a,
        );
    }

    #[test]
    fn matches_a_scalar_recomputation_over_steps() {
        let a = args();
        let n = 37;
        let mut p: Vec<f64> = (0..n).map(|i| (i as f64 * 0.3).cos()).collect();
        let mut m = vec![0.0f64; n];
        let (mut p2, mut m2) = (p.clone(), m.clone());
        for s in 0..4 {
            let g: Vec<f64> = (0..n).map(|i| ((i + 7 * s) as f64 * 0.77).sin()).collect();
            step(&mut p, &g, &mut m, &a);
            for i in 0..n {
                let c = m2[i] * 0.9 + (1.0 - 0.9) * g[i];
                let u = if c > 0.0 {
                    1.0
                } else if c < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                p2[i] = p2[i] * (1.0 - 0.1 * 0.5) + -0.1 * u;
                m2[i] = m2[i] * 0.99 + (1.0 - 0.99) * g[i];
            }
        }
        assert_eq!((p, m), (p2, m2));
    }

    #[test]
    fn nan_has_sign_zero_and_zero_moves_nothing() {
        let a = LionArgs {
            weight_decay: 0.0,
            ..args()
        };
        let (mut p, mut m) = (vec![1.0f32, 2.0, 3.0], vec![0.0f32; 3]);
        step(&mut p, &[f32::NAN, 0.0, -1.0], &mut m, &a);
        assert_eq!(p, vec![1.0, 2.0, 3.1]);
        assert!(m[0].is_nan());
    }

    #[test]
    fn empty_input_is_a_no_op() {
        step::<f32, f32, f32>(&mut [], &[], &mut [], &args());
        lion::<f64, f64, f64>(vec![], &args());
    }

    #[test]
    fn bf16_state_rounds_the_float32_moment() {
        use crate::runtime::bf16::bf16_from_f32;
        let n = 50;
        let g: Vec<f32> = (0..n).map(|i| (i as f32 * 0.41).sin()).collect();
        let (mut p, mut m) = (vec![0.5f32; n], vec![0.0f32; n]);
        let (mut p2, mut m2) = (vec![0.5f32; n], vec![0u16; n]);
        step(&mut p, &g, &mut m, &args());
        step(&mut p2, &g, &mut m2, &args());
        assert_eq!(p, p2);
        assert_eq!(m2, m.iter().map(|&x| bf16_from_f32(x)).collect::<Vec<_>>());
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let n = PARALLEL_MIN_BYTES / 20 + 2 * CHUNK + 5;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let (mut p, mut m) = (vec![0.5f32; n], vec![0.0f32; n]);
            for _ in 0..3 {
                step(&mut p, &g, &mut m, &args());
            }
            (p, m)
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(4));
    }
}
