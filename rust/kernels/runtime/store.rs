//! How kernels load and store elements whose storage type is not their arithmetic type.
//!
//! An optimizer's parameters, gradients and state may each be stored as float32, float64 or
//! bfloat16 (its bits in a `u16`), while the arithmetic runs in float32 or float64 (`C`).
//! Loading widens exactly; storing rounds to nearest even. For `C` itself both are the
//! identity, so one generic loop serves every combination and compiles to the plain one.

use crate::runtime::bf16::{bf16_from_f32, f32_from_bf16};
use crate::Real;

/// An element stored as `Self`, computed with as `C`.
pub trait Store<C: Real>: Copy + Send + Sync + 'static {
    fn load(self) -> C;
    fn store(x: C) -> Self;
}

impl<C: Real> Store<C> for C {
    #[inline(always)]
    fn load(self) -> C {
        self
    }
    #[inline(always)]
    fn store(x: C) -> C {
        x
    }
}

/// bfloat16 bits, computed with in float32.
impl Store<f32> for u16 {
    #[inline(always)]
    fn load(self) -> f32 {
        f32_from_bf16(self)
    }
    #[inline(always)]
    fn store(x: f32) -> u16 {
        bf16_from_f32(x)
    }
}

#[cfg(test)]
mod tests {
    use super::Store;

    #[test]
    fn bf16_loads_exactly_and_stores_to_nearest_even() {
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: the even one (1) wins.
        let x: u16 = Store::store(1.0f32 + 2f32.powi(-8));
        assert_eq!(Store::<f32>::load(x), 1.0);
        let y: u16 = Store::store(1.0f32 + 3.0 * 2f32.powi(-8));
        assert_eq!(Store::<f32>::load(y), 1.0 + 2f32.powi(-6));
        assert_eq!(<f64 as Store<f64>>::store(0.1), 0.1);
    }
}
