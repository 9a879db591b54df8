//! RAdam (with decoupled weight decay), fused into one pass over memory.
//!
//! The arithmetic is PyTorch's single-tensor CPU RAdam operation by operation (see the
//! reference's docstring): Adam's moments (shared with [`super::adam`]), then, while the
//! approximated SMA length `rho_t` is at most 5, `p - (m / bc1) * lr`, and after that
//! `p - (((m / bc1) * lr) * ((1 / (sqrt(v) + eps)) * sqrt(bc2))) * rect`. The switch and
//! `rect` depend only on the step, so each step runs one branch-free loop.
//!
//! Parameters and gradients (`P`) and state (`S`) may be stored as bfloat16, as in Adam.
//! bfloat16 state may be rounded stochastically ([`Draws`]): `exp_avg` and `exp_avg_sq` are its
//! slots 0 and 1.

use super::adam::{moments, Moments};
use super::gradient::with_flags;
use crate::runtime::pool::for_each_chunk;
use crate::runtime::store::{with_bits, Bits, Draws};
use crate::{Real, Store};

/// Hyper-parameters of one step; `step` is the 1-based step number.
#[derive(Clone, Copy, Debug)]
pub struct RAdamArgs {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
    pub maximize: bool,
    pub step: u64,
}

crate::bundle! {
    /// One tensor: parameters and gradients stored as `P`, the moments as `S`, all of one length.
    pub struct RAdamTensor<'a, P, S> {
        pub p: &'a mut [P],
        pub g: &'a [P],
        pub exp_avg: &'a mut [S],
        pub exp_avg_sq: &'a mut [S],
        /// How the moments (slots 0 and 1) are rounded when stored.
        pub draws: Draws,
    }
}

/// `(rho_t, rect)` at step `t`, in float64 as torch forms them (`rect` is only used, and only
/// real, when `rho_t > 5`).
pub fn radam_scalars(beta2: f64, step: u64) -> (f64, f64) {
    let t = step as f64;
    let bc2 = 1.0 - beta2.powf(t);
    let rho_inf = 2.0 / (1.0 - beta2) - 1.0;
    let rho_t = rho_inf - 2.0 * t * beta2.powf(t) / bc2;
    if rho_t <= 5.0 {
        return (rho_t, 0.0);
    }
    let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
        / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
        .sqrt();
    (rho_t, rect)
}

/// The per-element constants of one step, rounded once to `T`.
#[derive(Clone, Copy)]
struct Consts<T> {
    /// -1 to maximize, 1 otherwise.
    sign: T,
    /// `1 - lr * weight_decay` when decoupled, 1 otherwise.
    decay: T,
    /// L2 decay added to the gradient; used only when `coupled`.
    l2: T,
    coupled: bool,
    rectified: bool,
    moments: Moments<T>,
    bc1: T,
    lr: T,
    eps: T,
    bc2_sqrt: T,
    rect: T,
}

impl<T: Real> Consts<T> {
    fn new(h: &RAdamArgs) -> Self {
        let t = h.step as f64;
        let (rho_t, rect) = radam_scalars(h.beta2, h.step);
        let decoupled = h.decoupled && h.weight_decay != 0.0;
        Consts {
            sign: T::of(if h.maximize { -1.0 } else { 1.0 }),
            decay: T::of(if decoupled {
                1.0 - h.learning_rate * h.weight_decay
            } else {
                1.0
            }),
            l2: T::of(h.weight_decay),
            coupled: !h.decoupled && h.weight_decay != 0.0,
            rectified: rho_t > 5.0,
            moments: Moments::new(h.beta1, h.beta2),
            bc1: T::of(1.0 - h.beta1.powf(t)),
            lr: T::of(h.learning_rate),
            eps: T::of(h.epsilon),
            bc2_sqrt: T::of((1.0 - h.beta2.powf(t)).sqrt()),
            rect: T::of(rect),
        }
    }
}

/// One RAdam step over every tensor, in place, computed in `C`.
pub fn radam<C: Real, P: Store<C>, S: Store<C>>(
    tensors: Vec<RAdamTensor<'_, P, S>>,
    h: &RAdamArgs,
) {
    let c = Consts::<C>::new(h);
    // p read and written, g read; both moments read and written
    let bytes = 3 * size_of::<P>() + 4 * size_of::<S>();
    for_each_chunk(tensors, bytes, |t| {
        with_bits(
            t,
            |t| t.draws,
            2,
            |t, bits| radam_slices(t.p, t.g, t.exp_avg, t.exp_avg_sq, bits, &c),
        )
    });
}

crate::simd! {
    /// The branches are constants of the step; as const parameters (and the rounding as the
    /// state's type) they leave the loop free of branches.
    fn radam_slices<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        m: &mut [S],
        v: &mut [S],
        bits: &Bits,
        c: &Consts<C>,
    ) {
        if bits.stochastic() {
            let (m, v) = (S::drawn(m), S::drawn(v));
            with_flags!(radam_loop::<C, P, S::Drawn>(p, g, m, v, bits, c) [c.coupled, c.moments.low_weight, c.rectified])
        } else {
            with_flags!(radam_loop::<C, P, S>(p, g, m, v, bits, c) [c.coupled, c.moments.low_weight, c.rectified])
        }
    }
}

#[inline(always)]
fn radam_loop<
    C: Real,
    P: Store<C>,
    S: Store<C>,
    const COUPLED: bool,
    const LOW_WEIGHT: bool,
    const RECTIFIED: bool,
>(
    p: &mut [P],
    g: &[P],
    m: &mut [S],
    v: &mut [S],
    bits: &Bits,
    c: &Consts<C>,
) {
    let n = p.len();
    let r = [0, 1].map(|k| bits.slot::<C, S>(k, n));
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    let c = *c;
    for i in 0..n {
        let mut pi = p[i].load();
        let mut gi = g[i].load() * c.sign;
        if COUPLED {
            gi = gi + c.l2 * pi;
        } else {
            pi = pi * c.decay;
        }
        let (mi, vi) = moments::<C, LOW_WEIGHT>(gi, m[i].load(), v[i].load(), &c.moments);
        m[i] = S::store_drawn(mi, S::bit(r[0], i));
        v[i] = S::store_drawn(vi, S::bit(r[1], i));
        let a = (mi / c.bc1) * c.lr;
        let u = if RECTIFIED {
            (a * ((C::ONE / (vi.sqrt() + c.eps)) * c.bc2_sqrt)) * c.rect
        } else {
            a
        };
        p[i] = P::store(pi - u);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bf16::{bf16_from_f32, f32_from_bf16};
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    fn args(step: u64) -> RAdamArgs {
        RAdamArgs {
            learning_rate: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            maximize: false,
            step,
        }
    }

    fn step<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        m: &mut [S],
        v: &mut [S],
        h: &RAdamArgs,
    ) {
        radam(
            vec![RAdamTensor {
                p,
                g,
                exp_avg: m,
                exp_avg_sq: v,
                draws: Draws::NEAREST,
            }],
            h,
        );
    }

    /// RAdam from the paper in float64, written out per element (no shared code).
    fn paper(p: &mut [f64], gs: &[Vec<f64>], h: &RAdamArgs) {
        let (mut m, mut v) = (vec![0.0; p.len()], vec![0.0; p.len()]);
        let rho_inf = 2.0 / (1.0 - h.beta2) - 1.0;
        for (k, g) in gs.iter().enumerate() {
            let t = (k + 1) as i32;
            for i in 0..p.len() {
                let mut gi = if h.maximize { -g[i] } else { g[i] };
                if h.decoupled {
                    p[i] *= 1.0 - h.learning_rate * h.weight_decay;
                } else {
                    gi += h.weight_decay * p[i];
                }
                m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * gi;
                v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * gi * gi;
                let m_hat = m[i] / (1.0 - h.beta1.powi(t));
                let b2t = h.beta2.powi(t);
                let rho_t = rho_inf - 2.0 * t as f64 * b2t / (1.0 - b2t);
                if rho_t > 5.0 {
                    let l = (1.0 - b2t).sqrt() / (v[i].sqrt() + h.epsilon);
                    let r = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                        / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                        .sqrt();
                    p[i] -= h.learning_rate * m_hat * r * l;
                } else {
                    p[i] -= h.learning_rate * m_hat;
                }
            }
        }
    }

    #[test]
    fn matches_the_paper_through_the_switch_to_rectified_steps() {
        // beta2 = 0.9: rho_inf = 19, rho_t passes 5 at step 6
        assert!(radam_scalars(0.9, 5).0 <= 5.0 && radam_scalars(0.9, 6).0 > 5.0);
        let n = 11;
        let gs: Vec<Vec<f64>> = (0..9)
            .map(|k| {
                (0..n)
                    .map(|i| ((i * 7 + k * 3) as f64 * 0.37).sin())
                    .collect()
            })
            .collect();
        for (wd, decoupled, maximize) in
            [(0.0, false, false), (0.1, false, true), (0.1, true, false)]
        {
            let h = RAdamArgs {
                beta2: 0.9,
                weight_decay: wd,
                decoupled,
                maximize,
                ..args(0)
            };
            let p0: Vec<f64> = (0..n).map(|i| i as f64 * 0.1 - 0.5).collect();
            let mut want = p0.clone();
            paper(&mut want, &gs, &h);
            let (mut p, mut m, mut v) = (p0.clone(), vec![0.0; n], vec![0.0; n]);
            for (k, g) in gs.iter().enumerate() {
                step(
                    &mut p,
                    g,
                    &mut m,
                    &mut v,
                    &RAdamArgs {
                        step: k as u64 + 1,
                        ..h
                    },
                );
            }
            for i in 0..n {
                assert!((p[i] - want[i]).abs() < 1e-12, "{} vs {}", p[i], want[i]);
            }
        }
    }

    #[test]
    fn empty_input_is_a_no_op() {
        let (mut p, mut m, mut v) = (Vec::<f32>::new(), Vec::<f32>::new(), Vec::<f32>::new());
        step(&mut p, &[], &mut m, &mut v, &args(1));
        radam::<f64, f64, f64>(vec![], &args(1));
    }

    #[test]
    fn bf16_state_rounds_what_the_float32_step_computes() {
        let n = 37;
        let q = |x: f32| f32_from_bf16(bf16_from_f32(x));
        let p0: Vec<f32> = (0..n).map(|i| q((i as f32 * 0.3).cos())).collect();
        let g: Vec<f32> = (0..n).map(|i| q((i as f32 * 0.7).sin())).collect();
        let h = args(7);
        let (mut p, mut m, mut v) = (p0.clone(), vec![0.1f32; n], vec![0.2f32; n]);
        step(&mut p, &g, &mut m, &mut v, &h);
        let (mut p2, mut m2, mut v2) = (
            p0.clone(),
            vec![bf16_from_f32(0.1); n],
            vec![bf16_from_f32(0.2); n],
        );
        // the float32 run starts from the bfloat16 values of 0.1 and 0.2
        let (mut p3, mut m3, mut v3) = (p0, vec![q(0.1); n], vec![q(0.2); n]);
        step(&mut p2, &g, &mut m2, &mut v2, &h);
        step(&mut p3, &g, &mut m3, &mut v3, &h);
        assert_eq!(p2, p3);
        let bits = |x: &[f32]| x.iter().map(|&y| bf16_from_f32(y)).collect::<Vec<u16>>();
        assert_eq!((m2, v2), (bits(&m3), bits(&v3)));
        assert_ne!(p, p3); // the state's rounding is seen
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let n = PARALLEL_MIN_BYTES / 28 + 2 * CHUNK + 5;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let (mut p, mut m, mut v) = (vec![0.5f32; n], vec![0.0; n], vec![0.0; n]);
            for t in [1, 2, 7] {
                let h = RAdamArgs {
                    weight_decay: 0.01,
                    beta2: 0.9,
                    ..args(t)
                };
                step(&mut p, &g, &mut m, &mut v, &h);
            }
            (p, m, v)
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(4));
    }
}
