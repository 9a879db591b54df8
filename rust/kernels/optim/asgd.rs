//! ASGD (averaged SGD), fused into one pass over memory.
//!
//! PyTorch's single-tensor CPU ASGD per element: `p = p * (1 - lambd * eta)`,
//! `p = p + (-eta) * g`, then `ax = ax + (p - ax) * mu`, or `ax = p` when `mu` is 1. `eta` and
//! `mu` are the step's scalars, the same for every tensor (the caller keeps them and forms
//! the next ones); they are rounded to the element type here, as torch keeps them.

use crate::runtime::pool::for_each_chunk;
use crate::Real;

#[derive(Clone, Copy, Debug)]
pub struct ASGDArgs {
    pub lambd: f64,
    pub weight_decay: f64,
    pub maximize: bool,
    /// This step's `eta` and `mu`, before rounding.
    pub eta: f64,
    pub mu: f64,
}

crate::bundle! {
    /// One tensor: parameters, gradients and the average, all of one length.
    pub struct ASGDTensor<'a, T> {
        pub p: &'a mut [T],
        pub g: &'a [T],
        pub ax: &'a mut [T],
    }
}

/// The per-element constants, rounded once to `T`.
#[derive(Clone, Copy)]
struct Consts<T> {
    /// -1 to maximize, 1 otherwise.
    sign: T,
    l2: T,
    decay: T,
    neg_eta: T,
    mu: T,
}

/// One ASGD step over every tensor, in place.
pub fn asgd<T: Real>(tensors: Vec<ASGDTensor<'_, T>>, h: &ASGDArgs) {
    // torch reads eta back from its tensor as a float64 (`eta.item()`) before using it
    let eta = T::of(h.eta).to_f64();
    let c = Consts {
        sign: T::of(if h.maximize { -1.0 } else { 1.0 }),
        l2: T::of(h.weight_decay),
        decay: T::of(1.0 - h.lambd * eta),
        neg_eta: T::of(-eta),
        mu: T::of(h.mu),
    };
    let (coupled, average) = (h.weight_decay != 0.0, c.mu != T::ONE);
    // p read and written, g read, ax written (and read when averaging)
    let bytes = (if average { 5 } else { 4 }) * size_of::<T>();
    for_each_chunk(tensors, bytes, |t| {
        asgd_slices(t.p, t.g, t.ax, &c, coupled, average)
    });
}

crate::simd! {
    fn asgd_slices<T: Real>(p: &mut [T], g: &[T], ax: &mut [T], c: &Consts<T>, coupled: bool, average: bool) {
        match (coupled, average) {
            (false, false) => asgd_loop::<T, false, false>(p, g, ax, c),
            (false, true) => asgd_loop::<T, false, true>(p, g, ax, c),
            (true, false) => asgd_loop::<T, true, false>(p, g, ax, c),
            (true, true) => asgd_loop::<T, true, true>(p, g, ax, c),
        }
    }
}

#[inline(always)]
fn asgd_loop<T: Real, const COUPLED: bool, const AVERAGE: bool>(
    p: &mut [T],
    g: &[T],
    ax: &mut [T],
    c: &Consts<T>,
) {
    let n = p.len();
    let (g, ax) = (&g[..n], &mut ax[..n]);
    let c = *c;
    for i in 0..n {
        let mut pi = p[i];
        let mut gi = g[i] * c.sign;
        if COUPLED {
            gi = gi + c.l2 * pi;
        }
        pi = pi * c.decay;
        pi = pi + c.neg_eta * gi;
        p[i] = pi;
        ax[i] = if AVERAGE {
            ax[i] + (pi - ax[i]) * c.mu
        } else {
            pi
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    fn args(eta: f64, mu: f64) -> ASGDArgs {
        ASGDArgs {
            lambd: 1e-2,
            weight_decay: 0.0,
            maximize: false,
            eta,
            mu,
        }
    }

    fn step<T: Real>(p: &mut [T], g: &[T], ax: &mut [T], h: &ASGDArgs) {
        asgd(vec![ASGDTensor { p, g, ax }], h);
    }

    #[test]
    fn decays_steps_and_averages() {
        let (mut p, mut ax) = (vec![2.0f64, -1.0], vec![1.0, 1.0]);
        let g = [0.5, 4.0];
        // mu = 1: the average is the new point
        step(&mut p, &g, &mut ax, &args(0.1, 1.0));
        let want = [2.0 * (1.0 - 1e-3) - 0.1 * 0.5, -(1.0 - 1e-3) - 0.1 * 4.0];
        for i in 0..2 {
            assert!((p[i] - want[i]).abs() < 1e-14);
        }
        assert_eq!(ax, p);
        // mu = 1/4 with L2 decay and maximize
        let h = ASGDArgs {
            weight_decay: 0.5,
            maximize: true,
            ..args(0.1, 0.25)
        };
        let (p0, ax0) = (p.clone(), ax.clone());
        let mut ax2 = vec![0.0, 0.0];
        step(&mut p, &g, &mut ax2, &h);
        for i in 0..2 {
            let want = p0[i] * (1.0 - 1e-3) - 0.1 * (-g[i] + 0.5 * p0[i]);
            assert!((p[i] - want).abs() < 1e-14);
            assert!((ax2[i] - 0.25 * p[i]).abs() < 1e-14);
        }
        assert_ne!(ax0, ax2);
    }

    #[test]
    fn eta_is_rounded_to_float32_before_use() {
        // 0.1 is not a float32: the decay uses f32(0.1) read back as a float64
        let (mut p, mut ax) = (vec![1.0f32], vec![0.0f32]);
        step(&mut p, &[0.0], &mut ax, &args(0.1, 1.0));
        assert_eq!(p[0], (1.0 - 1e-2 * (0.1f32 as f64)) as f32);
    }

    #[test]
    fn empty_input_is_a_no_op() {
        let (mut p, mut ax) = (Vec::<f32>::new(), vec![]);
        step(&mut p, &[], &mut ax, &args(0.1, 0.5));
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let n = PARALLEL_MIN_BYTES / 20 + 2 * CHUNK + 5;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let (mut p, mut ax) = (vec![0.5f32; n], vec![0.0; n]);
            for mu in [1.0, 0.5, 1.0 / 3.0] {
                let h = ASGDArgs {
                    weight_decay: 0.01,
                    ..args(0.01, mu)
                };
                step(&mut p, &g, &mut ax, &h);
            }
            (p, ax)
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(4));
    }
}
