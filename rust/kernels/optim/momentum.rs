//! Momentum and Nesterov momentum with the seed's update rule:
//! `v = momentum * v - lr * g`, then `p += v` or, for Nesterov, `p += momentum * v - lr * g`.

use crate::pool::for_each_chunk;
use crate::Real;

#[derive(Clone, Copy, Debug)]
pub struct MomentumHyper {
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
}

crate::bundle! {
    /// One tensor: parameters, gradients and velocity, all of one length.
    pub struct MomentumTensor<'a, T> {
        pub p: &'a mut [T],
        pub g: &'a [T],
        pub v: &'a mut [T],
    }
}

/// One momentum step over every tensor, in place.
pub fn momentum<T: Real>(tensors: Vec<MomentumTensor<'_, T>>, h: &MomentumHyper) {
    let (lr, mu) = (T::of(h.lr), T::of(h.momentum));
    // p and v read and written, g read
    for_each_chunk(tensors, 5 * std::mem::size_of::<T>(), |t| {
        if h.nesterov {
            nesterov_slices(t.p, t.g, t.v, lr, mu)
        } else {
            classical_slices(t.p, t.g, t.v, lr, mu)
        }
    });
}

crate::simd! {
    fn classical_slices<T: Real>(p: &mut [T], g: &[T], v: &mut [T], lr: T, mu: T) {
        let n = p.len();
        let (g, v) = (&g[..n], &mut v[..n]);
        for i in 0..n {
            v[i] = mu * v[i] - lr * g[i];
            p[i] = p[i] + v[i];
        }
    }
}

crate::simd! {
    fn nesterov_slices<T: Real>(p: &mut [T], g: &[T], v: &mut [T], lr: T, mu: T) {
        let n = p.len();
        let (g, v) = (&g[..n], &mut v[..n]);
        for i in 0..n {
            let step = lr * g[i];
            v[i] = mu * v[i] - step;
            p[i] = p[i] + (mu * v[i] - step);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_nesterov_steps_by_hand() {
        let (mut p, g, mut v) = (vec![1.0f64], vec![2.0], vec![0.0]);
        let h = MomentumHyper {
            lr: 0.1,
            momentum: 0.5,
            nesterov: true,
        };
        for _ in 0..2 {
            momentum(
                vec![MomentumTensor {
                    p: &mut p,
                    g: &g,
                    v: &mut v,
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
        let h = MomentumHyper {
            lr: 0.5,
            momentum: 0.5,
            nesterov: false,
        };
        momentum(
            vec![MomentumTensor {
                p: &mut p,
                g: &g,
                v: &mut v,
            }],
            &h,
        );
        assert_eq!(v, vec![0.0, 0.5]);
        assert_eq!(p, vec![1.0, 0.5]);
    }
}
