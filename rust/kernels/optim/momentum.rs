//! Momentum and Nesterov momentum with the original design's update rule:
//! `v = momentum * v - lr * g`, then `p += v` or, for Nesterov, `p += momentum * v - lr * g`.
//!
//! As in Adam, parameters and gradients (`P`) and the velocity (`S`) may be stored narrower
//! than the arithmetic type `C`; the parameter update uses the velocity as computed, before
//! it is rounded for storage. With 8-bit state ([`momentum_8bit`]) the velocity is decoded
//! and encoded block by block around the same loop.

use crate::runtime::pool::for_each_chunk;
use crate::runtime::quant8::{by_block, Codebook, Quantized, Tensor8};
use crate::runtime::store::{with_bits, Bits, Draws};
use crate::{Real, Store};

#[derive(Clone, Copy, Debug)]
pub struct MomentumArgs {
    pub learning_rate: f64,
    pub momentum: f64,
    pub nesterov: bool,
    /// Ascend the gradient: it is negated first.
    pub maximize: bool,
}

crate::bundle! {
    /// One tensor: parameters and gradients stored as `P`, velocity as `S`, all of one length.
    pub struct MomentumTensor<'a, P, S> {
        pub p: &'a mut [P],
        pub g: &'a [P],
        pub v: &'a mut [S],
        /// How the velocity (slot 0) is rounded when stored.
        pub draws: Draws,
    }
}

/// One momentum step over every tensor, in place, computed in `C`.
pub fn momentum<C: Real, P: Store<C>, S: Store<C>>(
    tensors: Vec<MomentumTensor<'_, P, S>>,
    h: &MomentumArgs,
) {
    let (lr, mu) = rates::<C>(h);
    // p and v read and written, g read
    for_each_chunk(tensors, 3 * size_of::<P>() + 2 * size_of::<S>(), |t| {
        with_bits(
            t,
            |t| t.draws,
            1,
            |t, bits| {
                if h.nesterov {
                    nesterov_slices(t.p, t.g, t.v, bits, lr, mu)
                } else {
                    classical_slices(t.p, t.g, t.v, bits, lr, mu)
                }
            },
        )
    });
}

crate::simd! {
    fn classical_slices<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        v: &mut [S],
        bits: &Bits,
        lr: C,
        mu: C,
    ) {
        if bits.stochastic() {
            momentum_loop::<C, P, S::Drawn, false>(p, g, S::drawn(v), bits, lr, mu)
        } else {
            momentum_loop::<C, P, S, false>(p, g, v, bits, lr, mu)
        }
    }
}

crate::simd! {
    fn nesterov_slices<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        v: &mut [S],
        bits: &Bits,
        lr: C,
        mu: C,
    ) {
        if bits.stochastic() {
            momentum_loop::<C, P, S::Drawn, true>(p, g, S::drawn(v), bits, lr, mu)
        } else {
            momentum_loop::<C, P, S, true>(p, g, v, bits, lr, mu)
        }
    }
}

#[inline(always)]
fn momentum_loop<C: Real, P: Store<C>, S: Store<C>, const NESTEROV: bool>(
    p: &mut [P],
    g: &[P],
    v: &mut [S],
    bits: &Bits,
    lr: C,
    mu: C,
) {
    let n = p.len();
    let r = bits.slot::<C, S>(0, n);
    let (g, v) = (&g[..n], &mut v[..n]);
    for i in 0..n {
        let step = lr * g[i].load();
        let vi = mu * v[i].load() - step;
        v[i] = S::store_drawn(vi, S::bit(r, i));
        p[i] = P::store(if NESTEROV {
            p[i].load() + (mu * vi - step)
        } else {
            p[i].load() + vi
        });
    }
}

/// The rate and momentum of one step, rounded once to `C`; the rate's sign carries
/// `maximize` (`lr * -g` is `-lr * g` bit for bit).
fn rates<C: Real>(h: &MomentumArgs) -> (C, C) {
    let lr = if h.maximize {
        -h.learning_rate
    } else {
        h.learning_rate
    };
    (C::of(lr), C::of(h.momentum))
}

/// One momentum step over tensors whose velocity is 8-bit (`first`, signed codes), in place.
pub fn momentum_8bit(tensors: Vec<Tensor8<'_, f32>>, h: &MomentumArgs) {
    let (lr, mu) = rates::<f32>(h);
    // p read and written, g read: 4 bytes each; the codes read and written
    for_each_chunk(tensors, 14, |t| momentum_8bit_slices(t, lr, mu, h.nesterov));
}

crate::simd! {
    fn momentum_8bit_slices<'a>(t: Tensor8<'a, f32>, lr: f32, mu: f32, nesterov: bool) {
        let mut state = [Quantized { codes: t.first, absmax: t.first_max.0 }];
        let (p, g) = (t.p, t.g);
        by_block(p.len(), &mut state, [Codebook::signed()], |start, [v], len| {
            let (p, g, v) = (&mut p[start..start + len], &g[start..start + len], &mut v[..len]);
            if nesterov {
                momentum_loop::<f32, f32, f32, true>(p, g, v, &Bits::NONE, lr, mu)
            } else {
                momentum_loop::<f32, f32, f32, false>(p, g, v, &Bits::NONE, lr, mu)
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_nesterov_steps_by_hand() {
        let (mut p, g, mut v) = (vec![1.0f64], vec![2.0], vec![0.0]);
        let h = MomentumArgs {
            learning_rate: 0.1,
            momentum: 0.5,
            nesterov: true,
            maximize: false,
        };
        for _ in 0..2 {
            momentum(
                vec![MomentumTensor {
                    p: &mut p,
                    g: &g,
                    v: &mut v,
                    draws: Draws::NEAREST,
                }],
                &h,
            );
        }
        // v1 = -0.2, p1 = 1 + (-0.1 - 0.2) = 0.7; v2 = -0.3, p2 = 0.7 + (-0.15 - 0.2) = 0.35
        assert!((v[0] + 0.3).abs() < 1e-15);
        assert!((p[0] - 0.35).abs() < 1e-15);
    }

    #[test]
    fn classical_adds_the_velocity() {
        let (mut p, g, mut v) = (vec![1.0f32, 0.0], vec![1.0, -1.0], vec![1.0, 0.0]);
        let h = MomentumArgs {
            learning_rate: 0.5,
            momentum: 0.5,
            nesterov: false,
            maximize: false,
        };
        momentum(
            vec![MomentumTensor {
                p: &mut p,
                g: &g,
                v: &mut v,
                draws: Draws::NEAREST,
            }],
            &h,
        );
        assert_eq!(v, vec![0.0, 0.5]);
        assert_eq!(p, vec![1.0, 0.5]);
    }

    #[test]
    fn bf16_velocity_is_rounded_after_the_step_uses_it() {
        use crate::runtime::bf16::{bf16_from_f32, f32_from_bf16};
        for nesterov in [false, true] {
            let h = MomentumArgs {
                learning_rate: 0.1,
                momentum: 0.9,
                nesterov,
                maximize: false,
            };
            // v = 0.9 * 1 - 0.1 * 0.3125 = 0.86875, not a bfloat16 value
            let (p0, g, v0) = (1.0f32, 0.3125f32, 1.0f32);
            let (mut p, mut v) = (vec![p0], vec![v0]);
            momentum(
                vec![MomentumTensor {
                    p: &mut p,
                    g: &[g],
                    v: &mut v,
                    draws: Draws::NEAREST,
                }],
                &h,
            );
            let (mut p2, mut v2) = (vec![p0], vec![bf16_from_f32(v0)]);
            momentum(
                vec![MomentumTensor {
                    p: &mut p2,
                    g: &[g],
                    v: &mut v2,
                    draws: Draws::NEAREST,
                }],
                &h,
            );
            assert_ne!(f32_from_bf16(v2[0]), v[0]);
            assert_eq!((p2[0], v2[0]), (p[0], bf16_from_f32(v[0])));
            let (mut p3, mut v3) = (vec![bf16_from_f32(p0)], vec![v0]);
            momentum(
                vec![MomentumTensor {
                    p: &mut p3,
                    g: &[bf16_from_f32(g)],
                    v: &mut v3,
                    draws: Draws::NEAREST,
                }],
                &h,
            );
            assert_eq!((p3[0], v3[0]), (bf16_from_f32(p[0]), v[0]));
        }
    }
}
