//! The element types the kernels are generic over.

use std::ops::{Add, Div, Mul, Sub};

/// `f32` or `f64`. Methods are `#[inline(always)]` so that they take on the SIMD features
/// of the multiversioned kernel that calls them.
pub trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    /// Rounds a float64 scalar to this type, as NumPy and PyTorch do with Python floats.
    fn of(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;

    /// Maximum that propagates NaN, like `np.maximum` and `torch.maximum`.
    #[inline(always)]
    fn nan_max(self, other: Self) -> Self {
        #[allow(clippy::eq_op)]
        let self_nan = self != self;
        if self_nan || self >= other {
            self
        } else {
            other
        }
    }
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline(always)]
            fn of(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
        }
    };
}
real!(f32);
real!(f64);

#[cfg(test)]
mod tests {
    use super::Real;

    #[test]
    fn nan_max_propagates_nan_from_either_side() {
        assert!(f32::NAN.nan_max(1.0).is_nan());
        assert!(1.0f32.nan_max(f32::NAN).is_nan());
        assert_eq!(2.0f64.nan_max(3.0), 3.0);
        assert_eq!(3.0f64.nan_max(2.0), 3.0);
    }
}
