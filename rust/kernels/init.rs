//! Weight initialization: a layer's weights drawn from the reference's counter-based stream,
//! in parallel, straight into the output type.
//!
//! Uniform: `(2u - 1) * limit` in float64, rounded once: bitwise the reference's. Normal:
//! `std * sqrt(-2 ln(1 - u1)) * cos((2 pi) u2)` in float64, rounded once, with `ln` and `cos`
//! written branch-free below so that the loop vectorizes: fdlibm's algorithms, compensated for
//! float64 output, operation for operation the reference's (`reference/_libm.py`), so the
//! draws are bitwise its own; shortened for float32 output (still far inside float32's half
//! ulp: the draws come out equal to the reference's).

use crate::runtime::bundle::Index;
use crate::runtime::pool::for_each_chunk;
use crate::runtime::random::Stream;
use crate::Real;

/// The distribution of the draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dist {
    /// `scale * z`, `z` standard normal.
    Normal,
    /// `(2u - 1) * scale`, `u` uniform in [0, 1).
    Uniform,
}

/// One layer's draws: `initialize_weights`'s `seed` and `distribution`, the layer index
/// (the stream, 1 for the first layer) and the std (normal) or limit (uniform).
#[derive(Clone, Copy, Debug)]
pub struct InitArgs {
    pub seed: u64,
    pub layer: u64,
    pub distribution: Dist,
    pub scale: f64,
}

crate::bundle! {
    struct Piece<'a, T> {
        pub w: &'a mut [T],
        pub at: Index,
    }
}

crate::simd! {
    fn uniform_piece<T: Real>(w: &mut [T], at: u64, s: Stream, limit: f64) {
        for (i, o) in w.iter_mut().enumerate() {
            *o = T::of((2.0 * s.uniform(at + i as u64) - 1.0) * limit);
        }
    }
}

crate::simd! {
    fn normal_piece<T: Real>(w: &mut [T], at: u64, s: Stream, std: f64) {
        // float64 output needs ln and cos rounded as nearly correctly as the C library's;
        // float32 rounds away fdlibm's sub-ulp float64 errors, so it takes the short forms
        match (std::mem::size_of::<T>() == 8, u64_to_f64_is_one_instruction()) {
            (true, true) => normal_loop::<T, true, true>(w, at, s, std),
            (true, false) => normal_loop::<T, true, false>(w, at, s, std),
            (false, true) => normal_loop::<T, false, true>(w, at, s, std),
            (false, false) => normal_loop::<T, false, false>(w, at, s, std),
        }
    }
}

/// Whether the CPU converts u64 to f64 in one vector instruction (AVX-512DQ): then the
/// uniforms are converted with `as`, which elsewhere would not vectorize.
fn u64_to_f64_is_one_instruction() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512dq")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[inline(always)]
fn normal_loop<T: Real, const EXACT: bool, const DQ: bool>(
    w: &mut [T],
    at: u64,
    s: Stream,
    std: f64,
) {
    // the same value as `Stream::uniform`, converted by the instruction
    let uniform = |k: u64| {
        if DQ {
            (s.bits(k) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
        } else {
            s.uniform(k)
        }
    };
    for (i, o) in w.iter_mut().enumerate() {
        let k = 2 * (at + i as u64);
        let (u1, u2) = (uniform(k), uniform(k + 1));
        let z =
            (-2.0 * ln::<EXACT>(1.0 - u1)).sqrt() * cos::<EXACT>(2.0 * std::f64::consts::PI * u2);
        *o = T::of(z * std);
    }
}

/// Fills `w` (element `i` from counter `i` of stream `args.layer`) with draws of
/// `args.distribution`.
pub fn fill<T: Real>(w: &mut [T], args: &InitArgs) {
    let InitArgs {
        seed,
        layer,
        distribution: dist,
        scale,
    } = *args;
    let s = Stream::new(seed, layer);
    // The arithmetic, not the store, is the cost: weigh an element by about that much
    // traffic so that threads start where they pay.
    let bytes = match dist {
        Dist::Normal => 64,
        Dist::Uniform => 16,
    };
    let b = Piece { w, at: Index(0) };
    for_each_chunk(vec![b], bytes, |b| match dist {
        Dist::Normal => normal_piece(b.w, b.at.0, s, scale),
        Dist::Uniform => uniform_piece(b.w, b.at.0, s, scale),
    });
}

/// `ln(x)` for a finite `x > 0` (fdlibm's `__ieee754_log`, branch-free as in musl): `x` is
/// reduced to `2^k * m`, `m` in [sqrt(2)/2, sqrt(2)), and `ln(m)` from a polynomial in
/// `s = (m - 1) / (m + 1)`. Error under 1 ulp. Subnormal `x` is not handled (the draws
/// never give one).
#[inline(always)]
fn ln<const EXACT: bool>(x: f64) -> f64 {
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // 0.6931471803691238
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // 1.9082149292705877e-10
    const LG1: f64 = f64::from_bits(0x3fe5_5555_5555_5593); // 0.6666666666666735
    const LG2: f64 = f64::from_bits(0x3fd9_9999_9997_fa04); // 0.3999999999940942
    const LG3: f64 = f64::from_bits(0x3fd2_4924_9422_9359); // 0.2857142874366239
    const LG4: f64 = f64::from_bits(0x3fcc_71c5_1d8e_78af); // 0.22222198432149784
    const LG5: f64 = f64::from_bits(0x3fc7_4664_96cb_03de); // 0.1818357216161805
    const LG6: f64 = f64::from_bits(0x3fc3_9a09_d078_c69f); // 0.15313837699209373
    const LG7: f64 = f64::from_bits(0x3fc2_f112_df3e_5244); // 0.14798198605116586
    let bits = x.to_bits();
    // shift the mantissa range so that the exponent read off is that of m in [sqrt2/2, sqrt2)
    let hx = (bits >> 32).wrapping_add(0x3ff0_0000 - 0x3fe6_a09e);
    let hm = (hx & 0x000f_ffff) + 0x3fe6_a09e;
    let m = f64::from_bits((hm << 32) | (bits & 0xffff_ffff));
    let f = m - 1.0;
    let (ff, ff_lo) = two_prod::<EXACT>(f, f);
    let (hfsq, hfsq_lo) = (0.5 * ff, 0.5 * ff_lo);
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    // the exponent k = (hx >> 20) - 1023 as a float, exactly, without an int conversion
    const TWO52: f64 = 4_503_599_627_370_496.0;
    let dk = f64::from_bits(TWO52.to_bits() | (hx >> 20)) - (TWO52 + 1023.0);
    if !EXACT {
        return s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI;
    }
    // the same sum with its two large additions and f^2 exact, so that the one rounding
    // left is the last
    let small = s * (hfsq + r) + dk * LN2_LO;
    let (s1, e1) = two_sum(dk * LN2_HI, f);
    let (s2, e2) = two_sum(s1, -hfsq);
    s2 + (((e1 + e2) - hfsq_lo) + small)
}

/// fdlibm's cosine (`C`) and sine (`S`) polynomial coefficients.
const C1: f64 = f64::from_bits(0x3fa5_5555_5555_554c); // 0.0416666666666666
const C2: f64 = f64::from_bits(0xbf56_c16c_16c1_5177); // -0.001388888888887411
const C3: f64 = f64::from_bits(0x3efa_01a0_19cb_1590); // 2.480158728947673e-05
const C4: f64 = f64::from_bits(0xbe92_7e4f_809c_52ad); // -2.7557314351390663e-07
const C5: f64 = f64::from_bits(0x3e21_ee9e_bdb4_b1c4); // 2.087572321298175e-09
const C6: f64 = f64::from_bits(0xbda8_fae9_be88_38d4); // -1.1359647557788195e-11
const S1: f64 = f64::from_bits(0xbfc5_5555_5555_5549); // -0.16666666666666632
const S2: f64 = f64::from_bits(0x3f81_1111_1110_f8a6); // 0.00833333333332249
const S3: f64 = f64::from_bits(0xbf2a_01a0_19c1_61d5); // -0.0001984126982985795
const S4: f64 = f64::from_bits(0x3ec7_1de3_57b1_fe7d); // 2.7557313707070068e-06
const S5: f64 = f64::from_bits(0xbe5a_e5e6_8a2b_9ceb); // -2.5050760253406863e-08
const S6: f64 = f64::from_bits(0x3de5_d93a_5acf_d57c); // 1.58969099521155e-10

/// `cos(x)` for `x` in [0, 8): fdlibm's reduction by pi/2 in three steps (151 bits of pi/2,
/// exact for these `x`), then its sine and cosine kernels on the remainder `y0 + y1`, chosen
/// by quadrant without a branch. Error under 1 ulp.
#[inline(always)]
fn cos<const EXACT: bool>(x: f64) -> f64 {
    const TOINT: f64 = 1.5 / f64::EPSILON;
    const INVPIO2: f64 = f64::from_bits(0x3fe4_5f30_6dc9_c883); // 0.6366197723675814
    const PIO2_1: f64 = f64::from_bits(0x3ff9_21fb_5440_0000); // 1.5707963267341256
    const PIO2_2: f64 = f64::from_bits(0x3dd0_b461_1a60_0000); // 6.077100506303966e-11
    const PIO2_3: f64 = f64::from_bits(0x3ba3_198a_2e00_0000); // 2.0222662487111665e-21
    const PIO2_3T: f64 = f64::from_bits(0x397b_839a_2520_49c1); // 8.4784276603689e-32
    let t = x * INVPIO2 + TOINT;
    let n = t.to_bits() & 3;
    let fnn = t - TOINT;
    if !EXACT {
        return cos_short(x, fnn, n);
    }
    // r = x - fn * pi/2 with pi/2 = PIO2_1 + PIO2_2 + PIO2_3 + PIO2_3T: fn * PIO2_1, 2, 3 are
    // exact (33-bit constants, fn <= 5), and e2, e3 are the rounding errors of the two
    // subtractions that can round, carried in the tail w.
    let r1 = x - fnn * PIO2_1;
    let w2 = fnn * PIO2_2;
    let r2 = r1 - w2;
    let e2 = (r1 - r2) - w2;
    let w3 = fnn * PIO2_3;
    let r3 = r2 - w3;
    let e3 = (r2 - r3) - w3;
    let w = fnn * PIO2_3T - e3 - e2;
    let y0 = r3 - w;
    let y1 = (r3 - y0) - w;
    let c = kernel_cos::<EXACT>(y0, y1);
    let s = kernel_sin::<EXACT>(y0, y1);
    // quadrant n: cos, -sin, -cos, sin (selects, not a branch)
    let v = if n & 1 == 0 { c } else { s };
    if (n + 1) & 2 == 0 {
        v
    } else {
        -v
    }
}

/// `cos(x)` to float64 accuracy short of the last bits, for float32 output: fdlibm's first
/// reduction step (85 bits of pi/2: ample for any `x` in [0, 8)), then one polynomial per
/// value, the cosine's `1 + z (-1/2 + z (C1 + ... + z C6))` or the sine's
/// `r (1 + z (S1 + ... + z S6))` in `z = r^2`, its coefficients chosen by quadrant.
#[inline(always)]
fn cos_short(x: f64, fnn: f64, n: u64) -> f64 {
    const PIO2_1: f64 = f64::from_bits(0x3ff9_21fb_5440_0000); // 1.5707963267341256
    const PIO2_1T: f64 = f64::from_bits(0x3dd0_b461_1a62_6331); // 6.077100506506192e-11
    const C: [f64; 8] = [1.0, -0.5, C1, C2, C3, C4, C5, C6];
    const S: [f64; 8] = [1.0, S1, S2, S3, S4, S5, S6, 0.0];
    let r = (x - fnn * PIO2_1) - fnn * PIO2_1T;
    let z = r * r;
    let odd = n & 1 == 1;
    let mut p = if odd { S[7] } else { C[7] };
    for k in (0..7).rev() {
        p = p * z + if odd { S[k] } else { C[k] };
    }
    let v = if odd { p * r } else { p };
    // quadrant n: cos, -sin, -cos, sin
    if (n + 1) & 2 == 0 {
        v
    } else {
        -v
    }
}

/// `a + b` as the rounded sum and its exact error (Knuth).
#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// `a * b` as the rounded product and its exact error (or 0 when not `EXACT`). `mul_add`
/// is one instruction on the FMA targets of [`simd!`](crate::simd!) and an exact library
/// call elsewhere, so every target computes the same bits.
#[inline(always)]
fn two_prod<const EXACT: bool>(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, if EXACT { a.mul_add(b, -p) } else { 0.0 })
}

/// fdlibm's `__kernel_cos(x, y)`: cos(x + y) for |x| <= pi/4, `y` the tail of `x`; with
/// `EXACT`, `x^2` is carried exactly.
#[inline(always)]
fn kernel_cos<const EXACT: bool>(x: f64, y: f64) -> f64 {
    let (z, z_lo) = two_prod::<EXACT>(x, x);
    let w = z * z;
    let r = z * (C1 + z * (C2 + z * C3)) + w * w * (C4 + z * (C5 + z * C6));
    let (hz, hz_lo) = (0.5 * z, 0.5 * z_lo);
    let w = 1.0 - hz;
    w + ((((1.0 - w) - hz) - hz_lo) + (z * r - x * y))
}

/// fdlibm's `__kernel_sin(x, y, 1)`: sin(x + y) for |x| <= pi/4, `y` the tail of `x`; with
/// `EXACT`, its leading term `x + x^3 S1` is summed in double-double.
#[inline(always)]
fn kernel_sin<const EXACT: bool>(x: f64, y: f64) -> f64 {
    let (z, z_lo) = two_prod::<EXACT>(x, x);
    let w = z * z;
    let r = S2 + z * (S3 + z * S4) + z * w * (S5 + z * S6);
    if !EXACT {
        let v = z * x;
        return x - ((z * (0.5 * y - v * r) - y) - v * S1);
    }
    // fdlibm's x + (y - z y / 2 + z v r) + v S1 with v = x^3; v S1 in double-double
    let (v, v_e) = two_prod::<EXACT>(z, x);
    let v_lo = v_e + z_lo * x;
    let (a, a_e) = two_prod::<EXACT>(v, S1);
    let a_lo = a_e + v_lo * S1;
    let small = (y - 0.5 * z * y + z * v * r) + a_lo;
    let (s1, e1) = two_sum(x, a);
    s1 + (e1 + small)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    /// Distance in ulp between two finite doubles of one sign.
    fn ulps(a: f64, b: f64) -> u64 {
        if a == b {
            return 0;
        }
        assert_eq!(a.is_sign_negative(), b.is_sign_negative(), "{a} {b}");
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn ln_and_cos_are_within_one_ulp_of_the_c_library_and_exact_ones_mostly_equal() {
        let s = Stream::new(9, 9);
        let n = 200_000;
        let mut differ = [0; 2];
        for i in 0..n {
            let u = s.uniform(i);
            let x = 1.0 - u;
            let t = 2.0 * std::f64::consts::PI * u;
            assert!(ulps(ln::<false>(x), x.ln()) <= 1, "ln({x})");
            // the float32 path's cosine: far inside float32's half ulp (2^-25)
            let (got, want) = (cos::<false>(t), t.cos());
            assert!(
                (got - want).abs() <= 2f64.powi(-50) * want.abs().max(1e-300),
                "{got} vs {want}"
            );
            for (d, (got, want)) in [(ln::<true>(x), x.ln()), (cos::<true>(t), t.cos())]
                .into_iter()
                .enumerate()
            {
                assert!(ulps(got, want) <= 1, "{got} vs {want} at {u}");
                differ[d] += (got != want) as u32;
            }
        }
        // the compensated forms differ from the C library's rounding in about 0.7% of cases
        assert!(differ.iter().all(|&d| d < n as u32 / 50), "{differ:?}");
        // the edges of the domains, and cos near its zeros
        for x in [1.0, f64::EPSILON / 2.0, 0.5, 2f64.sqrt() / 2.0] {
            assert!(ulps(ln::<true>(x), x.ln()) <= 1, "ln({x})");
        }
        let half_pi = std::f64::consts::FRAC_PI_2;
        for t in [half_pi, 3.0 * half_pi, std::f64::consts::PI] {
            for d in -3i64..=3 {
                let t = f64::from_bits((t.to_bits() as i64 + d) as u64);
                assert!(ulps(cos::<true>(t), t.cos()) <= 1, "cos({t})");
                let (got, want) = (cos::<false>(t), t.cos());
                assert!(
                    (got - want).abs() <= 2f64.powi(-30) * want.abs(),
                    "cos({t})"
                );
            }
        }
    }

    fn args(seed: u64, layer: u64, distribution: Dist, scale: f64) -> InitArgs {
        InitArgs {
            seed,
            layer,
            distribution,
            scale,
        }
    }

    #[test]
    fn draws_are_the_stream_scaled() {
        let mut w = vec![0.0f64; 1000];
        fill(&mut w, &args(4, 2, Dist::Uniform, 0.5));
        let s = Stream::new(4, 2);
        for (i, &v) in w.iter().enumerate() {
            assert_eq!(v, (2.0 * s.uniform(i as u64) - 1.0) * 0.5);
        }
        let mut w32 = vec![0.0f32; 1000];
        fill(&mut w32, &args(4, 2, Dist::Normal, 3.0));
        fill(&mut w, &args(4, 2, Dist::Normal, 3.0));
        for (i, (&a, &b)) in w32.iter().zip(&w).enumerate() {
            let want = s.normal(i as u64) * 3.0;
            assert!(ulps(b, want) <= 2, "{b} vs {want}");
            assert_eq!(a, b as f32);
        }
        fill::<f32>(&mut [], &args(1, 1, Dist::Normal, 1.0));
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let n = PARALLEL_MIN_BYTES / 16 + 2 * CHUNK + 3;
        let go = |threads, dist| {
            set_num_threads(threads);
            let mut w = vec![0.0f32; n];
            fill(&mut w, &args(11, 1, dist, 0.1));
            w
        };
        for dist in [Dist::Normal, Dist::Uniform] {
            let one = go(1, dist);
            assert!(one == go(2, dist) && one == go(3, dist));
        }
    }
}
