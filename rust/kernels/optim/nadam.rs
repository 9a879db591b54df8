//! NAdam (with decoupled weight decay), fused into one pass over memory.
//!
//! The arithmetic is PyTorch's single-tensor CPU NAdam operation by operation (see
//! `gradfast.reference.NAdam`): Adam's moment update, `denom = sqrt(v / (1 - beta2^t)) + eps`,
//! then two `p.addcdiv_(.., denom, c)`, of `g` and of `m`, whose coefficients are formed in
//! float64 from the momentum schedule `mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))`
//! and the running product `mu_product` (the caller's: it is rounded as torch keeps it). State
//! may be stored as bfloat16, as in [`super::adam`]; the parameter update uses the moments
//! before they are rounded, and the parameter is rounded once, after both additions. bfloat16
//! state may be rounded stochastically ([`Draws`]): `exp_avg` and `exp_avg_sq` are its slots 0
//! and 1.

use super::adam::{moments, Moments};
use super::gradient::{with_flags, Gradient};
use crate::runtime::pool::for_each_chunk;
use crate::runtime::store::{with_bits, Bits, Draws};
use crate::{Real, Store};

/// Hyper-parameters of one step; `step` is the 1-based step number and `mu_product` the
/// product `mu_1 * ... * mu_step`, this step's factor included.
#[derive(Clone, Copy, Debug)]
pub struct NAdamArgs {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    pub momentum_decay: f64,
    pub decoupled: bool,
    pub maximize: bool,
    pub step: u64,
    pub mu_product: f64,
}

impl NAdamArgs {
    /// The momentum coefficient `mu_t` of step `t`, as torch forms it in float64.
    pub fn mu(&self, t: u64) -> f64 {
        self.beta1 * (1.0 - 0.5 * 0.96f64.powf(t as f64 * self.momentum_decay))
    }

    /// `mu_product` after step `step` from `previous`, rounded as torch keeps it: a float64
    /// product for float64 params, else float32 (`float32(previous * float32(mu_t))`).
    pub fn next_mu_product(&self, previous: f64, float64: bool) -> f64 {
        let mu = self.mu(self.step);
        if float64 {
            previous * mu
        } else {
            ((previous as f32) * (mu as f32)) as f64
        }
    }
}

crate::bundle! {
    /// One tensor: parameters and gradients stored as `P`, state as `S`, all of one length.
    pub struct NAdamTensor<'a, P, S> {
        pub p: &'a mut [P],
        pub g: &'a [P],
        pub exp_avg: &'a mut [S],
        pub exp_avg_sq: &'a mut [S],
        /// How the moments (slots 0 and 1) are rounded when stored.
        pub draws: Draws,
    }
}

#[derive(Clone, Copy)]
struct Consts<T> {
    /// `1 - lr * weight_decay` with decoupled decay, 1 otherwise.
    decay: T,
    grad: Gradient<T>,
    moments: Moments<T>,
    bias_correction2: T,
    epsilon: T,
    /// the coefficients of `g` and of `m`
    c_grad: T,
    c_avg: T,
}

impl<T: Real> Consts<T> {
    fn new(a: &NAdamArgs) -> Self {
        let lr = a.learning_rate;
        let decoupled = a.decoupled && a.weight_decay != 0.0;
        let (mu, mu_next) = (a.mu(a.step), a.mu(a.step + 1));
        Consts {
            decay: T::of(if decoupled {
                1.0 - lr * a.weight_decay
            } else {
                1.0
            }),
            grad: Gradient::new(a.maximize, if a.decoupled { 0.0 } else { a.weight_decay }),
            moments: Moments::new(a.beta1, a.beta2),
            bias_correction2: T::of(1.0 - a.beta2.powf(a.step as f64)),
            epsilon: T::of(a.epsilon),
            c_grad: T::of(-lr * (1.0 - mu) / (1.0 - a.mu_product)),
            c_avg: T::of((-lr * mu_next) / (1.0 - a.mu_product * mu_next)),
        }
    }
}

/// One NAdam step over every tensor, in place, computed in `C`.
pub fn nadam<C: Real, P: Store<C>, S: Store<C>>(
    tensors: Vec<NAdamTensor<'_, P, S>>,
    args: &NAdamArgs,
) {
    let c = Consts::<C>::new(args);
    // p, exp_avg and exp_avg_sq read and written, g read
    let bytes = 3 * size_of::<P>() + 4 * size_of::<S>();
    for_each_chunk(tensors, bytes, |t| {
        with_bits(
            t,
            |t| t.draws,
            2,
            |t, bits| nadam_slices(t.p, t.g, t.exp_avg, t.exp_avg_sq, bits, &c),
        )
    });
}

crate::simd! {
    fn nadam_slices<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        m: &mut [S],
        v: &mut [S],
        bits: &Bits,
        c: &Consts<C>,
    ) {
        if bits.stochastic() {
            let (m, v) = (S::drawn(m), S::drawn(v));
            with_flags!(nadam_loop::<C, P, S::Drawn>(p, g, m, v, bits, c) [c.grad.l2, c.moments.low_weight])
        } else {
            with_flags!(nadam_loop::<C, P, S>(p, g, m, v, bits, c) [c.grad.l2, c.moments.low_weight])
        }
    }
}

#[inline(always)]
fn nadam_loop<C: Real, P: Store<C>, S: Store<C>, const L2: bool, const LOW_WEIGHT: bool>(
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
        // with L2 decay `decay` is 1 and the product is skipped; otherwise it is exact at 1
        let pi = if L2 {
            p[i].load()
        } else {
            p[i].load() * c.decay
        };
        let gi = c.grad.of::<L2>(g[i].load(), pi);
        let (mi, vi) = moments::<C, LOW_WEIGHT>(gi, m[i].load(), v[i].load(), &c.moments);
        m[i] = S::store_drawn(mi, S::bit(r[0], i));
        v[i] = S::store_drawn(vi, S::bit(r[1], i));
        let denom = (vi / c.bias_correction2).sqrt() + c.epsilon;
        // two addcdiv's, each `self + value * t1 / t2` left to right
        let pi = pi + (c.c_grad * gi) / denom;
        p[i] = P::store(pi + (c.c_avg * mi) / denom);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::gradient::testing::{
        assert_any_thread_count_agrees, bf16_bits, pooled_gradients,
    };

    fn args(step: u64, mu_product: f64, decoupled: bool) -> NAdamArgs {
        NAdamArgs {
            learning_rate: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.1,
            momentum_decay: 4e-3,
            decoupled,
            maximize: true,
            step,
            mu_product,
        }
    }

    fn step<C: Real, P: Store<C>, S: Store<C>>(
        p: &mut [P],
        g: &[P],
        m: &mut [S],
        v: &mut [S],
        a: &NAdamArgs,
    ) {
        nadam(
            vec![NAdamTensor {
                p,
                g,
                exp_avg: m,
                exp_avg_sq: v,
                draws: Draws::NEAREST,
            }],
            a,
        );
    }

    #[test]
    fn three_steps_against_the_formula() {
        // Dozat's update with torch's schedule, written out in float64
        let (p0, g) = ([1.0f64, -2.0, 0.5], [0.3f64, -4.0, 1e-3]);
        for decoupled in [false, true] {
            let (mut p, mut m, mut v) = (p0.to_vec(), vec![0.0; 3], vec![0.0; 3]);
            let mut prod = 1.0;
            for t in 1..=3 {
                prod *= args(t, 0.0, decoupled).mu(t);
                step(&mut p, &g, &mut m, &mut v, &args(t, prod, decoupled));
            }
            for i in 0..3 {
                let (mut q, mut mm, mut vv, mut pr) = (p0[i], 0.0f64, 0.0f64, 1.0f64);
                for t in 1..=3u64 {
                    let mu_of = |s: u64| 0.9 * (1.0 - 0.5 * 0.96f64.powf(s as f64 * 4e-3));
                    let (mu, mu_next) = (mu_of(t), mu_of(t + 1));
                    pr *= mu;
                    let mut gi = -g[i];
                    if decoupled {
                        q *= 1.0 - 0.01 * 0.1;
                    } else {
                        gi += 0.1 * q;
                    }
                    mm = 0.9 * mm + 0.1 * gi;
                    vv = 0.999 * vv + 0.001 * gi * gi;
                    let denom = (vv / (1.0 - 0.999f64.powi(t as i32))).sqrt() + 1e-8;
                    q -= 0.01 * (1.0 - mu) / (1.0 - pr) * gi / denom;
                    q -= 0.01 * mu_next / (1.0 - pr * mu_next) * mm / denom;
                }
                assert!((p[i] - q).abs() < 1e-13, "{decoupled}: {} vs {q}", p[i]);
            }
        }
    }

    #[test]
    fn float32_mu_product_rounds_each_factor_and_each_product() {
        let a = args(3, 0.0, false);
        let mu = a.mu(3);
        assert_eq!(a.next_mu_product(0.7, true), 0.7 * mu);
        let f32_product = a.next_mu_product(0.7, false);
        assert_eq!(f32_product, (0.7f32 * mu as f32) as f64);
        assert_ne!(f32_product, 0.7 * mu);
    }

    #[test]
    fn empty_input_is_a_no_op() {
        nadam::<f32, f32, f32>(vec![], &args(1, 0.9, false));
        step::<f32, f32, f32>(&mut [], &[], &mut [], &mut [], &args(1, 0.9, false));
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let g = pooled_gradients(28);
        assert_any_thread_count_agrees(|| {
            let n = g.len();
            let (mut p, mut m, mut v) = (vec![0.5f32; n], vec![0.0f32; n], vec![0.0f32; n]);
            for t in 1..=3 {
                let a = args(t, 0.9f64.powi(t as i32), true);
                step(&mut p, &g, &mut m, &mut v, &a);
            }
            (p, m, v)
        });
    }

    #[test]
    fn bf16_state_is_rounded_after_the_step_uses_it() {
        let (p0, g) = (vec![1.0f32, -0.5, 0.25], vec![0.3f32, 0.7, -0.1]);
        let a = args(1, 0.45, false);
        let (mut p, mut m, mut v) = (p0.clone(), vec![0.0f32; 3], vec![0.0f32; 3]);
        step(&mut p, &g, &mut m, &mut v, &a);
        let (mut p2, mut m2, mut v2) = (p0.clone(), vec![0u16; 3], vec![0u16; 3]);
        step(&mut p2, &g, &mut m2, &mut v2, &a);
        assert_eq!(p2, p);
        assert_eq!((m2, v2), (bf16_bits(&m), bf16_bits(&v)));
    }
}
