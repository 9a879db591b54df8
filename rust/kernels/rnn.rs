//! Backpropagation through time for a vanilla (tanh) RNN, as `gradfast.reference.bptt`.
//!
//! Every sequence of steps is kept as a row-major matrix with one row per (step, batch
//! column) pair, `row = t B + b`, hidden units along the row. In that layout each step is a
//! contiguous block of `B` rows, and every sum over steps and batch columns (`dWx`, `dWh`,
//! `dWy`) is one matrix product over all rows. So the work is: the input projection of all
//! steps in one product, the sequential recurrence (one `B x H` by `H x H` product and a
//! vectorized `tanh` per step), the output layer and its backward in one product each, the
//! backward recurrence, and the three weight gradients as whole products. The recurrences
//! run on blocks of batch columns, which are independent sequences: in parallel, each block
//! through all its steps, with products that read `Wh` packed once per call (in column
//! panels, [`Packed`]) instead of packing it again every step as a GEMM crate would. All
//! scratch memory is allocated before the time loops.

use crate::runtime::matmul::{
    matmul_wide, small_matmul_packed, Gemm, Packed, View, PARALLEL_MIN_FMAS,
};
use crate::runtime::pool::for_each_task;
use crate::Real;

/// Batch columns a task of the recurrences takes through every step. The columns of a batch
/// are independent sequences, so fixed blocks of them run on the pool with no step-by-step
/// synchronisation, and the bits do not depend on the thread count. Sixteen rows are tiles of
/// 6, 6 and 4 in the products, and each panel of `Wh` read from memory serves all of them.
const BATCH_BLOCK: usize = 16;

/// The sizes of one call: `s` steps used (`sequence_length`), batch `b`, input `i`,
/// hidden `h`, output `o`.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub s: usize,
    pub b: usize,
    pub i: usize,
    pub h: usize,
    pub o: usize,
}

/// The weights, row-major: `wx` `(H, I)`, `wh` `(H, H)`, `wy` `(O, H)`.
pub struct Weights<'a, T> {
    pub wx: &'a [T],
    pub wh: &'a [T],
    pub wy: &'a [T],
}

/// The gradients, written whole, with the weights' shapes.
pub struct Grads<'a, T> {
    pub wx: &'a mut [T],
    pub wh: &'a mut [T],
    pub wy: &'a mut [T],
}

/// Loss and gradients over the first `d.s` steps. `x` is `(>= S, I, B)`, `y` `(>= S, O, B)`,
/// `h0` `(H, B)`, all C order; steps past `S` are not read. Returns the loss, accumulated in
/// float64. Needs `S, B, O >= 1`.
pub fn bptt<T: Tanh + Gemm>(
    d: Dims,
    x: &[T],
    y: &[T],
    h0: &[T],
    w: Weights<T>,
    g: Grads<T>,
) -> f64 {
    let Dims { s, b, i, h, o } = d;
    let rows = s * b;

    // Inputs as rows (x_t^T stacked); with B = 1 the caller's (T, I) layout already is.
    let packed: Vec<T>;
    let xr: &[T] = if b == 1 {
        &x[..rows * i]
    } else {
        packed = transpose_steps(&x[..rows * i], i, b);
        &packed
    };

    // hs: h_0 .. h_S as rows. The input projection of every step lands in rows B.. first.
    let mut hs = vec![T::ZERO; (rows + b) * h];
    for r in 0..b {
        for k in 0..h {
            hs[r * h + k] = h0[k * b + r];
        }
    }
    let wx_t = View::new(w.wx, h, i).t();
    matmul_wide(&mut hs[b * h..], h, View::new(xr, rows, i), wx_t, false);

    let wh_t = transpose(w.wh, h, h);
    let wh_t = Packed::new(View::new(&wh_t, h, h));
    let parallel = s * b * h * h >= PARALLEL_MIN_FMAS;
    for_each_block(batch_blocks(&mut hs, b, h), parallel, |(_, mut steps)| {
        // h_0 .. h_S of the block (none when H = 0)
        for t in 1..steps.len() {
            let (done, rest) = steps.split_at_mut(t);
            let (prev, cur) = (&*done[t - 1], &mut *rest[0]);
            small_matmul_packed(cur, h, View::new(prev, cur.len() / h, h), &wh_t);
            tanh_in_place(cur);
        }
    });
    let hidden = &hs[b * h..];

    // Output error: dy = 2 (y_hat - target) / (S O B), as rows.
    let mut dy = vec![T::ZERO; rows * o];
    matmul_wide(
        &mut dy,
        o,
        View::new(hidden, rows, h),
        View::new(w.wy, o, h).t(),
        false,
    );
    let loss = subtract_targets(&mut dy, &y[..rows * o], o, b);
    let scale = T::of(2.0 / (rows * o) as f64);
    dy.iter_mut().for_each(|v| *v = *v * scale);
    matmul_wide(
        g.wy,
        h,
        View::new(&dy, rows, o).t(),
        View::new(hidden, rows, h),
        false,
    );

    // da: first the output's share of dL/dh_t for every step, then the recurrence adds the
    // future's share (da_{t+1} Wh) and multiplies by tanh's derivative, from the last step.
    let mut da = vec![T::ZERO; rows * h];
    let wh = Packed::new(View::new(w.wh, h, h));
    matmul_wide(
        &mut da,
        h,
        View::new(&dy, rows, o),
        View::new(w.wy, o, h),
        false,
    );
    for_each_block(batch_blocks(&mut da, b, h), parallel, |(j, mut steps)| {
        for t in (0..steps.len()).rev() {
            let (head, tail) = steps.split_at_mut(t + 1);
            let cur = &mut *head[t];
            let rows = cur.len() / h;
            if let Some(next) = tail.first() {
                small_matmul_packed(cur, h, View::new(next, rows, h), &wh);
            }
            tanh_backward(cur, &hidden[(t * b + j * BATCH_BLOCK) * h..][..rows * h]);
        }
    });

    matmul_wide(
        g.wx,
        i,
        View::new(&da, rows, h).t(),
        View::new(xr, rows, i),
        false,
    );
    matmul_wide(
        g.wh,
        h,
        View::new(&da, rows, h).t(),
        View::new(&hs[..rows * h], rows, h),
        false,
    );
    loss
}

/// Rows `(t B + c) h ..` of `rows` (`h` values a row) as one list of steps per block of
/// [`BATCH_BLOCK`] batch columns, with the block's index.
fn batch_blocks<T>(rows: &mut [T], b: usize, h: usize) -> Vec<(usize, Vec<&mut [T]>)> {
    let mut blocks: Vec<(usize, Vec<&mut [T]>)> = (0..b.div_ceil(BATCH_BLOCK))
        .map(|j| (j, Vec::new()))
        .collect();
    if h > 0 {
        for step in rows.chunks_exact_mut(b * h) {
            for (block, rows) in blocks.iter_mut().zip(step.chunks_mut(BATCH_BLOCK * h)) {
                block.1.push(rows);
            }
        }
    }
    blocks
}

/// Runs `f` on every block, over the pool when `parallel`.
fn for_each_block<I: Send>(blocks: Vec<I>, parallel: bool, f: impl Fn(I) + Sync + Send) {
    if parallel {
        for_each_task(blocks, f);
    } else {
        blocks.into_iter().for_each(f);
    }
}

/// `(S, D, B)` steps to `(S B, D)` rows.
fn transpose_steps<T: Real>(x: &[T], dim: usize, b: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; x.len()];
    if dim > 0 {
        for (step, rows) in x.chunks_exact(dim * b).zip(out.chunks_exact_mut(dim * b)) {
            transpose_into(rows, step, dim, b);
        }
    }
    out
}

/// The transpose of a row-major `rows x cols` matrix.
fn transpose<T: Real>(m: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; m.len()];
    transpose_into(&mut out, m, rows, cols);
    out
}

/// Square tiles a transpose moves at a time: both sides of a tile stay in cache.
const TRANSPOSE_TILE: usize = 32;

/// `out` = the transpose of the row-major `rows x cols` matrix `m`, tile by tile (a large
/// matrix read down its columns would miss the cache on every element).
fn transpose_into<T: Real>(out: &mut [T], m: &[T], rows: usize, cols: usize) {
    for r0 in (0..rows).step_by(TRANSPOSE_TILE) {
        let r1 = rows.min(r0 + TRANSPOSE_TILE);
        for c0 in (0..cols).step_by(TRANSPOSE_TILE) {
            for c in c0..cols.min(c0 + TRANSPOSE_TILE) {
                for r in r0..r1 {
                    out[c * rows + r] = m[r * cols + c];
                }
            }
        }
    }
}

/// `dy -= targets` (targets `(S, O, B)`, dy as rows `t B + b`); returns the mean square
/// of the difference, summed in float64.
fn subtract_targets<T: Real>(dy: &mut [T], y: &[T], o: usize, b: usize) -> f64 {
    let mut sum = 0.0f64;
    for (r, row) in dy.chunks_exact_mut(o).enumerate() {
        let (t, c) = (r / b, r % b);
        for (k, v) in row.iter_mut().enumerate() {
            *v = *v - y[(t * o + k) * b + c];
            let e = v.to_f64();
            sum += e * e;
        }
    }
    sum / dy.len() as f64
}

crate::simd! {
    /// `da = (1 - h^2) da`.
    fn tanh_backward<T: Real>(da: &mut [T], h: &[T]) {
        for (a, &v) in da.iter_mut().zip(h) {
            *a = (T::ONE - v * v) * *a;
        }
    }
}

crate::simd! {
    fn tanh_in_place<T: Tanh>(x: &mut [T]) {
        for v in x {
            *v = tanh(*v);
        }
    }
}

/// The float operations of a branch-free `tanh` that vectorizes.
pub trait Tanh: Real {
    /// `|x|` from which `tanh(x)` rounds to `1`.
    const SATURATE: Self;
    /// How many Taylor terms of `expm1` (`1/1!, 1/2!, ...`) matter at this precision on
    /// `|r| <= ln(2)/2`.
    const TERMS: usize;
    /// `ln 2` as a head with trailing zero bits (so `k * head` is exact) and a tail.
    const LN2_HEAD: Self;
    const LN2_TAIL: Self;
    /// `2^k` for an integer-valued `k` in the normal range, built from its bits.
    fn exp2_int(k: Self) -> Self;
    fn round_even(self) -> Self;
    fn copysign(self, sign: Self) -> Self;
}

const LN2: f64 = std::f64::consts::LN_2;
const LN2_HEAD_64: f64 = f64::from_bits(LN2.to_bits() & !((1 << 21) - 1));
const LN2_HEAD_32: f32 = f32::from_bits((LN2 as f32).to_bits() & !((1 << 11) - 1));

impl Tanh for f64 {
    const SATURATE: f64 = 20.0;
    const TERMS: usize = 14;
    const LN2_HEAD: f64 = LN2_HEAD_64;
    const LN2_TAIL: f64 = LN2 - LN2_HEAD_64;
    #[inline(always)]
    fn exp2_int(k: f64) -> f64 {
        // k + 2^52 + 1023 holds the biased exponent in its low mantissa bits.
        f64::from_bits((k + (4503599627370496.0 + 1023.0)).to_bits() << 52)
    }
    #[inline(always)]
    fn round_even(self) -> f64 {
        self.round_ties_even()
    }
    #[inline(always)]
    fn copysign(self, sign: f64) -> f64 {
        f64::copysign(self, sign)
    }
}

impl Tanh for f32 {
    const SATURATE: f32 = 10.0;
    const TERMS: usize = 8;
    const LN2_HEAD: f32 = LN2_HEAD_32;
    const LN2_TAIL: f32 = (LN2 - LN2_HEAD_32 as f64) as f32;
    #[inline(always)]
    fn exp2_int(k: f32) -> f32 {
        f32::from_bits((k + (8388608.0 + 127.0)).to_bits() << 23)
    }
    #[inline(always)]
    fn round_even(self) -> f32 {
        self.round_ties_even()
    }
    #[inline(always)]
    fn copysign(self, sign: f32) -> f32 {
        f32::copysign(self, sign)
    }
}

const INV_FACTORIALS: [f64; 14] = {
    let mut t = [1.0; 14];
    let mut n = 1;
    while n < 14 {
        t[n] = t[n - 1] / (n + 1) as f64;
        n += 1;
    }
    t
};

/// `tanh(x) = -e / (2 + e)` with `e = expm1(-2|x|)`, signed like `x`: relative error of a
/// few ulp everywhere (no cancellation near 0, where `e ~ -2|x|`), NaN in NaN out.
#[inline(always)]
pub fn tanh<T: Tanh>(x: T) -> T {
    let a = x.abs();
    // Past SATURATE tanh is 1 in this precision; the comparison keeps NaN.
    let a = if a > T::SATURATE { T::SATURATE } else { a };
    let u = T::ZERO - (a + a);
    // u = k ln2 + r, |r| <= ln2 / 2, k <= 0.
    let k = (u * T::of(std::f64::consts::LOG2_E)).round_even();
    let r = (u - k * T::LN2_HEAD) - k * T::LN2_TAIL;
    let mut p = T::ZERO;
    for &c in INV_FACTORIALS[..T::TERMS].iter().rev() {
        p = p * r + T::of(c);
    }
    let expm1_r = p * r;
    let s = T::exp2_int(k);
    // expm1(u) = 2^k (expm1(r) + 1) - 1
    let e = s * expm1_r + (s - T::ONE);
    (T::ZERO - e / (T::of(2.0) + e)).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps64(a: f64, b: f64) -> f64 {
        ((a - b) / (b.abs().max(f64::MIN_POSITIVE) * f64::EPSILON)).abs()
    }

    #[test]
    fn tanh_is_within_a_few_ulp_of_libm() {
        let mut worst64 = 0.0f64;
        let mut worst32 = 0.0f64;
        for j in -200_000..=200_000 {
            let x = j as f64 * 1.37e-4;
            worst64 = worst64.max(ulps64(tanh(x), x.tanh()));
            let xf = x as f32;
            let want = (xf as f64).tanh();
            worst32 = worst32.max(
                ((tanh(xf) as f64 - want) / (want.abs().max(1e-30) * f32::EPSILON as f64)).abs(),
            );
        }
        for x in [
            1e-300, 1e-20, 1e-9, 3e-5, 0.34, 0.35, 19.0, 19.5, 25.0, 710.0,
        ] {
            worst64 = worst64.max(ulps64(tanh(x), x.tanh()));
            worst64 = worst64.max(ulps64(tanh(-x), (-x).tanh()));
        }
        assert!(worst64 <= 4.0, "float64: {worst64} ulp");
        assert!(worst32 <= 4.0, "float32: {worst32} ulp");
    }

    #[test]
    fn tanh_special_values() {
        assert_eq!(tanh(0.0f64).to_bits(), 0.0f64.to_bits());
        assert_eq!(tanh(-0.0f64).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(f64::NAN).is_nan() && tanh(f32::NAN).is_nan());
        let mut v = [0.5f64, -2.0, 1e-10];
        tanh_in_place(&mut v);
        assert_eq!(v, [tanh(0.5), tanh(-2.0), tanh(1e-10)]);
    }

    /// A plain, step-by-step BPTT in float64 over (S, D, B) arrays, written from the
    /// docstring of the reference, to hold the kernel to.
    fn naive(
        d: Dims,
        x: &[f64],
        y: &[f64],
        h0: &[f64],
        wx: &[f64],
        wh: &[f64],
        wy: &[f64],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>, f64) {
        let Dims { s, b, i, h, o } = d;
        let mut hs = vec![h0.to_vec()];
        for t in 0..s {
            let mut n = vec![0.0; h * b];
            for r in 0..h {
                for c in 0..b {
                    let mut a = 0.0;
                    for k in 0..i {
                        a += wx[r * i + k] * x[(t * i + k) * b + c];
                    }
                    for k in 0..h {
                        a += wh[r * h + k] * hs[t][k * b + c];
                    }
                    n[r * b + c] = a.tanh();
                }
            }
            hs.push(n);
        }
        let n = (s * o * b) as f64;
        let (mut gx, mut gh, mut gy) = (vec![0.0; h * i], vec![0.0; h * h], vec![0.0; o * h]);
        let mut loss = 0.0;
        let mut carry = vec![0.0; h * b];
        for t in (0..s).rev() {
            let mut dh = carry.clone();
            for q in 0..o {
                for c in 0..b {
                    let mut yh = 0.0;
                    for k in 0..h {
                        yh += wy[q * h + k] * hs[t + 1][k * b + c];
                    }
                    let e = yh - y[(t * o + q) * b + c];
                    loss += e * e / n;
                    let dy = 2.0 * e / n;
                    for k in 0..h {
                        gy[q * h + k] += dy * hs[t + 1][k * b + c];
                        dh[k * b + c] += wy[q * h + k] * dy;
                    }
                }
            }
            let da: Vec<f64> = (0..h * b)
                .map(|j| (1.0 - hs[t + 1][j].powi(2)) * dh[j])
                .collect();
            carry = vec![0.0; h * b];
            for r in 0..h {
                for c in 0..b {
                    let a = da[r * b + c];
                    for k in 0..i {
                        gx[r * i + k] += a * x[(t * i + k) * b + c];
                    }
                    for k in 0..h {
                        gh[r * h + k] += a * hs[t][k * b + c];
                        carry[k * b + c] += wh[r * h + k] * a;
                    }
                }
            }
        }
        (gx, gh, gy, loss)
    }

    fn data(n: usize, seed: u64) -> Vec<f64> {
        let st = crate::runtime::random::Stream::new(seed, 0);
        (0..n).map(|j| st.uniform(j as u64) * 2.0 - 1.0).collect()
    }

    fn run<T: Tanh + Gemm>(d: Dims, t_total: usize, seed: u64) -> ([Vec<T>; 3], f64) {
        let Dims { b, i, h, o, .. } = d;
        let cast = |v: Vec<f64>| v.into_iter().map(T::of).collect::<Vec<T>>();
        let (x, y, h0) = (
            cast(data(t_total * i * b, seed)),
            cast(data(t_total * o * b, seed + 1)),
            cast(data(h * b, seed + 2)),
        );
        let (wx, wh, wy) = (
            cast(data(h * i, seed + 3)),
            cast(data(h * h, seed + 4)),
            cast(data(o * h, seed + 5)),
        );
        let (mut gx, mut gh, mut gy) = (
            vec![T::ZERO; h * i],
            vec![T::ZERO; h * h],
            vec![T::ZERO; o * h],
        );
        let w = Weights {
            wx: &wx,
            wh: &wh,
            wy: &wy,
        };
        let g = Grads {
            wx: &mut gx,
            wh: &mut gh,
            wy: &mut gy,
        };
        let loss = bptt(d, &x, &y, &h0, w, g);
        ([gx, gh, gy], loss)
    }

    #[test]
    fn matches_a_step_by_step_implementation() {
        // Batch blocks of 16 columns and a shorter last one (19 = 16 + 3), tiles of 6, 4, 2 and
        // 1 rows; H = 37 and 64: whole panels of hidden units, half panels and tails; S < T
        // leaves steps unread.
        for (s, t, b, i, h, o) in [
            (1, 1, 1, 1, 1, 1),
            (7, 8, 11, 5, 37, 2),
            (3, 3, 9, 4, 64, 3),
            (4, 5, 19, 3, 37, 2),
            (5, 7, 1, 3, 4, 2),
            (6, 6, 2, 5, 3, 4),
            (4, 9, 6, 2, 7, 3),
            (3, 3, 5, 0, 2, 1),
            (2, 2, 1, 2, 0, 1),
        ] {
            let d = Dims { s, b, i, h, o };
            let seed = (s * 100 + b) as u64;
            let ([gx, gh, gy], loss) = run::<f64>(d, t, seed);
            let mk = |n, k| data(n, seed + k);
            let (wgx, wgh, wgy, wloss) = naive(
                d,
                &mk(t * i * b, 0),
                &mk(t * o * b, 1),
                &mk(h * b, 2),
                &mk(h * i, 3),
                &mk(h * h, 4),
                &mk(o * h, 5),
            );
            let close = |a: &[f64], w: &[f64]| {
                a.iter()
                    .zip(w)
                    .all(|(a, w)| (a - w).abs() <= 1e-13 * (1.0 + w.abs()))
            };
            assert!(
                close(&gx, &wgx) && close(&gh, &wgh) && close(&gy, &wgy),
                "{d:?}"
            );
            assert!((loss - wloss).abs() <= 1e-13 * wloss, "{d:?}");
            let ([fx, fh, fy], floss) = run::<f32>(d, t, seed);
            let close32 = |a: &[f32], w: &[f64]| {
                a.iter()
                    .zip(w)
                    .all(|(a, w)| (*a as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()))
            };
            assert!(
                close32(&fx, &wgx) && close32(&fh, &wgh) && close32(&fy, &wgy),
                "{d:?}"
            );
            assert!((floss - wloss).abs() <= 1e-5 * wloss, "{d:?}");
        }
    }

    #[test]
    fn the_same_bits_for_every_thread_count() {
        // Large enough for the whole products and the recurrences to run on the pool; the
        // second shape has a batch block of 5 columns (a tile of 4 and one of 1) and hidden
        // units past the last panel.
        for d in [
            Dims {
                s: 60,
                b: 32,
                i: 64,
                h: 128,
                o: 8,
            },
            Dims {
                s: 70,
                b: 21,
                i: 9,
                h: 70,
                o: 3,
            },
        ] {
            crate::runtime::pool::set_num_threads(1);
            let one = run::<f32>(d, d.s, 9);
            crate::runtime::pool::set_num_threads(3);
            let three = run::<f32>(d, d.s, 9);
            assert!(one.0.iter().flatten().all(|g| g.is_finite()), "{d:?}");
            assert_eq!(one.0, three.0, "{d:?}");
            assert_eq!(one.1.to_bits(), three.1.to_bits(), "{d:?}");
        }
    }
}
