//! Rprop, fused into one pass over memory.
//!
//! PyTorch's single-tensor CPU Rprop per element: `s = sign(g * prev)` (torch's sign: 0 for
//! zero and NaN), the step size times `etaplus`, `etaminus` or 1 for `s` positive, negative or
//! 0, clamped as `min(max(x, lo), hi)` (NaN passes); where the factor is `etaminus` the
//! gradient is zeroed for this step; `p = p + (-1 * sign(g)) * step_size`, `prev = g`. Every
//! choice is a select, so the loop vectorizes.

use crate::runtime::pool::for_each_chunk;
use crate::Real;

#[derive(Clone, Copy, Debug)]
pub struct RpropArgs {
    pub etaminus: f64,
    pub etaplus: f64,
    pub step_size_min: f64,
    pub step_size_max: f64,
    pub maximize: bool,
}

crate::bundle! {
    /// One tensor: parameters, gradients and both state slots, all of one length.
    pub struct RpropTensor<'a, T> {
        pub p: &'a mut [T],
        pub g: &'a [T],
        pub prev: &'a mut [T],
        pub step_size: &'a mut [T],
    }
}

/// The per-element constants, rounded once to `T`.
#[derive(Clone, Copy)]
struct Consts<T> {
    /// -1 to maximize, 1 otherwise.
    sign: T,
    minus: T,
    plus: T,
    lo: T,
    hi: T,
}

/// One Rprop step over every tensor, in place.
pub fn rprop<T: Real>(tensors: Vec<RpropTensor<'_, T>>, h: &RpropArgs) {
    let c = Consts {
        sign: T::of(if h.maximize { -1.0 } else { 1.0 }),
        minus: T::of(h.etaminus),
        plus: T::of(h.etaplus),
        lo: T::of(h.step_size_min),
        hi: T::of(h.step_size_max),
    };
    // p, prev and step_size read and written, g read
    for_each_chunk(tensors, 7 * size_of::<T>(), |t| {
        rprop_slices(t.p, t.g, t.prev, t.step_size, &c)
    });
}

/// torch's `sign`: 1, -1, or 0 for zero and NaN.
#[inline(always)]
fn sign<T: Real>(x: T) -> T {
    let pos = if x > T::ZERO { T::ONE } else { T::ZERO };
    let neg = if x < T::ZERO { T::ONE } else { T::ZERO };
    pos - neg
}

crate::simd! {
    fn rprop_slices<T: Real>(p: &mut [T], g: &[T], prev: &mut [T], size: &mut [T], c: &Consts<T>) {
        let n = p.len();
        let (g, prev, size) = (&g[..n], &mut prev[..n], &mut size[..n]);
        let c = *c;
        for i in 0..n {
            let gi = g[i] * c.sign;
            let s = sign(gi * prev[i]);
            let factor = if s > T::ZERO {
                c.plus
            } else if s < T::ZERO {
                c.minus
            } else {
                T::ONE
            };
            let x = size[i] * factor;
            let x = if x < c.lo { c.lo } else { x };
            let x = if x > c.hi { c.hi } else { x };
            let gi = if factor == c.minus { T::ZERO } else { gi };
            size[i] = x;
            prev[i] = gi;
            p[i] = p[i] + (T::of(-1.0) * sign(gi)) * x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    fn args() -> RpropArgs {
        RpropArgs {
            etaminus: 0.5,
            etaplus: 1.2,
            step_size_min: 1e-6,
            step_size_max: 50.0,
            maximize: false,
        }
    }

    fn step<T: Real>(p: &mut [T], g: &[T], prev: &mut [T], size: &mut [T], h: &RpropArgs) {
        rprop(
            vec![RpropTensor {
                p,
                g,
                prev,
                step_size: size,
            }],
            h,
        );
    }

    #[test]
    fn same_sign_grows_flip_shrinks_and_skips_zero_keeps() {
        // elements: same sign, flipped sign, no previous gradient, NaN gradient, clamped high
        let mut p = vec![1.0f64, 1.0, 1.0, 1.0, 1.0];
        let mut prev = vec![2.0, 2.0, 0.0, 1.0, 1.0];
        let mut size = vec![0.1, 0.1, 0.1, 0.1, 45.0];
        let g = vec![3.0, -3.0, -3.0, f64::NAN, 1.0];
        step(&mut p, &g, &mut prev, &mut size, &args());
        assert_eq!(&size[..4], &[0.1 * 1.2, 0.05, 0.1, 0.1]);
        assert_eq!(size[4], 50.0);
        assert_eq!(&p[..3], &[1.0 - 0.1 * 1.2, 1.0, 1.1]);
        assert_eq!((p[3], p[4]), (1.0, -49.0)); // sign(NaN) = 0: no move
        assert_eq!(&prev[..3], &[3.0, 0.0, -3.0]);
        assert!(prev[3].is_nan());
    }

    #[test]
    fn maximize_climbs_and_the_floor_holds() {
        let (mut p, mut prev, mut size) = (vec![0.0f32], vec![1.0f32], vec![1e-6f32]);
        let h = RpropArgs {
            maximize: true,
            ..args()
        };
        // -g * prev < 0: the step size halves, clamped to the floor, and p does not move; then
        // with no previous gradient p moves up the gradient
        step(&mut p, &[1.0], &mut prev, &mut size, &h);
        assert_eq!((p[0], prev[0], size[0]), (0.0, 0.0, 1e-6));
        step(&mut p, &[1.0], &mut prev, &mut size, &h);
        assert_eq!((p[0], prev[0]), (1e-6, -1.0));
    }

    #[test]
    fn empty_input_is_a_no_op() {
        let (mut p, mut prev, mut size) = (Vec::<f32>::new(), vec![], vec![]);
        step(&mut p, &[], &mut prev, &mut size, &args());
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let n = PARALLEL_MIN_BYTES / 28 + 2 * CHUNK + 5;
        let run = |threads| {
            set_num_threads(threads);
            let (mut p, mut prev, mut size) = (vec![0.5f32; n], vec![0.0; n], vec![0.01; n]);
            for k in 0..4 {
                let g: Vec<f32> = (0..n)
                    .map(|i| (((i + k) * 7919) % 1000) as f32 / 500.0 - 1.0)
                    .collect();
                step(&mut p, &g, &mut prev, &mut size, &args());
            }
            (p, prev, size)
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(4));
    }
}
