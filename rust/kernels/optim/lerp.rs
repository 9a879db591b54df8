//! ATen's `lerp`, for the kernels that port torch code using it.

use crate::Real;

/// `lerp(a, b, w)` as ATen's scalar path: `a + w (b - a)` for `|w| < 0.5`, else
/// `b - (b - a) (1 - w)`; `w` rounded once to `T`.
#[derive(Clone, Copy)]
pub(crate) struct Lerp<T> {
    w: T,
    one_minus_w: T,
    small: bool,
}

impl<T: Real> Lerp<T> {
    pub(crate) fn new(weight: f64) -> Self {
        let w = T::of(weight);
        Lerp {
            w,
            one_minus_w: T::ONE - w,
            small: w.abs() < T::of(0.5),
        }
    }

    #[inline(always)]
    pub(crate) fn at(&self, a: T, b: T) -> T {
        if self.small {
            a + self.w * (b - a)
        } else {
            b - (b - a) * self.one_minus_w
        }
    }
}
