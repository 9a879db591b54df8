//! Buckets for collective calls: many small tensors cost one collective call each; packed
//! end to end into one flat bucket they cost one call together. A bucket holds the floats
//! themselves or their bfloat16 bits ([`crate::runtime::bf16`]), which halve the bytes on
//! the wire.

use crate::runtime::bf16::{bf16_from_f32, f32_from_bf16, Bf16};
use crate::runtime::pool::for_each_chunk;
use crate::Real;

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
    use crate::runtime::bf16::bf16_from_f64;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    /// bfloat16 bits as a float64 (every bfloat16 value is one exactly).
    fn value(b: u16) -> f64 {
        f64::from(f32_from_bf16(b))
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
