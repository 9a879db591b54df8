//! Adam and AdamW (with AMSGrad), fused into one pass over memory.
//!
//! The arithmetic is PyTorch's single-tensor CPU Adam operation by operation: scalars are
//! formed in float64 and rounded once to the element type; `exp_avg.lerp_(g, 1 - beta1)`,
//! `exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2)`,
//! `denom = sqrt(v) / sqrt(1 - beta2^t) + eps`, `p.addcdiv_(m, denom, -lr / (1 - beta1^t))`
//! (that is `p + (-step_size * m) / denom`).
//!
//! Parameters and gradients (`P`) and state (`S`) may be stored narrower than the arithmetic
//! type `C` (bfloat16 in float32, see [`crate::runtime::store`]): each element is widened on load and
//! rounded to nearest even on store, in the same pass. The parameter update uses the moments
//! as computed, before they are rounded for storage. bfloat16 state may be rounded
//! stochastically instead ([`Draws`]): `exp_avg`, `exp_avg_sq` and `max_exp_avg_sq` are
//! its slots 0, 1 and 2.
//!
//! With 8-bit state ([`adam_8bit`], float32 params) each block of 256 moments is decoded into
//! a float32 buffer, stepped by the same loop and encoded again ([`crate::runtime::quant8`]):
//! still one pass over memory.

use crate::runtime::pool::for_each_chunk;
use crate::runtime::quant8::{by_block, Codebook, Quantized, Tensor8};
use crate::runtime::store::{with_bits, Bits, Draws};
use crate::{Real, Store};

/// Hyper-parameters of one step; `step` is the 1-based step number.
#[derive(Clone, Copy, Debug)]
pub struct AdamArgs {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
    /// Ascend the gradient (torch's `maximize`): it is negated first.
    pub maximize: bool,
    pub step: u64,
}

crate::bundle! {
    /// One tensor: parameters and gradients stored as `P`, state as `S`, all of one length.
    pub struct AdamTensor<'a, P, S> {
        pub p: &'a mut [P],
        pub g: &'a [P],
        pub m: &'a mut [S],
        pub v: &'a mut [S],
        /// AMSGrad's running maximum of `v`.
        pub vmax: Option<&'a mut [S]>,
        /// How the state is rounded when stored.
        pub draws: Draws,
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
    /// -1 to maximize, 1 otherwise (a product by it is exact).
    sign: T,
    moments: Moments<T>,
    bc2_sqrt: T,
    eps: T,
    neg_step_size: T,
}

impl<T: Real> Consts<T> {
    fn new(h: &AdamArgs) -> Self {
        let t = h.step as f64;
        let coupled = !h.decoupled && h.weight_decay != 0.0;
        Consts {
            decay: T::of(if h.decoupled {
                1.0 - h.learning_rate * h.weight_decay
            } else {
                1.0
            }),
            l2: T::of(h.weight_decay),
            coupled,
            sign: T::of(if h.maximize { -1.0 } else { 1.0 }),
            moments: Moments::new(h.beta1, h.beta2),
            bc2_sqrt: T::of((1.0 - h.beta2.powf(t)).sqrt()),
            eps: T::of(h.epsilon),
            neg_step_size: T::of(-(h.learning_rate / (1.0 - h.beta1.powf(t)))),
        }
    }
}

/// One Adam step over every tensor, in place, computed in `C`.
pub fn adam<C: Real, P: Store<C>, S: Store<C>>(tensors: Vec<AdamTensor<'_, P, S>>, h: &AdamArgs) {
    let c = Consts::<C>::new(h);
    // p read and written, g read; m, v (and vmax) read and written
    let state_streams = if tensors.iter().any(|t| t.vmax.is_some()) {
        6
    } else {
        4
    };
    let bytes = 3 * size_of::<P>() + state_streams * size_of::<S>();
    for_each_chunk(tensors, bytes, |t| {
        let slots = 2 + usize::from(t.vmax.is_some());
        with_bits(
            t,
            |t| t.draws,
            slots,
            |t, bits| adam_slices(t.p, t.g, t.m, t.v, t.vmax.unwrap_or_default(), bits, &c),
        )
    });
}

crate::simd! {
    /// The branches of the update are constants of the call; as const parameters (and the
    /// rounding as the state's type) they leave every loop free of branches, which lets it
    /// vectorize.
    fn adam_slices<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        m: &mut [S],
        v: &mut [S],
        vmax: &mut [S],
        bits: &Bits,
        c: &Consts<C>,
    ) {
        if bits.stochastic() {
            adam_arms::<C, P, S::Drawn>(p, g, S::drawn(m), S::drawn(v), S::drawn(vmax), bits, c)
        } else {
            adam_arms::<C, P, S>(p, g, m, v, vmax, bits, c)
        }
    }
}

#[inline(always)]
fn adam_arms<C: Real, P: Store<C>, S: Store<C>>(
    p: &mut [P],
    g: &[P],
    m: &mut [S],
    v: &mut [S],
    vmax: &mut [S],
    bits: &Bits,
    c: &Consts<C>,
) {
    let ams = !vmax.is_empty();
    match (c.coupled, c.moments.low_weight, ams) {
        (false, true, false) => adam_loop::<C, P, S, false, true, false>(p, g, m, v, vmax, bits, c),
        (false, true, true) => adam_loop::<C, P, S, false, true, true>(p, g, m, v, vmax, bits, c),
        (false, false, false) => {
            adam_loop::<C, P, S, false, false, false>(p, g, m, v, vmax, bits, c)
        }
        (false, false, true) => adam_loop::<C, P, S, false, false, true>(p, g, m, v, vmax, bits, c),
        (true, true, false) => adam_loop::<C, P, S, true, true, false>(p, g, m, v, vmax, bits, c),
        (true, true, true) => adam_loop::<C, P, S, true, true, true>(p, g, m, v, vmax, bits, c),
        (true, false, false) => adam_loop::<C, P, S, true, false, false>(p, g, m, v, vmax, bits, c),
        (true, false, true) => adam_loop::<C, P, S, true, false, true>(p, g, m, v, vmax, bits, c),
    }
}

/// One Adam step over tensors whose moments are 8-bit (`first` the signed codes of
/// `exp_avg`, `second` the unsigned codes of `exp_avg_sq`), in place; AMSGrad is not offered.
pub fn adam_8bit(tensors: Vec<Tensor8<'_, f32>>, h: &AdamArgs) {
    let c = Consts::<f32>::new(h);
    // p read and written, g read: 4 bytes each; two codes read and written: 1 byte each
    for_each_chunk(tensors, 16, |t| adam_8bit_slices(t, &c));
}

crate::simd! {
    fn adam_8bit_slices<'a>(t: Tensor8<'a, f32>, c: &Consts<f32>) {
        let Tensor8 { p, g, first, first_max, second, second_max } = t;
        let mut state = [
            Quantized { codes: first, absmax: first_max.0 },
            Quantized::second(second, second_max),
        ];
        let books = [Codebook::signed(), Codebook::unsigned()];
        by_block(p.len(), &mut state, books, |start, [m, v], len| {
            let (p, g) = (&mut p[start..start + len], &g[start..start + len]);
            let (m, v) = (&mut m[..len], &mut v[..len]);
            match (c.coupled, c.moments.low_weight) {
                (false, true) => adam_loop::<f32, f32, f32, false, true, false>(p, g, m, v, &mut [], &Bits::NONE, c),
                (false, false) => adam_loop::<f32, f32, f32, false, false, false>(p, g, m, v, &mut [], &Bits::NONE, c),
                (true, true) => adam_loop::<f32, f32, f32, true, true, false>(p, g, m, v, &mut [], &Bits::NONE, c),
                (true, false) => adam_loop::<f32, f32, f32, true, false, false>(p, g, m, v, &mut [], &Bits::NONE, c),
            }
        });
    }
}

#[inline(always)]
fn adam_loop<
    C: Real,
    P: Store<C>,
    S: Store<C>,
    const COUPLED: bool,
    const LOW_WEIGHT: bool,
    const AMSGRAD: bool,
>(
    p: &mut [P],
    g: &[P],
    m: &mut [S],
    v: &mut [S],
    vmax: &mut [S],
    bits: &Bits,
    c: &Consts<C>,
) {
    let n = p.len();
    let r = [0, 1, 2].map(|k| bits.slot::<C, S>(k, n));
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    let vmax = if AMSGRAD { &mut vmax[..n] } else { vmax };
    let c = *c;
    for i in 0..n {
        let mut pi = p[i].load();
        let gi = if COUPLED {
            g[i].load() * c.sign + c.l2 * pi
        } else {
            g[i].load() * c.sign
        };
        if !COUPLED {
            pi = pi * c.decay;
        }
        let (mi, mut vi) = moments::<C, LOW_WEIGHT>(gi, m[i].load(), v[i].load(), &c.moments);
        m[i] = S::store_drawn(mi, S::bit(r[0], i));
        v[i] = S::store_drawn(vi, S::bit(r[1], i));
        if AMSGRAD {
            vi = vmax[i].load().nan_max(vi);
            vmax[i] = S::store_drawn(vi, S::bit(r[2], i));
        }
        let denom = vi.sqrt() / c.bc2_sqrt + c.eps;
        // addcdiv's `self + value * t1 / t2`, evaluated left to right as ATen does
        p[i] = P::store(pi + (c.neg_step_size * mi) / denom);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    fn hyper(step: u64) -> AdamArgs {
        AdamArgs {
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            maximize: false,
            step,
        }
    }

    /// One step of a single tensor (float32/float64 or bfloat16 storage, as `adam` takes).
    fn step<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        m: &mut [S],
        v: &mut [S],
        vmax: Option<&mut [S]>,
        h: &AdamArgs,
    ) {
        adam(
            vec![AdamTensor {
                p,
                g,
                m,
                v,
                vmax,
                draws: Draws::NEAREST,
            }],
            h,
        );
    }

    #[test]
    fn first_step_moves_each_weight_by_lr_against_the_gradient_sign() {
        // At t = 1, m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps).
        let (mut p, g) = (vec![1.0f64, -2.0, 0.5], vec![0.3, -4.0, 1e-3]);
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        step(&mut p, &g, &mut m, &mut v, None, &hyper(1));
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
        let h = AdamArgs {
            learning_rate: 0.1,
            weight_decay: 0.5,
            decoupled: true,
            ..hyper(1)
        };
        step(&mut p, &g, &mut m, &mut v, None, &h);
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
        let h = AdamArgs {
            learning_rate: lr,
            weight_decay: wd,
            decoupled: true,
            epsilon: eps,
            ..hyper(1)
        };
        step(&mut p, &g, &mut m, &mut v, None, &h);
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
        step(&mut p, &g, &mut m, &mut v, Some(&mut vmax), &hyper(1));
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
                    draws: Draws::NEAREST,
                };
                let h = AdamArgs {
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
                            draws: Draws::NEAREST,
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

    /// Values exactly representable in bfloat16, so that every storage starts equal.
    fn bf16_values(n: usize, scale: f32) -> Vec<f32> {
        use crate::runtime::bf16::{bf16_from_f32, f32_from_bf16};
        (0..n)
            .map(|i| f32_from_bf16(bf16_from_f32(((i as f32) * 0.7).sin() * scale)))
            .collect()
    }

    #[test]
    fn bf16_storage_rounds_what_the_float32_step_computes() {
        use crate::runtime::bf16::bf16_from_f32;
        let n = 67;
        let (p0, g) = (bf16_values(n, 2.0), bf16_values(n + 3, 0.5)[3..].to_vec());
        let (m0, v0) = (
            bf16_values(n, 0.1),
            bf16_values(n, 0.3)
                .iter()
                .map(|x| x.abs())
                .collect::<Vec<_>>(),
        );
        let bits = |x: &[f32]| x.iter().map(|&y| bf16_from_f32(y)).collect::<Vec<u16>>();
        for (weight_decay, decoupled, ams) in
            [(0.0, false, false), (0.1, false, true), (0.1, true, false)]
        {
            let h = AdamArgs {
                learning_rate: 0.01,
                weight_decay,
                decoupled,
                ..hyper(3)
            };
            // float32 throughout
            let (mut p, mut m, mut v, mut x) = (p0.clone(), m0.clone(), v0.clone(), v0.clone());
            step(&mut p, &g, &mut m, &mut v, ams.then_some(&mut x[..]), &h);
            // float32 params, bfloat16 state: the same params, the state rounded
            let (mut p2, mut m2, mut v2, mut x2) = (p0.clone(), bits(&m0), bits(&v0), bits(&v0));
            step(
                &mut p2,
                &g,
                &mut m2,
                &mut v2,
                ams.then_some(&mut x2[..]),
                &h,
            );
            assert_eq!(p2, p);
            assert_eq!((m2, v2), (bits(&m), bits(&v)));
            if ams {
                assert_eq!(x2, bits(&x));
            }
            // all bfloat16: the params rounded too
            let (mut p3, g3, mut m3, mut v3, mut x3) =
                (bits(&p0), bits(&g), bits(&m0), bits(&v0), bits(&v0));
            step(
                &mut p3,
                &g3,
                &mut m3,
                &mut v3,
                ams.then_some(&mut x3[..]),
                &h,
            );
            assert_eq!((p3, m3, v3), (bits(&p), bits(&m), bits(&v)));
        }
    }

    #[test]
    fn bf16_one_thread_equals_many_threads_bitwise() {
        let n = PARALLEL_MIN_BYTES / 14 + 2 * CHUNK + 5;
        let g: Vec<u16> = (0..n)
            .map(|i| crate::runtime::bf16::bf16_from_f32(((i * 7919) % 1000) as f32 / 500.0 - 1.0))
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let (mut p, mut m, mut v) = (vec![0x3f00u16; n], vec![0u16; n], vec![0u16; n]);
            for t in 1..=3 {
                step(&mut p, &g, &mut m, &mut v, None, &hyper(t));
            }
            (p, m, v)
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn eight_bit_state_one_thread_equals_many_threads_bitwise_and_tracks_float32() {
        use crate::runtime::quant8::{blocks, Maxima};
        let n = PARALLEL_MIN_BYTES / 16 + 2 * CHUNK + 300;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let (mut p, mut m, mut v) = (vec![0.5f32; n], vec![0u8; n], vec![0u8; n]);
            let (mut am, mut av) = (vec![0.0f32; blocks(n)], vec![0.0f32; blocks(n)]);
            for step in 1..=3 {
                let t = Tensor8 {
                    p: &mut p,
                    g: &g,
                    first: &mut m,
                    first_max: Maxima(&mut am),
                    second: Some(&mut v),
                    second_max: Some(Maxima(&mut av)),
                };
                adam_8bit(vec![t], &hyper(step));
            }
            (p, m, v, am, av)
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
        // Float32 state: the parameters differ by the quantization of the moments only, less
        // than one step's size (lr) in three steps.
        let (mut p, mut m, mut v) = (vec![0.5f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        for t in 1..=3 {
            step(&mut p, &g, &mut m, &mut v, None, &hyper(t));
        }
        let worst = one
            .0
            .iter()
            .zip(&p)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst > 0.0 && worst < 1e-3, "{worst}");
        let empty = Tensor8 {
            p: &mut [],
            g: &[],
            first: &mut [],
            first_max: Maxima(&mut []),
            second: Some(&mut []),
            second_max: Some(Maxima(&mut [])),
        };
        adam_8bit(vec![empty], &hyper(1));
    }
}
