//! How kernels load and store elements whose storage type is not their arithmetic type.
//!
//! An optimizer's parameters, gradients and state may each be stored as float32, float64 or
//! bfloat16 (its bits in a `u16`), while the arithmetic runs in float32 or float64 (`C`).
//! Loading widens exactly; storing rounds to nearest even. For `C` itself both are the
//! identity, so one generic loop serves every combination and compiles to the plain one.
//!
//! State may instead be rounded stochastically: kernels store state with [`Store::store_at`],
//! which [`Stochastic`] storage rounds with 16 bits drawn from the counter-based stream at
//! the element's index ([`Draws`]), and every other type rounds as [`Store::store`]. A kernel
//! takes `S` and its [`Store::Drawn`] type apart with [`Draws::stochastic`], so the loop of
//! nearest rounding draws nothing.

use crate::runtime::bf16::{bf16_from_f32, bf16_from_f32_stochastic, f32_from_bf16};
use crate::runtime::bundle::Part;
use crate::runtime::random::Stream;
use crate::Real;

/// An element stored as `Self`, computed with as `C`.
pub trait Store<C: Real>: Copy + Send + Sync + 'static {
    /// The same storage rounded stochastically where the type can be (`Self` otherwise).
    type Drawn: Store<C>;
    fn load(self) -> C;
    fn store(x: C) -> Self;
    /// `x` stored as state slot `slot` (0 to 3) of element `i` of a chunk drawing `d`.
    #[inline(always)]
    fn store_at(x: C, _d: &Draws, _i: usize, _slot: u32) -> Self {
        Self::store(x)
    }
    /// The same elements as [`Store::Drawn`].
    fn drawn(s: &mut [Self]) -> &mut [Self::Drawn];
}

impl<C: Real> Store<C> for C {
    type Drawn = C;
    #[inline(always)]
    fn load(self) -> C {
        self
    }
    #[inline(always)]
    fn store(x: C) -> C {
        x
    }
    fn drawn(s: &mut [C]) -> &mut [C] {
        s
    }
}

/// bfloat16 bits, computed with in float32.
impl Store<f32> for u16 {
    type Drawn = Stochastic;
    #[inline(always)]
    fn load(self) -> f32 {
        f32_from_bf16(self)
    }
    #[inline(always)]
    fn store(x: f32) -> u16 {
        bf16_from_f32(x)
    }
    fn drawn(s: &mut [u16]) -> &mut [Stochastic] {
        // SAFETY: `Stochastic` is a transparent `u16`: same size, alignment and validity.
        unsafe { &mut *(s as *mut [u16] as *mut [Stochastic]) }
    }
}

/// bfloat16 bits whose state stores round stochastically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct Stochastic(pub u16);

impl Store<f32> for Stochastic {
    type Drawn = Stochastic;
    #[inline(always)]
    fn load(self) -> f32 {
        f32_from_bf16(self.0)
    }
    #[inline(always)]
    fn store(x: f32) -> Stochastic {
        Stochastic(bf16_from_f32(x))
    }
    /// Slot `k` takes bits `16k..16k + 16` of the element's word: one word serves up to four
    /// slots, and two slots of one element never share a draw.
    #[inline(always)]
    fn store_at(x: f32, d: &Draws, i: usize, slot: u32) -> Stochastic {
        Stochastic(bf16_from_f32_stochastic(
            x,
            (d.word(i) >> (16 * slot)) as u16,
        ))
    }
    fn drawn(s: &mut [Stochastic]) -> &mut [Stochastic] {
        s
    }
}

/// The random words of a chunk of one tensor for stochastic rounding: element `i` of the
/// chunk draws word `at + i` of the stream `(seed, step)`, `at` being the chunk's start in
/// the concatenation of the call's tensors (so every element of a step draws its own word,
/// whatever the chunking and thread count). A bundle field: cutting advances `at`.
#[derive(Clone, Copy, Debug)]
pub struct Draws {
    stream: Stream,
    at: u64,
    stochastic: bool,
}

impl Draws {
    /// Nearest rounding: nothing is drawn.
    pub const NEAREST: Draws = Draws {
        stream: Stream::ZERO,
        at: 0,
        stochastic: false,
    };

    /// Stochastic rounding of step `step` of a tensor starting at element `at` of the call.
    pub fn stochastic(seed: u64, step: u64, at: u64) -> Self {
        Draws {
            stream: Stream::new(seed, step),
            at,
            stochastic: true,
        }
    }

    /// Whether the state is to be rounded stochastically.
    pub fn is_stochastic(&self) -> bool {
        self.stochastic
    }

    /// The word of element `i` of the chunk.
    #[inline(always)]
    pub fn word(&self, i: usize) -> u64 {
        self.stream.bits(self.at.wrapping_add(i as u64))
    }
}

impl Part for Draws {
    fn elements(&self) -> Option<usize> {
        None
    }
    fn cut(self, mid: usize) -> (Self, Self) {
        let tail = Draws {
            at: self.at.wrapping_add(mid as u64),
            ..self
        };
        (self, tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_loads_exactly_and_stores_to_nearest_even() {
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: the even one (1) wins.
        let x: u16 = Store::store(1.0f32 + 2f32.powi(-8));
        assert_eq!(Store::<f32>::load(x), 1.0);
        let y: u16 = Store::store(1.0f32 + 3.0 * 2f32.powi(-8));
        assert_eq!(Store::<f32>::load(y), 1.0 + 2f32.powi(-6));
        assert_eq!(<f64 as Store<f64>>::store(0.1), 0.1);
    }

    #[test]
    fn stochastic_stores_draw_per_element_and_slot_and_others_round_to_nearest() {
        let d = Draws::stochastic(7, 3, 100);
        let (_, tail) = d.cut(40);
        // element 45 of the tensor: the same word whether reached from its start or a chunk's
        assert_eq!(d.word(45), tail.word(5));
        assert_eq!(d.word(45), Stream::new(7, 3).bits(145));
        let x = 1.0f32 + 2f32.powi(-9);
        for slot in 0..4 {
            let r = (d.word(45) >> (16 * slot)) as u16;
            let s = <Stochastic as Store<f32>>::store_at(x, &d, 45, slot);
            assert_eq!(s.0, bf16_from_f32_stochastic(x, r));
        }
        assert_eq!(
            <u16 as Store<f32>>::store_at(x, &d, 45, 0),
            bf16_from_f32(x)
        );
        assert_eq!(<f32 as Store<f32>>::store_at(x, &d, 45, 0), x);
    }
}
