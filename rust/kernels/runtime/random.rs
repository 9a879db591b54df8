//! The counter-based random stream of every random gradfast routine, bit for bit the one
//! `gradfast.reference._random` specifies: each number is a pure function of
//! `(seed, stream, i)`, so any thread can draw any element and every thread count gives the
//! same numbers.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 finalizer.
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One stream of a seed: `bits(i)` is its `i`-th word.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    key: u64,
}

impl Stream {
    /// A placeholder stream for callers that draw nothing.
    pub const ZERO: Stream = Stream { key: 0 };

    pub fn new(seed: u64, stream: u64) -> Self {
        Stream {
            key: mix64(seed ^ mix64(stream.wrapping_add(GOLDEN))),
        }
    }

    /// `mix64(key + (i + 1) * GOLDEN)`.
    #[inline(always)]
    pub fn bits(&self, i: u64) -> u64 {
        mix64(
            self.key
                .wrapping_add(i.wrapping_add(1).wrapping_mul(GOLDEN)),
        )
    }

    /// Words `i`, `i + 1`, ... into `out`, stored little-endian (see [`Stream::bits`]); the
    /// counter is stepped by addition, which vectorizes without a multiply per word.
    #[inline(always)]
    pub fn fill_le(&self, i: u64, out: &mut [u64]) {
        let mut z = self
            .key
            .wrapping_add(i.wrapping_add(1).wrapping_mul(GOLDEN));
        for word in out {
            *word = mix64(z).to_le();
            z = z.wrapping_add(GOLDEN);
        }
    }

    /// A uniform in [0, 1): the top 53 bits of word `i` times 2^-53 (exact).
    #[inline(always)]
    pub fn uniform(&self, i: u64) -> f64 {
        // `(bits >> 11) as f64`, converted as two halves placed in the mantissa of 2^52:
        // exact, and it vectorizes where a u64 conversion (AVX-512DQ) is missing.
        const TWO52: f64 = 4_503_599_627_370_496.0;
        let b = self.bits(i) >> 11;
        let hi = f64::from_bits(TWO52.to_bits() | (b >> 26)) - TWO52;
        let lo = f64::from_bits(TWO52.to_bits() | (b & ((1 << 26) - 1))) - TWO52;
        (hi * (1u64 << 26) as f64 + lo) * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal by Box-Muller from words `2i` and `2i + 1`, as the reference:
    /// `sqrt(-2 ln(1 - u1)) * cos((2 pi) * u2)`.
    #[inline(always)]
    pub fn normal(&self, i: u64) -> f64 {
        let u1 = self.uniform(2 * i);
        let u2 = self.uniform(2 * i + 1);
        (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values printed by the NumPy reference (`gradfast.reference._random`), an
    // independent implementation of the same specification.
    #[test]
    fn matches_the_reference_stream() {
        let s = Stream::new(42, 7);
        assert_eq!(s.key, 0xd56fd4491d82a4dd);
        assert_eq!(
            [s.bits(0), s.bits(1), s.bits(2)],
            [0xdeb745320506897a, 0xab8922ad642bda36, 0x55df53e1604e823a]
        );
        assert_eq!(
            [s.uniform(0), s.uniform(1)],
            [0.8699839827650299, 0.6700612710302914]
        );
        let n = [s.normal(0), s.normal(1)];
        for (got, want) in n.iter().zip([-0.9724364877453541, -0.8381238495199865]) {
            assert!(
                (got - want).abs() <= 2.0 * f64::EPSILON * want.abs(),
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn filled_words_are_the_streams_words() {
        let s = Stream::new(3, 9);
        for from in [0, 5, u64::MAX - 2] {
            let mut out = [0u64; 7];
            s.fill_le(from, &mut out);
            for (j, w) in out.iter().enumerate() {
                assert_eq!(u64::from_le(*w), s.bits(from.wrapping_add(j as u64)));
            }
        }
    }

    #[test]
    fn counters_wrap_like_u64() {
        let s = Stream::new(u64::MAX, u64::MAX);
        assert_eq!(
            [s.bits(0), s.bits(1)],
            [0xbb01391f6277d93c, 0x3c554c6013f24b5]
        );
    }
}
