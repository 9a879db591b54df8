//! Matrix products through `matrixmultiply`, over strided views of plain slices.
//!
//! `matrixmultiply` was chosen for the kernels' GEMM-shaped products (BPTT's) by measuring
//! it against `gemm` 0.18 on those shapes: 1.3x to 1.7x faster in float64 and up to 1.7x in
//! float32 on the machine of `docs/benchmarks.md` (`gemm` uses AVX-512 only on nightly Rust),
//! with one small dependency. Neither crate suits the small products of a recurrence, one per
//! step with the same right operand: there both spend their time packing it again on every
//! call, so those are the hand-written [`small_matmul`], which reads it in place, or packed once
//! for all the steps ([`small_matmul_packed`]).
//!
//! At Muon's products (1024 x 1024 by 1024 x 4096) it is as fast as `gemm` 0.19 splitting the
//! product over the same pool itself, once each task takes a block of [`LARGE_BLOCK_ROWS`]
//! rows: `matrixmultiply` packs the right operand again on every call.
//!
//! `matrixmultiply` runs single-threaded (its `threading` feature is off). A large product is
//! cut into fixed blocks of output rows ([`BLOCK_ROWS`], or [`LARGE_BLOCK_ROWS`] once there are
//! two of those), run over the gradfast pool: never the summed dimension, so every output
//! element is summed in one fixed order and the bits do not depend on the thread count.

use crate::runtime::pool::for_each_task;
use crate::Real;

/// Output rows per parallel task: fixed, so the blocks do not depend on the thread count.
pub const BLOCK_ROWS: usize = 64;
/// Output rows per parallel task of a product of at least twice as many rows: fewer packings
/// of the right operand.
pub const LARGE_BLOCK_ROWS: usize = 256;

/// The rows of a parallel task of a product of `m` rows (a function of `m` alone).
fn block_rows(m: usize) -> usize {
    if m >= 2 * LARGE_BLOCK_ROWS {
        LARGE_BLOCK_ROWS
    } else {
        BLOCK_ROWS
    }
}
/// Products of fewer multiply-adds run on the calling thread: about 0.1 ms of work, the
/// scale at which waking the pool pays.
pub const PARALLEL_MIN_FMAS: usize = 1 << 22;

/// `f32` or `f64` with `matrixmultiply`'s product.
pub trait Gemm: Real {
    /// `c = alpha a b + beta c`, `a` `m x k`, `b` `k x n`, with row and column strides.
    ///
    /// # Safety
    /// Every element the strides address must lie inside its allocation, and `c` must not
    /// overlap `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        a_strides: (isize, isize),
        b: *const Self,
        b_strides: (isize, isize),
        beta: Self,
        c: *mut Self,
        rsc: isize,
    );

    /// `self * a + b` rounded once (an FMA instruction where the target has one).
    fn mul_add(self, a: Self, b: Self) -> Self;
}

macro_rules! gemm_impl {
    ($t:ty, $f:path) => {
        impl Gemm for $t {
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                a: *const Self,
                (rsa, csa): (isize, isize),
                b: *const Self,
                (rsb, csb): (isize, isize),
                beta: Self,
                c: *mut Self,
                rsc: isize,
            ) {
                $f(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, rsc, 1)
            }

            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
        }
    };
}
gemm_impl!(f32, matrixmultiply::sgemm);
gemm_impl!(f64, matrixmultiply::dgemm);

/// A read-only `rows x cols` matrix inside a slice: element `(i, j)` is `data[i rs + j cs]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> View<'a, T> {
    /// The row-major `rows x cols` matrix at the start of `data`.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A matrix with explicit strides; panics (a bug, never an input error) if it does not
    /// fit in `data`.
    pub fn strided(data: &'a [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        let last = if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        };
        assert!(last <= data.len(), "matrix view out of bounds");
        View {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// Rows `start..start + rows` (no copy).
    fn row_block(self, start: usize, rows: usize) -> Self {
        View {
            data: if rows == 0 {
                &[]
            } else {
                &self.data[start * self.rs..]
            },
            rows,
            ..self
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// `c = a b` (or `c += a b` when `accumulate`), `c` row-major with row stride `ldc`; large
/// products in blocks of rows over the pool.
pub fn matmul<T: Gemm>(c: &mut [T], ldc: usize, a: View<T>, b: View<T>, accumulate: bool) {
    matmul_in_blocks(c, ldc, a, b, accumulate, block_rows(a.rows));
}

/// Most tasks [`matmul_wide`] cuts a product into.
const WIDE_TASKS: usize = 8;

/// [`matmul`] for products with many rows: in at most [`WIDE_TASKS`] blocks of rows (of a size
/// fixed by `m` alone, and never smaller than [`matmul`]'s), because every block packs all of
/// `b` again, which for `k x n` large costs a third of the product's time.
pub fn matmul_wide<T: Gemm>(c: &mut [T], ldc: usize, a: View<T>, b: View<T>, accumulate: bool) {
    let block = a.rows.div_ceil(WIDE_TASKS).next_multiple_of(16);
    matmul_in_blocks(c, ldc, a, b, accumulate, block.max(block_rows(a.rows)));
}

/// `c = a b` (or `+=`), large products in blocks of `block` rows over the pool. Every output
/// element is summed in the same order whatever the blocks, so the bits depend on neither
/// `block` nor the thread count.
fn matmul_in_blocks<T: Gemm>(
    c: &mut [T],
    ldc: usize,
    a: View<T>,
    b: View<T>,
    accumulate: bool,
    block: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m <= block || m.saturating_mul(k).saturating_mul(n) < PARALLEL_MIN_FMAS {
        return matmul_serial(c, ldc, a, b, accumulate);
    }
    let tasks: Vec<(usize, &mut [T])> = c
        .chunks_mut(block * ldc)
        .take(m.div_ceil(block))
        .enumerate()
        .collect();
    for_each_task(tasks, |(j, cj)| {
        let rows = block.min(m - j * block);
        matmul_serial(cj, ldc, a.row_block(j * block, rows), b, accumulate)
    });
}

/// `c = a a^T` (`a` `m x k`, `c` `m x m` row-major and contiguous), as [`matmul`] would give
/// it in its lower triangle, which is computed, block row by block row up to the diagonal (the
/// product is symmetric: about half the work), and mirrored into the upper one.
pub fn matmul_gram<T: Gemm>(c: &mut [T], a: View<T>) {
    let (m, k) = (a.rows, a.cols);
    assert!(c.len() == m * m, "product out of bounds");
    if m <= BLOCK_ROWS || m.saturating_mul(k).saturating_mul(m) < PARALLEL_MIN_FMAS {
        return matmul_serial(c, m, a, a.t(), false);
    }
    let br = block_rows(m);
    let tasks: Vec<(usize, &mut [T])> = c.chunks_mut(br * m).enumerate().collect();
    for_each_task(tasks, |(j, cj)| {
        let rows = br.min(m - j * br);
        let cols = j * br + rows;
        let b = View { cols, ..a.t() };
        matmul_serial(cj, m, a.row_block(j * br, rows), b, false)
    });
    for i in 0..m {
        let (upper, lower) = c.split_at_mut((i + 1) * m);
        let row = &mut upper[i * m..];
        // columns past the diagonal block of row i were not computed: the lower rows hold them
        let start = ((i / br + 1) * br).min(m);
        for (j, v) in row.iter_mut().enumerate().skip(start) {
            *v = lower[(j - i - 1) * m + i];
        }
    }
}

fn matmul_serial<T: Gemm>(c: &mut [T], ldc: usize, a: View<T>, b: View<T>, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k, "inner dimensions differ");
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * ldc + n <= c.len(), "product out of bounds");
    if k == 0 {
        // `matrixmultiply` is not asked about an empty sum.
        if !accumulate {
            for row in c.chunks_mut(ldc).take(m) {
                row[..n].fill(T::ZERO);
            }
        }
        return;
    }
    let beta = if accumulate { T::ONE } else { T::ZERO };
    // SAFETY: the views were checked to lie in their slices and `c`'s extent just above;
    // `c` is a `&mut` borrow, so it overlaps neither `a` nor `b`.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            a.data.as_ptr(),
            (a.rs as isize, a.cs as isize),
            b.data.as_ptr(),
            (b.rs as isize, b.cs as isize),
            beta,
            c.as_mut_ptr(),
            ldc as isize,
        )
    }
}

/// Bytes of the output columns of a [`small_matmul`] tile with AVX-512: four vectors (32 `f64`,
/// 64 `f32`), which with [`TILE_ROWS`] rows make 24 of the 32 vector registers accumulators.
const PANEL_BYTES_512: usize = 256;
/// The same with 256-bit vectors, which have 16 registers: two vectors, 12 accumulators (four
/// vectors would spill the tile to the stack).
const PANEL_BYTES_256: usize = 64;
/// Output rows of a [`small_matmul`] tile; the rows left are done four, two, then one at a time.
const TILE_ROWS: usize = 6;

crate::simd! {
    /// `c += a b` without packing, for the small products of a recurrence, where a GEMM crate
    /// would pack `b` on every call. Both operands must have contiguous rows: `b` is read in
    /// place, a panel of [`PANEL_BYTES_512`] (or [`PANEL_BYTES_256`]) of columns at a time, and
    /// `a` one element at a time.
    /// Tiles of [`TILE_ROWS`] rows and a panel stay in registers. Every output is summed over
    /// the inner dimension in order, with the same operations whichever rows share its tile.
    pub fn small_matmul<T: Gemm>(c: &mut [T], ldc: usize, a: View<T>, b: View<T>) {
        let fma = multiversion::target::target_cfg_f!(target_feature = "fma");
        let wide = multiversion::target::target_cfg_f!(target_feature = "avx512f");
        assert!(b.rows == a.cols && a.cs == 1 && b.cs == 1, "a and b must have contiguous rows");
        if a.rows == 0 || b.cols == 0 {
            return;
        }
        assert!((a.rows - 1) * ldc + b.cols <= c.len(), "product out of bounds");
        // An array's length cannot depend on `T` or the target, so the panel widths are chosen
        // here: whole panels, then a half panel where one fits, then single columns.
        let c0 = match (std::mem::size_of::<T>(), wide) {
            (4, true) => {
                let c0 = panels::<T, { PANEL_BYTES_512 / 4 }>(fma, c, ldc, a, b, 0);
                panels::<T, { PANEL_BYTES_512 / 8 }>(fma, c, ldc, a, b, c0)
            }
            (_, true) => {
                let c0 = panels::<T, { PANEL_BYTES_512 / 8 }>(fma, c, ldc, a, b, 0);
                panels::<T, { PANEL_BYTES_512 / 16 }>(fma, c, ldc, a, b, c0)
            }
            (4, false) => {
                let c0 = panels::<T, { PANEL_BYTES_256 / 4 }>(fma, c, ldc, a, b, 0);
                panels::<T, { PANEL_BYTES_256 / 8 }>(fma, c, ldc, a, b, c0)
            }
            _ => {
                let c0 = panels::<T, { PANEL_BYTES_256 / 8 }>(fma, c, ldc, a, b, 0);
                panels::<T, { PANEL_BYTES_256 / 16 }>(fma, c, ldc, a, b, c0)
            }
        };
        columns(fma, c, ldc, a, b, c0);
    }
}

/// The part of [`small_matmul`] in panels of `W` columns from column `c0`; returns the first
/// column left.
#[inline(always)]
fn panels<T: Gemm, const W: usize>(
    fma: bool,
    c: &mut [T],
    ldc: usize,
    a: View<T>,
    b: View<T>,
    c0: usize,
) -> usize {
    let m = a.rows;
    let end = c0 + (b.cols - c0) / W * W;
    for c0 in (c0..end).step_by(W) {
        let mut r = 0;
        while r + TILE_ROWS <= m {
            tile6::<T, W>(fma, &mut c[r * ldc + c0..], ldc, a, r, b, c0);
            r += TILE_ROWS;
        }
        // At most five rows left: one tile of each smaller height that fits, largest first
        // (called directly: through a function pointer a tile would not be inlined into the
        // target's version).
        if r + 4 <= m {
            tile4::<T, W>(fma, &mut c[r * ldc + c0..], ldc, a, r, b, c0);
            r += 4;
        }
        if r + 2 <= m {
            tile2::<T, W>(fma, &mut c[r * ldc + c0..], ldc, a, r, b, c0);
            r += 2;
        }
        if r < m {
            tile1::<T, W>(fma, &mut c[r * ldc + c0..], ldc, a, r, b, c0);
        }
    }
    end
}

/// The part of [`small_matmul`] from column `c0` on, one row at a time.
#[inline(always)]
fn columns<T: Gemm>(fma: bool, c: &mut [T], ldc: usize, a: View<T>, b: View<T>, c0: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if c0 == n {
        return;
    }
    for r in 0..m {
        let out = &mut c[r * ldc + c0..r * ldc + n];
        for (p, &x) in a.data[r * a.rs..][..k].iter().enumerate() {
            let row = &b.data[p * b.rs + c0..][..n - c0];
            for (o, &y) in out.iter_mut().zip(row) {
                *o = madd(fma, x, y, *o);
            }
        }
    }
}

/// The right operand of [`small_matmul_packed`]: its columns in panels of [`PACK_BYTES`],
/// each panel's rows contiguous, and the columns past the last whole panel as given. Packed
/// once for many products: read in place, a panel's rows are a row of the matrix apart (4 KiB
/// at 1024 float32 columns), each on a page of its own, which the hardware prefetchers do not
/// follow (BPTT at H=1024 ran 10-20% faster packed).
pub struct Packed<'a, T> {
    panels: Vec<T>,
    b: View<'a, T>,
}

/// Bytes of the columns of a [`Packed`] panel: the widest tile's, which the narrower ones
/// divide.
const PACK_BYTES: usize = PANEL_BYTES_512;

impl<'a, T: Gemm> Packed<'a, T> {
    /// Packs `b`, which must have contiguous rows.
    pub fn new(b: View<'a, T>) -> Self {
        assert!(b.cs == 1, "b must have contiguous rows");
        let w = PACK_BYTES / std::mem::size_of::<T>();
        let mut panels = Vec::with_capacity(b.rows * (b.cols / w * w));
        for c0 in (0..b.cols / w * w).step_by(w) {
            for p in 0..b.rows {
                panels.extend_from_slice(&b.data[p * b.rs + c0..][..w]);
            }
        }
        Packed { panels, b }
    }
}

/// [`small_matmul`] with `b` packed: the same operations in the same order, so the same bits.
pub fn small_matmul_packed<T: Gemm>(c: &mut [T], ldc: usize, a: View<T>, b: &Packed<T>) {
    let (k, n) = (b.b.rows, b.b.cols);
    let w = PACK_BYTES / std::mem::size_of::<T>();
    let full = n / w * w;
    if k == 0 || a.rows == 0 {
        return; // nothing to add
    }
    for (q, panel) in b.panels.chunks_exact(k * w).enumerate() {
        small_matmul(&mut c[q * w..], ldc, a, View::new(panel, k, w));
    }
    if full < n {
        let rest = View::strided(&b.b.data[full..], k, n - full, b.b.rs, 1);
        small_matmul(&mut c[full..], ldc, a, rest);
    }
}

/// `x y + z`: fused when the target has FMA, else a multiply and an add (not a software `fma`).
#[inline(always)]
fn madd<T: Gemm>(fma: bool, x: T, y: T, z: T) -> T {
    if fma {
        x.mul_add(y, z)
    } else {
        z + x * y
    }
}

/// Defines `$name`: rows `r..` of `a` (one per accumulator `$acc`, at row offset `$i`) times
/// the panel of `W` columns of `b` at column `c0`, added to the block at the start of `c`
/// (row stride `ldc`). One named accumulator and one lane loop per row, not a loop over rows:
/// each lane loop is then unrolled into vector registers on its own (a loop over rows is not,
/// and leaves the tile in memory).
macro_rules! tile {
    ($name:ident, $($acc:ident $i:literal),+) => {
        #[inline(always)]
        fn $name<T: Gemm, const W: usize>(fma: bool, c: &mut [T], ldc: usize, a: View<T>, r: usize, b: View<T>, c0: usize) {
            let (k, lda) = (a.cols, a.rs);
            let a = &a.data[r * lda..];
            $(
                let $acc: &[T] = &a[$i * lda..][..k];
                let mut $acc: ([T; W], &[T]) = (c[$i * ldc..][..W].try_into().unwrap(), $acc);
            )+
            for p in 0..k {
                let panel: &[T; W] = b.data[p * b.rs + c0..][..W].try_into().unwrap();
                $(
                    let x = $acc.1[p];
                    for (o, &y) in $acc.0.iter_mut().zip(panel) {
                        *o = madd(fma, x, y, *o);
                    }
                )+
            }
            $( c[$i * ldc..][..W].copy_from_slice(&$acc.0); )+
        }
    };
}
tile!(tile6, r0 0, r1 1, r2 2, r3 3, r4 4, r5 5);
tile!(tile4, r0 0, r1 1, r2 2, r3 3);
tile!(tile2, r0 0, r1 1);
tile!(tile1, r0 0);

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: View<f64>, b: View<f64>) -> Vec<f64> {
        let mut c = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                for p in 0..a.cols {
                    c[i * b.cols + j] += a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs];
                }
            }
        }
        c
    }

    #[test]
    fn products_of_strided_and_transposed_views() {
        // Small integers: every product and sum is exact, so any order gives the same bits.
        let a: Vec<f64> = (0..35).map(|x| (x % 7) as f64 - 3.0).collect();
        let b: Vec<f64> = (0..40).map(|x| (x % 5) as f64 - 2.0).collect();
        let av = View::new(&a, 5, 7);
        let bv = View::strided(&b, 7, 4, 5, 1);
        let mut c = vec![1.0; 5 * 6];
        matmul(&mut c, 6, av, bv, false);
        let want = naive(av, bv);
        for i in 0..5 {
            assert_eq!(&c[i * 6..i * 6 + 4], &want[i * 4..i * 4 + 4]);
            assert_eq!(&c[i * 6 + 4..i * 6 + 6], &[1.0, 1.0]);
        }
        // a^T a, accumulated onto ones.
        let mut g = vec![1.0; 49];
        matmul(&mut g, 7, av.t(), av, true);
        let want = naive(av.t(), av);
        assert!(g.iter().zip(&want).all(|(x, w)| *x == w + 1.0));
    }

    /// `n` values in [-0.5, 0.5] that a multiplier scatters, different bits everywhere.
    fn spread<T: Real>(n: usize, mul: usize) -> Vec<T> {
        (0..n)
            .map(|x| T::of(((x * mul) % 1000) as f64 / 999.0 - 0.5))
            .collect()
    }

    #[test]
    fn blocked_products_give_the_same_bits_for_every_thread_count() {
        // 300 x 200 by 200 x 90: five row blocks of up to 64 rows, over the pool.
        let (a, b): (Vec<f64>, Vec<f64>) = (spread(300 * 200, 7919), spread(200 * 90, 104729));
        let (av, bv) = (View::new(&a, 300, 200), View::new(&b, 200, 90));
        let run = |threads| {
            crate::runtime::pool::set_num_threads(threads);
            let mut c = vec![0.0; 300 * 90];
            matmul(&mut c, 90, av, bv, false);
            c
        };
        let one = run(1);
        assert_eq!(one, run(3));
        let want = naive(av, bv);
        assert!(one.iter().zip(&want).all(|(x, w)| (x - w).abs() <= 1e-12));
    }

    #[test]
    fn gram_products_mirror_the_lower_triangle_for_every_thread_count() {
        // 600 x 40: three blocks of up to 256 rows over the pool; 70 x 9 and 5 x 3 on the
        // calling thread. Small integers: every order gives the same exact sums.
        for (m, k) in [(600, 40), (70, 9), (5, 3)] {
            let a: Vec<f64> = (0..m * k).map(|x| ((x * 31) % 9) as f64 - 4.0).collect();
            let av = View::new(&a, m, k);
            let want = naive(av, av.t());
            for threads in [1, 3] {
                crate::runtime::pool::set_num_threads(threads);
                let mut c = vec![7.0; m * m];
                matmul_gram(&mut c, av);
                assert_eq!(c, want, "{m} x {k}, {threads} threads");
            }
        }
        // float32 values summed in rounding order: the mirror of the computed triangle
        let (m, k) = (520, 300);
        let a: Vec<f32> = (0..m * k)
            .map(|x| ((x * 7919) % 1000) as f32 / 999.0 - 0.5)
            .collect();
        let av = View::new(&a, m, k);
        let (mut g, mut full) = (vec![0.0f32; m * m], vec![0.0f32; m * m]);
        matmul_gram(&mut g, av);
        matmul(&mut full, m, av, av.t(), false);
        for i in 0..m {
            for j in 0..m {
                let (lo, hi) = (i.max(j), i.min(j));
                assert_eq!(g[i * m + j], full[lo * m + hi], "({i}, {j})");
            }
        }
    }

    #[test]
    fn wide_blocks_give_the_bits_of_one_piece() {
        // 3000 rows: eight blocks of 384 (the last 312) against the product in one piece.
        let (a, b): (Vec<f32>, Vec<f32>) = (spread(3000 * 150, 7919), spread(150 * 70, 104729));
        let (av, bv) = (View::new(&a, 3000, 150), View::new(&b, 150, 70));
        let (mut whole, mut wide) = (vec![0.25f32; 3000 * 70], vec![0.25f32; 3000 * 70]);
        matmul_serial(&mut whole, 70, av, bv, true);
        matmul_wide(&mut wide, 70, av, bv, true);
        assert_eq!(whole, wide);
    }

    #[test]
    fn an_empty_inner_dimension_gives_zeros_or_leaves_c() {
        let e: Vec<f64> = vec![];
        let mut c = vec![5.0; 6];
        matmul(&mut c, 3, View::new(&e, 2, 0), View::new(&e, 0, 3), true);
        assert_eq!(c, vec![5.0; 6]);
        matmul(&mut c, 3, View::new(&e, 2, 0), View::new(&e, 0, 3), false);
        assert_eq!(c, vec![0.0; 6]);
    }

    #[test]
    fn small_matmul_tiles_and_tails_sum_in_order() {
        // 13 x 5 by 5 x 86: tiles of 6 rows, then one each of 4, 2 and 1; in float64 panels
        // (two of 32 columns with AVX-512, ten of 8 without), a half panel and single columns.
        // Small integers, so every order gives the same exact sums.
        let a: Vec<f64> = (0..13 * 5).map(|x| (x % 7) as f64 - 3.0).collect();
        let b: Vec<f64> = (0..5 * 88).map(|x| (x % 11) as f64 - 5.0).collect();
        let (av, bv) = (View::new(&a, 13, 5), View::strided(&b, 5, 86, 88, 1));
        let mut c = vec![2.0; 13 * 87];
        small_matmul(&mut c, 87, av, bv);
        let want = naive(av, bv);
        for i in 0..13 {
            let row = &c[i * 87..][..87];
            assert!(row[..86]
                .iter()
                .zip(&want[i * 86..])
                .all(|(x, w)| *x == w + 2.0));
            assert_eq!(row[86], 2.0, "column past n written");
        }
    }

    #[test]
    fn a_packed_right_operand_gives_the_same_bits() {
        // float32 and float64, columns of no, one and two whole pack panels (64 float32 or 32
        // float64) with and without a rest, an inner dimension of 0, rows in every tile height,
        // and c's rows longer than the product's (ldc > n)
        fn check<T: Gemm>(m: usize, k: usize, n: usize) {
            let a: Vec<T> = (0..m * k)
                .map(|x| T::of(((x * 37) % 101) as f64 / 7.0 - 6.0))
                .collect();
            let b: Vec<T> = (0..k * n)
                .map(|x| T::of(((x * 53) % 97) as f64 / 9.0 - 5.0))
                .collect();
            let ldc = n + 3;
            let mut plain = vec![T::of(0.5); m * ldc];
            let mut packed = plain.clone();
            small_matmul(&mut plain, ldc, View::new(&a, m, k), View::new(&b, k, n));
            let pb = Packed::new(View::new(&b, k, n));
            small_matmul_packed(&mut packed, ldc, View::new(&a, m, k), &pb);
            assert!(
                plain
                    .iter()
                    .zip(&packed)
                    .all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits()),
                "{m} {k} {n}"
            );
        }
        for (m, k, n) in [
            (13, 40, 102),
            (7, 5, 64),
            (16, 33, 128),
            (3, 0, 70),
            (0, 5, 70),
            (1, 9, 10),
            (11, 17, 131),
        ] {
            check::<f32>(m, k, n);
            check::<f64>(m, k, n);
        }
    }

    #[test]
    fn small_matmul_rows_do_not_depend_on_their_tile() {
        // Every row computed with twelve others (in tiles of 6, 4, 2 and 1 rows) equals it
        // computed alone, bit for bit; in float32, 102 columns are whole panels (of 64 with
        // AVX-512, else 16), a half panel where one fits, and single columns.
        let a: Vec<f32> = (0..13 * 40)
            .map(|x| ((x * 37) % 101) as f32 / 7.0 - 6.0)
            .collect();
        let b: Vec<f32> = (0..40 * 102)
            .map(|x| ((x * 53) % 97) as f32 / 9.0 - 5.0)
            .collect();
        let bv = View::new(&b, 40, 102);
        let mut all = vec![0.5f32; 13 * 102];
        small_matmul(&mut all, 102, View::new(&a, 13, 40), bv);
        for i in 0..13 {
            let mut one = vec![0.5f32; 102];
            small_matmul(&mut one, 102, View::new(&a[i * 40..], 1, 40), bv);
            assert_eq!(&all[i * 102..][..102], &one[..]);
        }
        let want = naive(
            View::new(&a.iter().map(|&x| x as f64).collect::<Vec<_>>(), 13, 40),
            View::new(&b.iter().map(|&x| x as f64).collect::<Vec<_>>(), 40, 102),
        );
        assert!(all
            .iter()
            .zip(&want)
            .all(|(x, w)| (*x as f64 - 0.5 - w).abs() <= 1e-4 * (1.0 + w.abs())));
    }
}
