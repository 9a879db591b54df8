//! Matrix products through `matrixmultiply`, over strided views of plain slices.
//!
//! `matrixmultiply` was chosen for the kernels' GEMM-shaped products (BPTT's) by measuring
//! it against `gemm` 0.18 on those shapes: 1.3x to 1.7x faster in float64 and up to 1.7x in
//! float32 on the machine of `docs/benchmarks.md` (`gemm` uses AVX-512 only on nightly Rust),
//! with one small dependency. Neither crate suits a product with one or two columns (a
//! matrix-vector product): there both spend their time packing, so such products are the
//! hand-written [`rows_times`] loop.
//!
//! `matrixmultiply` runs single-threaded (its `threading` feature is off). A large product is
//! cut into fixed blocks of [`BLOCK_ROWS`] output rows, run over the gradfast pool: never the
//! summed dimension, so every output element is summed in one fixed order and the bits do not
//! depend on the thread count.

use crate::pool::for_each_task;
use crate::Real;

/// Output rows per parallel task: fixed, so the blocks do not depend on the thread count.
pub const BLOCK_ROWS: usize = 64;
/// Products of fewer multiply-adds run on the calling thread: about 0.1 ms of work, the
/// scale at which waking the pool pays.
const PARALLEL_MIN_FMAS: usize = 1 << 22;

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
/// products in blocks of [`BLOCK_ROWS`] rows over the pool.
pub fn matmul<T: Gemm>(c: &mut [T], ldc: usize, a: View<T>, b: View<T>, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m <= BLOCK_ROWS || m.saturating_mul(k).saturating_mul(n) < PARALLEL_MIN_FMAS {
        return matmul_serial(c, ldc, a, b, accumulate);
    }
    let tasks: Vec<(usize, &mut [T])> = c
        .chunks_mut(BLOCK_ROWS * ldc)
        .take(m.div_ceil(BLOCK_ROWS))
        .enumerate()
        .collect();
    for_each_task(tasks, |(j, cj)| {
        let rows = BLOCK_ROWS.min(m - j * BLOCK_ROWS);
        matmul_serial(cj, ldc, a.row_block(j * BLOCK_ROWS, rows), b, accumulate)
    });
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

/// Output elements [`rows_times`] keeps in registers across the whole sum.
const TILE: usize = 32;

crate::simd! {
    /// `out += v m`, `m` row-major `v.len() x out.len()`: a vector times a matrix, summed
    /// over the rows of `m` in order. Tiles of [`TILE`] outputs stay in registers while the
    /// rows stream past; each step is a contiguous multiply-add that vectorizes.
    pub fn rows_times<T: Real>(out: &mut [T], v: &[T], m: &[T]) {
        let n = out.len();
        if n == 0 {
            return;
        }
        let mut tiles = out.chunks_exact_mut(TILE);
        for (t, tile) in tiles.by_ref().enumerate() {
            let mut acc = [T::ZERO; TILE];
            acc.copy_from_slice(tile);
            for (&vk, row) in v.iter().zip(m.chunks_exact(n)) {
                let r = &row[t * TILE..][..TILE];
                for l in 0..TILE {
                    acc[l] = acc[l] + vk * r[l];
                }
            }
            tile.copy_from_slice(&acc);
        }
        let rest = tiles.into_remainder();
        let start = n - rest.len();
        for (&vk, row) in v.iter().zip(m.chunks_exact(n)) {
            for (o, &r) in rest.iter_mut().zip(&row[start..]) {
                *o = *o + vk * r;
            }
        }
    }
}

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

    #[test]
    fn blocked_products_give_the_same_bits_for_every_thread_count() {
        // 300 x 200 by 200 x 90: five row blocks of up to 64 rows, over the pool.
        let a: Vec<f64> = (0..300 * 200)
            .map(|x| ((x * 7919) % 1000) as f64 / 999.0 - 0.5)
            .collect();
        let b: Vec<f64> = (0..200 * 90)
            .map(|x| ((x * 104729) % 1000) as f64 / 999.0 - 0.5)
            .collect();
        let (av, bv) = (View::new(&a, 300, 200), View::new(&b, 200, 90));
        let run = |threads| {
            crate::pool::set_num_threads(threads);
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
    fn an_empty_inner_dimension_gives_zeros_or_leaves_c() {
        let e: Vec<f64> = vec![];
        let mut c = vec![5.0; 6];
        matmul(&mut c, 3, View::new(&e, 2, 0), View::new(&e, 0, 3), true);
        assert_eq!(c, vec![5.0; 6]);
        matmul(&mut c, 3, View::new(&e, 2, 0), View::new(&e, 0, 3), false);
        assert_eq!(c, vec![0.0; 6]);
    }

    #[test]
    fn rows_times_tiles_and_tail_sum_in_row_order() {
        // 70 outputs: two tiles of 32 and a tail of 6; small integers, so sums are exact.
        let m: Vec<f64> = (0..5 * 70).map(|x| (x % 11) as f64 - 5.0).collect();
        let v = [1.0, -2.0, 0.5, 3.0, -1.0];
        let mut out = vec![2.0; 70];
        rows_times(&mut out, &v, &m);
        for (j, o) in out.iter().enumerate() {
            let want: f64 = 2.0 + (0..5).map(|k| v[k] * m[k * 70 + j]).sum::<f64>();
            assert_eq!(*o, want);
        }
    }

    #[test]
    fn rows_times_is_a_vector_matrix_product() {
        let m: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let mut out = vec![1.0f32; 4];
        rows_times(&mut out, &[1.0, -1.0, 2.0], &m);
        // rows 0..4, 4..8, 8..12 weighted 1, -1, 2, plus the ones
        assert_eq!(out, vec![13.0, 15.0, 17.0, 19.0]);
    }
}
