//! Gradient clipping: the global norm of many tensors (from the per-tensor norms of
//! [`reduce`](crate::reduce)) and the in-place scaling that clips them.

use crate::pool::for_each_chunk;
use crate::reduce::Order;
use crate::Real;

/// The norm of the per-tensor norms: the global norm of all tensors together.
pub fn combine(norms: &[f64], order: Order) -> f64 {
    match order {
        Order::Inf => norms.iter().fold(0.0, |a, &b| a.nan_max(b)),
        Order::Two => norms.iter().map(|n| n * n).sum::<f64>().sqrt(),
        Order::P(p) => norms.iter().map(|n| n.powf(p)).sum::<f64>().powf(1.0 / p),
    }
}

crate::bundle! {
    struct Slice<'a, T> {
        pub x: &'a mut [T],
    }
}

crate::simd! {
    fn scale_slice<T: Real>(x: &mut [T], c: T) {
        for v in x {
            *v = *v * c;
        }
    }
}

/// Multiplies every element of every tensor by `c`.
pub fn scale<T: Real>(tensors: Vec<&mut [T]>, c: T) {
    let bundles = tensors.into_iter().map(|x| Slice { x }).collect();
    for_each_chunk(bundles, 2 * std::mem::size_of::<T>(), |s| {
        scale_slice(s.x, c)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::CHUNK;

    #[test]
    fn combine_is_the_norm_of_the_norms() {
        assert_eq!(combine(&[3.0, 4.0], Order::Two), 5.0);
        assert_eq!(combine(&[3.0, 4.0], Order::Inf), 4.0);
        assert!((combine(&[1.0, 2.0], Order::P(3.0)) - 9f64.powf(1.0 / 3.0)).abs() < 1e-15);
    }

    #[test]
    fn scale_multiplies_everything() {
        let mut a = vec![1.0f32; CHUNK * 2 + 1];
        let mut b = vec![2.0f32; 3];
        scale(vec![&mut a, &mut b], 0.5);
        assert!(a.iter().all(|&x| x == 0.5) && b.iter().all(|&x| x == 1.0));
    }
}
