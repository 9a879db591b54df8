//! The memory-bandwidth probe behind the benchmarks' roofline: a kernel that moves exactly
//! the bytes a given kernel moves (reads every input, reads and writes every output) with
//! almost no arithmetic, on the same threads and chunks.

use crate::runtime::bundle::Split;
use crate::runtime::pool::for_each_chunk;
use crate::Real;

crate::bundle! {
    /// All outputs and inputs at one element range.
    pub struct Streams<'a, T> {
        pub written: Vec<&'a mut [T]>,
        pub read: Vec<&'a [T]>,
    }
}

/// Elements per block: small enough that the block sum stays in L1, so the probe walks all
/// arrays together as a fused kernel does.
const BLOCK: usize = 256;

crate::simd! {
    fn stream_slices<T: Real>(written: &mut [&mut [T]], read: &[&[T]], n: usize) {
        let mut sum = [T::ZERO; BLOCK];
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            let block = &mut sum[..end - start];
            block.fill(T::ZERO);
            for r in read {
                block
                    .iter_mut()
                    .zip(&r[start..end])
                    .for_each(|(a, &b)| *a = *a + b);
            }
            for w in written.iter_mut() {
                w[start..end]
                    .iter_mut()
                    .zip(block.iter())
                    .for_each(|(a, &b)| *a = *a + b);
            }
        }
    }
}

/// `w += sum of the inputs` for every output `w`, element by element. All slices must have
/// one length.
pub fn stream<T: Real>(s: Streams<'_, T>) {
    let bytes = (2 * s.written.len() + s.read.len()) * std::mem::size_of::<T>();
    for_each_chunk(vec![s], bytes, |mut s| {
        let n = s.len();
        stream_slices(&mut s.written, &s.read, n)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_inputs_to_every_output() {
        let (mut a, mut b) = (vec![1.0f32; 5], vec![0.0f32; 5]);
        let (c, d) = (vec![2.0f32; 5], vec![3.0f32; 5]);
        stream(Streams {
            written: vec![&mut a, &mut b],
            read: vec![&c, &d],
        });
        assert_eq!(a, vec![6.0; 5]);
        assert_eq!(b, vec![5.0; 5]);
    }
}
