//! Buckets for collective calls, and bfloat16.
//!
//! Many small tensors cost one collective call each; packed end to end into one flat bucket
//! they cost one call together. A bucket holds the floats themselves or their bfloat16 bits
//! (the top half of a float32: same exponent range, 8 significant bits), which halve the
//! bytes on the wire. The conversions round to nearest, ties to even, as `ml_dtypes` and
//! PyTorch do, and are public so that other kernels (bfloat16 optimizer state) share them.

use crate::pool::for_each_chunk;
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

crate::bundle! {
    struct Copying<'a, T> {
        pub src: &'a [T],
        pub dst: &'a mut [T],
    }
}

crate::bundle! {
    struct Encoding<'a, T> {
        pub src: &'a [T],
        pub dst: &'a mut [u16],
    }
}

crate::bundle! {
    struct Decoding<'a, T> {
        pub src: &'a [u16],
        pub dst: &'a mut [T],
    }
}

crate::simd! {
    fn encode_slice<T: Bf16>(src: &[T], dst: &mut [u16]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s.to_bf16();
        }
    }
}

crate::simd! {
    fn decode_slice<T: Bf16, const DIVIDE: bool>(src: &[u16], dst: &mut [T], divisor: T) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = if DIVIDE { T::from_bf16(s) / divisor } else { T::from_bf16(s) };
        }
    }
}

crate::simd! {
    fn copy_slice<T: Real, const DIVIDE: bool>(src: &[T], dst: &mut [T], divisor: T) {
        if DIVIDE {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = s / divisor;
            }
        } else {
            dst.copy_from_slice(&src[..dst.len()]);
        }
    }
}

crate::simd! {
    fn divide_slice<T: Real>(x: &mut [T], divisor: T) {
        for v in x {
            *v = *v / divisor;
        }
    }
}

crate::simd! {
    fn sum_bf16_slice(src: &[u16], acc: &mut [u16]) {
        for (a, &s) in acc.iter_mut().zip(src) {
            *a = bf16_from_f32(f32_from_bf16(s) + f32_from_bf16(*a));
        }
    }
}

/// Consecutive pieces of `bucket` as long as the given lengths (the bucket holds at least
/// their sum).
fn pieces_mut<W>(bucket: &mut [W], lens: impl Iterator<Item = usize>) -> Vec<&mut [W]> {
    let mut rest = bucket;
    lens.map(|n| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
        rest = tail;
        head
    })
    .collect()
}

fn pieces<W>(bucket: &[W], lens: impl Iterator<Item = usize>) -> Vec<&[W]> {
    let mut rest = bucket;
    lens.map(|n| {
        let (head, tail) = rest.split_at(n);
        rest = tail;
        head
    })
    .collect()
}

/// Copies the tensors end to end into `bucket`, whose length is the sum of theirs.
pub fn pack<T: Real>(tensors: Vec<&[T]>, bucket: &mut [T]) {
    let dsts = pieces_mut(bucket, tensors.iter().map(|t| t.len()));
    let bundles = tensors
        .into_iter()
        .zip(dsts)
        .map(|(src, dst)| Copying { src, dst })
        .collect();
    for_each_chunk(bundles, 2 * size_of::<T>(), |b| {
        copy_slice::<T, false>(b.src, b.dst, T::ONE)
    });
}

/// Like [`pack`], rounding every value to bfloat16.
pub fn pack_bf16<T: Bf16>(tensors: Vec<&[T]>, bucket: &mut [u16]) {
    let dsts = pieces_mut(bucket, tensors.iter().map(|t| t.len()));
    let bundles = tensors
        .into_iter()
        .zip(dsts)
        .map(|(src, dst)| Encoding { src, dst })
        .collect();
    for_each_chunk(bundles, size_of::<T>() + 2, |b| encode_slice(b.src, b.dst));
}

/// Copies `bucket` back into the tensors (the inverse of [`pack`]), divided by `divisor`
/// if one is given.
pub fn unpack<T: Real>(bucket: &[T], tensors: Vec<&mut [T]>, divisor: Option<T>) {
    let srcs = pieces(bucket, tensors.iter().map(|t| t.len()));
    let bundles = srcs
        .into_iter()
        .zip(tensors)
        .map(|(src, dst)| Copying { src, dst })
        .collect();
    let bytes = 2 * size_of::<T>();
    match divisor {
        Some(d) => for_each_chunk(bundles, bytes, |b| copy_slice::<T, true>(b.src, b.dst, d)),
        None => for_each_chunk(bundles, bytes, |b| {
            copy_slice::<T, false>(b.src, b.dst, T::ONE)
        }),
    }
}

/// Like [`unpack`] from a bucket of bfloat16 bits.
pub fn unpack_bf16<T: Bf16>(bucket: &[u16], tensors: Vec<&mut [T]>, divisor: Option<T>) {
    let srcs = pieces(bucket, tensors.iter().map(|t| t.len()));
    let bundles = srcs
        .into_iter()
        .zip(tensors)
        .map(|(src, dst)| Decoding { src, dst })
        .collect();
    let bytes = 2 + size_of::<T>();
    match divisor {
        Some(d) => for_each_chunk(bundles, bytes, |b| decode_slice::<T, true>(b.src, b.dst, d)),
        None => for_each_chunk(bundles, bytes, |b| {
            decode_slice::<T, false>(b.src, b.dst, T::ONE)
        }),
    }
}

crate::bundle! {
    struct InPlace<'a, T> {
        pub x: &'a mut [T],
    }
}

/// Divides every element of every tensor by `divisor` (the mean of a summed tensor).
pub fn divide<T: Real>(tensors: Vec<&mut [T]>, divisor: T) {
    let bundles = tensors.into_iter().map(|x| InPlace { x }).collect();
    for_each_chunk(bundles, 2 * size_of::<T>(), |b| divide_slice(b.x, divisor));
}

/// `acc[i] = bf16(f32(src[i]) + f32(acc[i]))`: the sum of two bfloat16 buckets, taken in
/// float32 and rounded once. Symmetric in its arguments, so every rank of a reduction that
/// adds the same pairs gets the same bits.
pub fn sum_bf16(src: &[u16], acc: &mut [u16]) {
    crate::bundle! {
        struct Sum<'a, T> {
            pub src: &'a [T],
            pub acc: &'a mut [T],
        }
    }
    let n = acc.len().min(src.len());
    let bundles = vec![Sum {
        src: &src[..n],
        acc: &mut acc[..n],
    }];
    for_each_chunk(bundles, 6, |b| sum_bf16_slice(b.src, b.acc));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

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

    fn tensors(lens: &[usize], seed: u64) -> Vec<Vec<f64>> {
        let mut k = seed;
        lens.iter()
            .map(|&n| {
                (0..n)
                    .map(|_| {
                        k += 1;
                        (k as f64 * 0.618).sin() * 3.0
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn pack_then_unpack_gives_the_tensors_back_in_order() {
        let lens = [3, 0, 1, CHUNK + 5, 2];
        let src = tensors(&lens, 0);
        let mut bucket = vec![0.0; lens.iter().sum()];
        pack(src.iter().map(|t| &t[..]).collect(), &mut bucket);
        assert_eq!(bucket, src.concat());
        let mut back: Vec<Vec<f64>> = lens.iter().map(|&n| vec![0.0; n]).collect();
        unpack(&bucket, back.iter_mut().map(|t| &mut t[..]).collect(), None);
        assert_eq!(back, src);
        unpack(
            &bucket,
            back.iter_mut().map(|t| &mut t[..]).collect(),
            Some(3.0),
        );
        for (b, s) in back.iter().flatten().zip(src.iter().flatten()) {
            assert_eq!(*b, s / 3.0);
        }
    }

    #[test]
    fn bf16_buckets_round_each_value_and_decode_exactly() {
        let lens = [5, 0, 70];
        let src = tensors(&lens, 7);
        let src32: Vec<Vec<f32>> = src
            .iter()
            .map(|t| t.iter().map(|&x| x as f32).collect())
            .collect();
        let n = lens.iter().sum();
        let (mut b64, mut b32) = (vec![0u16; n], vec![0u16; n]);
        pack_bf16(src.iter().map(|t| &t[..]).collect(), &mut b64);
        pack_bf16(src32.iter().map(|t| &t[..]).collect(), &mut b32);
        for ((&a, &b), (&x, &y)) in b64
            .iter()
            .zip(&b32)
            .zip(src.concat().iter().zip(&src32.concat()))
        {
            assert_eq!((a, b), (bf16_from_f64(x), bf16_from_f32(y)));
        }
        let mut back: Vec<Vec<f64>> = lens.iter().map(|&n| vec![0.0; n]).collect();
        unpack_bf16(
            &b64,
            back.iter_mut().map(|t| &mut t[..]).collect(),
            Some(2.0),
        );
        for (v, &b) in back.concat().iter().zip(&b64) {
            assert_eq!(*v, value(b) / 2.0);
        }
    }

    #[test]
    fn divide_and_sum_bf16() {
        let mut a = vec![3.0f32; 5];
        let mut e: Vec<f32> = vec![];
        divide(vec![&mut a, &mut e], 2.0);
        assert_eq!(a, [1.5; 5]);
        // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even wins. 256 + 1 rounds back to 256.
        let src = [
            bf16_from_f32(1.0),
            bf16_from_f32(256.0),
            bf16_from_f32(-2.0),
        ];
        let mut acc = [
            bf16_from_f32(2f32.powi(-8)),
            bf16_from_f32(1.0),
            bf16_from_f32(2.0),
        ];
        sum_bf16(&src, &mut acc);
        assert_eq!(acc.map(f32_from_bf16), [1.0, 256.0, 0.0]);
    }

    #[test]
    fn one_thread_gives_the_bits_of_many() {
        let n = PARALLEL_MIN_BYTES / 4 + CHUNK + 3;
        let src: Vec<f32> = tensors(&[n], 3)[0]
            .iter()
            .map(|&x| x as f32 * 1.0e-3)
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let mut bucket = vec![0u16; n];
            pack_bf16(vec![&src[..]], &mut bucket);
            let mut acc = bucket.clone();
            sum_bf16(&bucket, &mut acc);
            let mut out = vec![0.0f32; n];
            unpack_bf16(&acc, vec![&mut out[..]], Some(3.0));
            divide(vec![&mut out[..]], 7.0);
            let mut copy = vec![0.0f32; n];
            pack(vec![&out[..]], &mut copy);
            copy
        };
        let one = run(1);
        assert_eq!(
            one.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            run(3).iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}
