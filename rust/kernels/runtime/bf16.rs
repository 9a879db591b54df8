//! bfloat16 (the top half of a float32: same exponent range, 8 significant bits) and its
//! conversions, rounded to nearest, ties to even, as `ml_dtypes` and PyTorch do. Shared by
//! the bfloat16 optimizer state ([`crate::Store`]) and the buckets of `distributed`.

use crate::Real;

/// The bfloat16 bits of `x`, rounded to nearest even; NaN stays NaN (made quiet).
#[inline(always)]
pub fn bf16_from_f32(x: f32) -> u16 {
    let b = x.to_bits();
    // Adding 0x7FFF plus the lowest kept bit carries into the kept half exactly when the
    // dropped half is above one half, or equal to it with an odd kept half. No finite or
    // infinite value overflows: the largest magnitude bits, inf's, stay below 2^32 - 2^15.
    let rounded = b.wrapping_add(0x7FFF + ((b >> 16) & 1));
    #[allow(clippy::eq_op)]
    let nan = x != x;
    // Chosen in 32 bits and narrowed once: one narrowing per vector in the loops that call it.
    let bits = if nan { b | 0x0040_0000 } else { rounded };
    (bits >> 16) as u16
}

/// The bfloat16 bits of `x` rounded stochastically with the 16 random bits `r`: up (in
/// magnitude) with probability the dropped half over 2^16, so the expected value is `x`.
/// Adding `r` carries into the kept half exactly when `r` reaches 2^16 minus the dropped
/// half; infinities stay infinite (their dropped half is 0) and NaN stays NaN, made quiet.
#[inline(always)]
pub fn bf16_from_f32_stochastic(x: f32, r: u16) -> u16 {
    let b = x.to_bits();
    #[allow(clippy::eq_op)]
    let nan = x != x;
    // Two selects of values, not a branch around the addition: a branch lets the compiler
    // move the load of `r` under it, and a loop with a conditional load does not vectorize.
    let (quiet, add) = if nan {
        (0x0040_0000, 0)
    } else {
        (0, u32::from(r))
    };
    ((b | quiet).wrapping_add(add) >> 16) as u16
}

/// The bfloat16 bits of `x`, rounded once to nearest even. Going through float32 by
/// nearest rounding would round twice (1 + 2^-8 + 2^-30 would become 1, not 1 + 2^-7), so
/// the float32 step rounds to odd: truncated towards zero, lowest bit set if inexact. With
/// 16 more bits than bfloat16 that keeps the second rounding correct.
#[inline(always)]
pub fn bf16_from_f64(x: f64) -> u16 {
    let y = x as f32;
    let back = y as f64;
    // `y` rounded away from zero: one step back towards zero (inf becomes f32::MAX).
    let bits = y.to_bits() - u32::from(back.abs() > x.abs());
    let sticky = u32::from(back != x);
    bf16_from_f32(f32::from_bits(bits | sticky))
}

/// The float32 value of bfloat16 bits (exact).
#[inline(always)]
pub fn f32_from_bf16(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

/// A float type with a bfloat16 form: rounded to nearest even one way, exact the other.
pub trait Bf16: Real {
    fn to_bf16(self) -> u16;
    fn from_bf16(b: u16) -> Self;
}

impl Bf16 for f32 {
    #[inline(always)]
    fn to_bf16(self) -> u16 {
        bf16_from_f32(self)
    }
    #[inline(always)]
    fn from_bf16(b: u16) -> f32 {
        f32_from_bf16(b)
    }
}

impl Bf16 for f64 {
    #[inline(always)]
    fn to_bf16(self) -> u16 {
        bf16_from_f64(self)
    }
    #[inline(always)]
    fn from_bf16(b: u16) -> f64 {
        f64::from(f32_from_bf16(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bfloat16 bits as a float64 (every bfloat16 value is one exactly).
    fn value(b: u16) -> f64 {
        f64::from(f32_from_bf16(b))
    }

    /// `b` is a correctly rounded bfloat16 of `x`: no neighbour is nearer, and a tie went to
    /// the even one. Checked against the neighbours' values, not by redoing the bit trick.
    fn assert_nearest_even(x: f64, b: u16) {
        if x.is_nan() {
            assert!(value(b).is_nan(), "{x} -> {b:#06x}");
            return;
        }
        let v = value(b);
        assert_eq!(
            v.is_sign_negative(),
            x.is_sign_negative(),
            "{x} -> {b:#06x}"
        );
        let err = (x - v).abs();
        if v.is_infinite() {
            // Rounded to infinity: |x| must reach halfway from the largest finite to 2^128.
            let half = (value(0x7F7F) + 2f64.powi(128)) / 2.0;
            assert!(x.abs() >= half, "{x} -> inf");
            return;
        }
        for nb in [b.wrapping_add(1), b.wrapping_sub(1), b ^ 0x8000] {
            let w = value(nb);
            if w.is_nan() {
                continue;
            }
            let other = if w.is_infinite() {
                2f64.powi(128).copysign(w)
            } else {
                w
            };
            let e = (x - other).abs();
            assert!(err <= e, "{x} -> {b:#06x}, but {nb:#06x} is nearer");
            if err == e && err != 0.0 {
                assert_eq!(b & 1, 0, "{x}: tie must go to the even {nb:#06x}");
            }
        }
    }

    /// A reproducible stream of bit patterns (splitmix64).
    fn bits(n: usize) -> impl Iterator<Item = u64> {
        (0..n as u64).map(|i| {
            let mut z = i
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(0x1234_5678);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    }

    fn specials_f32() -> Vec<f32> {
        let mut v = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            -f32::MAX,
            f32::MIN_POSITIVE,
            1e-45,
            -1e-45,
            3.3895314e38,
            3.3961776e38,
        ];
        // Exact ties between two bfloat16 values, with even and odd lower neighbours.
        v.extend(
            [
                0x3F80_8000u32,
                0x3F81_8000,
                0x0000_8000,
                0x0001_8000,
                0xBF80_8000,
            ]
            .map(f32::from_bits),
        );
        v
    }

    #[test]
    fn float32_rounds_to_nearest_even() {
        let mut xs = specials_f32();
        xs.extend(bits(200_000).map(|b| f32::from_bits(b as u32)));
        for x in xs {
            assert_nearest_even(f64::from(x), bf16_from_f32(x));
        }
    }

    #[test]
    fn float64_rounds_once() {
        // Rounded twice (to float32, then to bfloat16) this would give 1.0.
        let x = 1.0 + 2f64.powi(-8) + 2f64.powi(-30);
        assert_eq!(value(bf16_from_f64(x)), 1.0 + 2f64.powi(-7));
        let mut xs: Vec<f64> = specials_f32().into_iter().map(f64::from).collect();
        xs.extend([
            f64::MAX,
            -f64::MAX,
            1e-300,
            -1e-300,
            5e-324,
            2f64.powi(-134),
            2f64.powi(-134) * 1.5,
        ]);
        // Random bits, and values spread over float32's exponent range with random mantissas.
        xs.extend(bits(100_000).map(f64::from_bits));
        xs.extend(bits(100_000).map(|b| {
            let e = (b >> 52) as i32 % 280 - 140;
            f64::from_bits(b & 0x800F_FFFF_FFFF_FFFF | 0x3FF0_0000_0000_0000) * 2f64.powi(e)
        }));
        for x in xs {
            assert_nearest_even(x, bf16_from_f64(x));
        }
    }

    #[test]
    fn stochastic_rounding_picks_a_neighbour_with_the_right_odds() {
        // 1 + 2^-8 + 2^-10 lies 5/8 of the way from 1 to 1 + 2^-7: of the 65,536 draws, the
        // 5/8 * 65,536 largest round it up.
        let x = 1.0f32 + 2f32.powi(-8) + 2f32.powi(-10);
        let up = (0..=u16::MAX)
            .filter(|&r| bf16_from_f32_stochastic(x, r) == 0x3F81)
            .count();
        let down = (0..=u16::MAX)
            .filter(|&r| bf16_from_f32_stochastic(x, r) == 0x3F80)
            .count();
        assert_eq!((up, down), (5 << 13, 3 << 13));
        assert_eq!(bf16_from_f32_stochastic(-x, 0xFFFF), 0xBF81);
        for b in 0..=u16::MAX {
            let v = f32_from_bf16(b);
            if v.is_nan() {
                assert!(f32_from_bf16(bf16_from_f32_stochastic(v, 0xFFFF)).is_nan());
            } else {
                // representable values (and infinities) stay themselves whatever the draw
                assert_eq!(bf16_from_f32_stochastic(v, 0xFFFF), b);
            }
        }
        assert!(f32_from_bf16(bf16_from_f32_stochastic(
            f32::from_bits(0x7F80_0001),
            0xFFFF
        ))
        .is_nan());
    }

    #[test]
    fn nan_stays_nan() {
        // A NaN whose payload sits in the dropped half only would round to infinity.
        for x in [
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7F80_0001),
            f32::from_bits(0xFF80_0001),
        ] {
            assert!(f32_from_bf16(bf16_from_f32(x)).is_nan());
            assert!(f32_from_bf16(bf16_from_f64(f64::from(x))).is_nan());
        }
    }

    #[test]
    fn decoding_is_exact_and_encoding_inverts_it() {
        for b in 0..=u16::MAX {
            let x = f32_from_bf16(b);
            if !x.is_nan() {
                assert_eq!(bf16_from_f32(x), b);
                assert_eq!(bf16_from_f64(f64::from(x)), b);
                assert_eq!(f64::from_bf16(b), f64::from(x));
            }
        }
    }
}
