//! How kernels load and store elements whose storage type is not their arithmetic type.
//!
//! An optimizer's parameters, gradients and state may each be stored as float32, float64 or
//! bfloat16 (its bits in a `u16`), while the arithmetic runs in float32 or float64 (`C`).
//! Loading widens exactly; storing rounds to nearest even. For `C` itself both are the
//! identity, so one generic loop serves every combination and compiles to the plain one.
//!
//! State may instead be rounded stochastically: kernels store state with [`Store::store_drawn`],
//! which [`Stochastic`] storage rounds with 16 random bits of the element and slot, and every
//! other type rounds as [`Store::store`]. [`with_bits`] runs a kernel's loop on blocks of
//! [`BLOCK`] elements with the bits of each block drawn ahead ([`Bits`]) from the
//! counter-based stream; a kernel takes `S` and its [`Store::Drawn`] type apart with
//! [`Bits::stochastic`], so the loop of nearest rounding draws nothing.

use crate::runtime::bf16::{bf16_from_f32, bf16_from_f32_stochastic, f32_from_bf16};
use crate::runtime::bundle::{Part, Split};
use crate::runtime::random::Stream;
use crate::Real;

/// An element stored as `Self`, computed with as `C`.
pub trait Store<C: Real>: Copy + Send + Sync + 'static {
    /// The same storage rounded stochastically where the type can be (`Self` otherwise).
    type Drawn: Store<C>;
    /// Whether [`Store::store_drawn`] reads its random bits.
    const DRAWS: bool = false;
    fn load(self) -> C;
    fn store(x: C) -> Self;
    /// `x` stored with the random bits `r` (from [`Store::bit`]).
    #[inline(always)]
    fn store_drawn(x: C, _r: u16) -> Self {
        Self::store(x)
    }
    /// The bits of element `i` of a slot's [`Bits::slot`] (0 for types that read none). Read
    /// in the loop, as the argument of [`Store::store_drawn`]: an index into `r` inside the
    /// store keeps the loop from vectorizing.
    #[inline(always)]
    fn bit(_r: &[u16], _i: usize) -> u16 {
        0
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
    const DRAWS: bool = true;
    #[inline(always)]
    fn load(self) -> f32 {
        f32_from_bf16(self.0)
    }
    #[inline(always)]
    fn store(x: f32) -> Stochastic {
        Stochastic(bf16_from_f32(x))
    }
    #[inline(always)]
    fn store_drawn(x: f32, r: u16) -> Stochastic {
        Stochastic(bf16_from_f32_stochastic(x, r))
    }
    #[inline(always)]
    fn bit(r: &[u16], i: usize) -> u16 {
        u16::from_le(r[i])
    }
    fn drawn(s: &mut [Stochastic]) -> &mut [Stochastic] {
        s
    }
}

/// How one tensor's state is rounded: a bundle field. Stochastically, the bits of element `e`
/// of the call (its index in the concatenation of the call's tensors) in state slot `k` of
/// step `step` are the 16-bit piece `e % 4` (bits `16 (e % 4)` up) of word `e / 4` of the
/// stream `(seed, 4 step + k)` (mod 2^64): every element, slot and step draws its own bits,
/// whatever the chunking and thread count, and one word serves four elements.
#[derive(Clone, Copy, Debug)]
pub struct Draws {
    seed: u64,
    step: u64,
    at: u64,
    stochastic: bool,
}

impl Draws {
    /// Nearest rounding: nothing is drawn.
    pub const NEAREST: Draws = Draws {
        seed: 0,
        step: 0,
        at: 0,
        stochastic: false,
    };

    /// Stochastic rounding of step `step` of a tensor starting at element `at` of the call.
    pub fn stochastic(seed: u64, step: u64, at: u64) -> Self {
        Draws {
            seed,
            step,
            at,
            stochastic: true,
        }
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

/// Elements of a block whose bits are drawn ahead of the loop (a multiple of 4).
pub const BLOCK: usize = 1024;

/// Stream words of a slot's block: one more than a block needs, for a start inside a word.
const WORDS: usize = BLOCK / 4 + 1;

/// The random bits of up to four state slots of a block of elements: each slot's stream words
/// as drawn, stored little-endian, so that the `u16` at index `4 w + j` is piece `j` of word
/// `w` (as [`Store::bit`] reads it) and drawing is one store per word.
pub struct Bits {
    words: [[u64; WORDS]; 4],
    /// where the block's first element sits among the words' pieces (its index mod 4)
    off: usize,
    stochastic: bool,
}

impl Bits {
    /// The bits of nearest rounding: none are read.
    pub const NONE: Bits = Bits {
        words: [[0; WORDS]; 4],
        off: 0,
        stochastic: false,
    };

    /// Whether the state is to be rounded stochastically.
    pub fn stochastic(&self) -> bool {
        self.stochastic
    }

    /// The bits of slot `k` for the block's `n` elements, for storage `S` (empty when `S`
    /// reads none).
    #[inline(always)]
    pub fn slot<C: Real, S: Store<C>>(&self, k: usize, n: usize) -> &[u16] {
        if S::DRAWS {
            let w = &self.words[k];
            // SAFETY: a `u64` is four valid `u16`s and its alignment a multiple of theirs.
            let pieces =
                unsafe { std::slice::from_raw_parts(w.as_ptr().cast::<u16>(), 4 * w.len()) };
            &pieces[self.off..self.off + n]
        } else {
            &[]
        }
    }
}

crate::simd! {
    /// Draws the bits of `slots` slots for `len` elements from element `e` on.
    fn fill(bits: &mut Bits, d: &Draws, e: u64, len: usize, slots: usize) {
        let (w0, off) = (e / 4, (e % 4) as usize);
        let words = (off + len).div_ceil(4);
        bits.off = off;
        for (k, row) in bits.words.iter_mut().enumerate().take(slots) {
            let s = Stream::new(d.seed, d.step.wrapping_mul(4).wrapping_add(k as u64));
            s.fill_le(w0, &mut row[..words]);
        }
    }
}

/// Runs `f` on bundle `t` with the random bits of its state stores (its [`Draws`] given by
/// `draws`): once, with none, for nearest rounding; else on blocks of [`BLOCK`] elements,
/// the bits of `slots` state slots drawn ahead of each.
pub fn with_bits<T: Split>(
    t: T,
    draws: impl Fn(&T) -> Draws,
    slots: usize,
    mut f: impl FnMut(T, &Bits),
) {
    let d = draws(&t);
    if !d.stochastic {
        return f(t, &Bits::NONE);
    }
    let mut bits = Bits {
        words: [[0; WORDS]; 4],
        off: 0,
        stochastic: true,
    };
    let (mut rest, mut e) = (t, d.at);
    while !rest.is_empty() {
        let len = rest.len().min(BLOCK);
        let (head, tail) = rest.split_at(len);
        fill(&mut bits, &d, e, len, slots);
        f(head, &bits);
        (rest, e) = (tail, e.wrapping_add(len as u64));
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
    fn bits_are_the_pieces_of_the_stream_of_each_slot() {
        // 3000 elements from element 5 of the call, in blocks: element e of slot k draws
        // piece e % 4 of word e / 4 of stream (seed, 4 step + k)
        crate::bundle! {
            pub struct One<'a, T> {
                pub x: &'a mut [T],
                pub d: Draws,
            }
        }
        let mut x = vec![0u64; 3000];
        let t = One {
            x: &mut x,
            d: Draws::stochastic(7, 3, 5),
        };
        with_bits(
            t,
            |t| t.d,
            2,
            |t, bits| {
                for k in 0..2 {
                    let r = bits.slot::<f32, Stochastic>(k, t.x.len());
                    for (i, x) in t.x.iter_mut().enumerate() {
                        let e = t.d.at + i as u64;
                        let word = Stream::new(7, 12 + k as u64).bits(e / 4);
                        assert_eq!(
                            <Stochastic as Store<f32>>::bit(r, i),
                            (word >> (16 * (e % 4))) as u16
                        );
                        *x += 1;
                    }
                }
                assert!(bits.slot::<f32, u16>(0, t.x.len()).is_empty());
            },
        );
        assert!(x.iter().all(|&v| v == 2));
        // 1 + 2^-9 is a quarter of an ulp above 1: a draw of 3/4 of 2^16 rounds it up
        let s = <Stochastic as Store<f32>>::store_drawn(1.0 + 2f32.powi(-9), 0xC000);
        assert_eq!(s.0, 0x3F81);
        assert_eq!(
            <Stochastic as Store<f32>>::store_drawn(1.0 + 2f32.powi(-9), 0xBFFF).0,
            0x3F80
        );
        assert_eq!(
            <u16 as Store<f32>>::store_drawn(1.0 + 2f32.powi(-9), 0xC000),
            0x3F80
        );
        assert_eq!(<u16 as Store<f32>>::bit(&[], 7), 0);
    }
}
