//! The gradient torch's optimizers step with: negated for `maximize`, then L2 weight decay
//! (`grad.add(param, alpha=weight_decay)`) when `weight_decay != 0`.

use crate::Real;

/// The constants of the gradient's adjustment, rounded once to `T`.
#[derive(Clone, Copy)]
pub(crate) struct Gradient<T> {
    /// -1 to maximize, 1 otherwise: a product by it is exact, and leaves the loop branch-free.
    sign: T,
    weight_decay: T,
    /// Whether `weight_decay != 0` (a constant of the call, passed to [`Gradient::of`] as a
    /// const parameter: adding `0 * p` would turn an infinite `p` into NaN).
    pub l2: bool,
}

impl<T: Real> Gradient<T> {
    pub fn new(maximize: bool, weight_decay: f64) -> Self {
        Gradient {
            sign: T::of(if maximize { -1.0 } else { 1.0 }),
            weight_decay: T::of(weight_decay),
            l2: weight_decay != 0.0,
        }
    }

    /// The gradient `g` of the parameter `p` as the step uses it.
    #[inline(always)]
    pub fn of<const L2: bool>(&self, g: T, p: T) -> T {
        let g = g * self.sign;
        if L2 {
            g + self.weight_decay * p
        } else {
            g
        }
    }
}

/// Calls `f::<types..., flags...>(args...)` with each run-time `bool` in `[flags]` turned into
/// a `const bool` parameter: one branch per call, none in the loop, so the loop vectorizes.
macro_rules! with_flags {
    ($f:ident::<$($t:ty),*>($($arg:expr),* $(,)?) [$($flag:expr),* $(,)?]) => {
        $crate::optim::gradient::with_flags!(@ $f [$($t),*] [$($arg),*] [$($flag),*] [])
    };
    (@ $f:ident [$($t:ty),*] [$($arg:expr),*] [] [$($done:tt)*]) => {
        $f::<$($t,)* $($done)*>($($arg),*)
    };
    (@ $f:ident [$($t:ty),*] [$($arg:expr),*] [$flag:expr $(, $rest:expr)*] [$($done:tt)*]) => {
        if $flag {
            $crate::optim::gradient::with_flags!(@ $f [$($t),*] [$($arg),*] [$($rest),*] [$($done)* true,])
        } else {
            $crate::optim::gradient::with_flags!(@ $f [$($t),*] [$($arg),*] [$($rest),*] [$($done)* false,])
        }
    };
}
pub(crate) use with_flags;

/// Helpers of the optimizers' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::runtime::bf16::bf16_from_f32;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    /// Gradients in [-1, 1), enough of them that a call moving `bytes_per_element` bytes per
    /// element runs on the pool, in more than two chunks.
    pub fn pooled_gradients(bytes_per_element: usize) -> Vec<f32> {
        let n = PARALLEL_MIN_BYTES / bytes_per_element + 2 * CHUNK + 5;
        (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// `run` gives the same result (bitwise, for floats) on 1, 2 and 4 threads.
    pub fn assert_any_thread_count_agrees<R: PartialEq + std::fmt::Debug>(run: impl Fn() -> R) {
        set_num_threads(1);
        let one = run();
        for threads in [2, 4] {
            set_num_threads(threads);
            assert_eq!(run(), one, "{threads} threads");
        }
    }

    /// float32 values rounded to bfloat16 bits.
    pub fn bf16_bits(x: &[f32]) -> Vec<u16> {
        x.iter().map(|&y| bf16_from_f32(y)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags<const A: bool, const B: bool>(x: u8) -> (bool, bool, u8) {
        (A, B, x)
    }

    #[test]
    fn with_flags_passes_each_flag_in_order() {
        for (a, b) in [(false, false), (false, true), (true, false), (true, true)] {
            assert_eq!(with_flags!(flags::<>(7) [a, b]), (a, b, 7));
        }
    }

    #[test]
    fn maximize_negates_before_the_decay_is_added() {
        let g = Gradient::<f64>::new(true, 0.5);
        assert_eq!(g.of::<true>(2.0, 4.0), 0.0);
        assert_eq!(g.of::<false>(2.0, f64::INFINITY), -2.0);
        assert!(!Gradient::<f32>::new(false, 0.0).l2);
    }
}
