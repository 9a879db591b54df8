//! Linear least squares by full-batch gradient descent and by mini-batch SGD with momentum,
//! as `gradfast.reference.linear`: the whole loop over epochs and batches in one call.
//!
//! The gradient `X^T (X W - Y) / n` of `W` `(d, k)` is two matrix products. With `k` of at
//! least [`GEMM_MIN_K`] columns they go through `matrixmultiply`; narrower `W` (a vector
//! being the usual case) makes them matrix-vector products, where a GEMM spends its time
//! packing `X` (measured in `docs/benchmarks.md`), so each row `x` is read once instead:
//! `r = x W - y`, then `G += x^T r`. Full-batch descent on narrow `X` that fits in cache
//! (see [`COLUMNS_MAX_D`]) works down the columns of `X` transposed instead
//! ([`descend_columns`]). Sums over rows run in fixed blocks combined in index order (or as
//! one serial product), so every thread count gives the same bits.

use crate::runtime::matmul::{matmul, Gemm, View};
use crate::runtime::pool::map_tasks;
use crate::runtime::random::Stream;
use crate::runtime::reduce::fold_lanes;
use crate::runtime::scratch::{with_kept, Scratch};
use crate::Real;

/// From this many columns of `W` the products are GEMMs.
pub const GEMM_MIN_K: usize = 8;
/// Rows per block of the row loop's sums: fixed, so the sums do not depend on the threads.
pub const BLOCK_ROWS: usize = 512;
/// Full-batch descent works down the columns of `X` transposed ([`descend_columns`]) for
/// `X` of fewer than this many columns, rows of fewer than [`COLUMNS_MAX_ROW_BYTES`] and at
/// most [`COLUMNS_MAX_BYTES`] in all; the row loop beyond (see `docs/benchmarks.md`).
const COLUMNS_MAX_D: usize = 32;
const COLUMNS_MAX_ROW_BYTES: usize = 192;
const COLUMNS_MAX_BYTES: usize = 8 << 20;
/// Blocks of the column path: at most this many rows and [`COLUMN_BYTES`] of `X`, which the
/// block's second pass reads back from L2.
const COLUMN_ROWS: usize = 4096;
const COLUMN_BYTES: usize = 256 << 10;

/// `gradient_descent`'s hyper-parameters, named as the Python arguments.
#[derive(Clone, Copy, Debug)]
pub struct GradientDescentArgs {
    pub learning_rate: f64,
    pub epochs: u64,
}

/// `sgd_optimizer`'s hyper-parameters, named as the Python arguments (`seed` drawn already).
#[derive(Clone, Copy, Debug)]
pub struct SgdArgs {
    pub learning_rate: f64,
    pub batch_size: usize,
    pub momentum: f64,
    pub epochs: u64,
    pub seed: u64,
}

/// The problem: `x` `(n, d)`, `y` `(n, k)`, both C order.
#[derive(Clone, Copy)]
pub struct Problem<'a, T> {
    pub x: &'a [T],
    pub y: &'a [T],
    pub n: usize,
    pub d: usize,
    pub k: usize,
}

crate::simd! {
    /// `gt += sum_i (x_i W - y_i)^T x_i` over the rows `i` listed, `W` given as `wt` (`k x d`):
    /// for each column `j`, `r_i = x_i . wt_j - y_ij` and `gt_j += r_i x_i`. Four rows at a
    /// time: one pass over `gt_j` for four rows. The dot products take two registers of lanes
    /// a row: 16 lanes, or 8 for float64 below AVX-512 (16 there took all sixteen AVX2
    /// registers for the sums alone, and spilled).
    fn rows_gradient<T: Real>(gt: &mut [T], x: &[T], y: &[T], wt: &[T], idx: &[usize], k: usize) {
        let avx512 = multiversion::target::target_cfg_f!(target_feature = "avx512f");
        let narrow = std::mem::size_of::<T>() == 8 && !avx512;
        if narrow {
            rows_gradient_in::<T, 8>(gt, x, y, wt, idx, k)
        } else {
            rows_gradient_in::<T, 16>(gt, x, y, wt, idx, k)
        }
    }
}

/// [`rows_gradient`] with dot products in `L` lanes.
#[inline(always)]
fn rows_gradient_in<T: Real, const L: usize>(
    gt: &mut [T],
    x: &[T],
    y: &[T],
    wt: &[T],
    idx: &[usize],
    k: usize,
) {
    let d = wt.len() / k;
    let quads = idx.chunks_exact(4);
    let rest = quads.remainder();
    for q in quads {
        let xs = [q[0], q[1], q[2], q[3]].map(|i| &x[i * d..][..d]);
        for (j, (w, g)) in wt.chunks_exact(d).zip(gt.chunks_exact_mut(d)).enumerate() {
            let dots = dot4::<T, L>(xs, w);
            let r: [T; 4] = std::array::from_fn(|m| dots[m] - y[q[m] * k + j]);
            let rows = xs[0].iter().zip(xs[1]).zip(xs[2].iter().zip(xs[3]));
            for (g, ((&a, &b), (&c, &e))) in g.iter_mut().zip(rows) {
                *g = *g + ((r[0] * a + r[1] * b) + (r[2] * c + r[3] * e));
            }
        }
    }
    // The last rows one at a time (the four-row dot product on one row: the same lanes).
    for &i in rest {
        let xi = &x[i * d..][..d];
        for (j, (w, g)) in wt.chunks_exact(d).zip(gt.chunks_exact_mut(d)).enumerate() {
            let r = dot4::<T, L>([xi; 4], w)[0] - y[i * k + j];
            for (g, &xv) in g.iter_mut().zip(xi) {
                *g = *g + r * xv;
            }
        }
    }
}

/// Four dot products with one vector `w`, in `L` lanes each (a power of two), folded in a
/// fixed order.
#[inline(always)]
fn dot4<T: Real, const L: usize>(xs: [&[T]; 4], w: &[T]) -> [T; 4] {
    let (mut a0, mut a1, mut a2, mut a3) = ([T::ZERO; L], [T::ZERO; L], [T::ZERO; L], [T::ZERO; L]);
    let full = w.len() / L * L;
    for s in (0..full).step_by(L) {
        let wl = &w[s..s + L];
        let (x0, x1, x2, x3) = (
            &xs[0][s..s + L],
            &xs[1][s..s + L],
            &xs[2][s..s + L],
            &xs[3][s..s + L],
        );
        for l in 0..L {
            a0[l] = a0[l] + x0[l] * wl[l];
            a1[l] = a1[l] + x1[l] * wl[l];
            a2[l] = a2[l] + x2[l] * wl[l];
            a3[l] = a3[l] + x3[l] * wl[l];
        }
    }
    // The rest: half a block of lanes at once, then the last columns into sums of their own,
    // so that the lanes are indexed by constants only and stay in registers (a loop putting
    // column `full + l` in lane `l` kept them on the stack). A lane sum is never -0, so adding
    // a zero leaves it as it is. Written out like the loop above: one helper for both, over an
    // array of the four rows' lanes, compiled to slower code.
    let mut s = full;
    if w.len() - s >= L / 2 {
        let h = L / 2;
        let (wl, x0, x1, x2, x3) = (
            &w[s..s + h],
            &xs[0][s..s + h],
            &xs[1][s..s + h],
            &xs[2][s..s + h],
            &xs[3][s..s + h],
        );
        for l in 0..h {
            a0[l] = a0[l] + x0[l] * wl[l];
            a1[l] = a1[l] + x1[l] * wl[l];
            a2[l] = a2[l] + x2[l] * wl[l];
            a3[l] = a3[l] + x3[l] * wl[l];
        }
        s += h;
    }
    let mut t = [T::ZERO; 4];
    for c in s..w.len() {
        for (t, x) in t.iter_mut().zip(xs) {
            *t = *t + x[c] * w[c];
        }
    }
    [
        fold_lanes(a0) + t[0],
        fold_lanes(a1) + t[1],
        fold_lanes(a2) + t[2],
        fold_lanes(a3) + t[3],
    ]
}

/// `W` `(d, k)` transposed into `wt` `(k, d)`.
fn transpose_into<T: Real>(wt: &mut [T], w: &[T], d: usize, k: usize) {
    for c in 0..d {
        for j in 0..k {
            wt[j * d + c] = w[c * k + j];
        }
    }
}

/// Scratch for the gradient, allocated once per call.
struct Work<T> {
    /// `W^T` and the summed `G^T` (`k x d`), row loop only.
    wt: Vec<T>,
    gt: Vec<T>,
    /// One `G^T` per block of rows, and the row indices `0..n` (gradient descent, row loop).
    partials: Vec<T>,
    all: Vec<usize>,
    /// `X W - Y` (`rows x k`) and `G` (`d x k`), GEMM only.
    r: Vec<T>,
    g: Vec<T>,
    /// A batch's rows of `X` and `Y`, gathered for the GEMM (SGD only).
    xb: Vec<T>,
    yb: Vec<T>,
    /// The traffic by which the pool judges a full-batch gradient: `X` once per epoch, for
    /// every epoch of the call, since the epochs follow each other with the threads awake.
    traffic: usize,
}

impl<T: Gemm> Work<T> {
    /// For sums over all `n` rows (`batch = None`) in each of `epochs`, or over batches of at
    /// most `batch` rows.
    fn new(p: &Problem<T>, batch: Option<usize>, epochs: u64) -> Self {
        let Problem { n, d, k, .. } = *p;
        let gemm = k >= GEMM_MIN_K;
        let z = |len: usize, on: bool| vec![T::ZERO; if on { len } else { 0 }];
        let blocks = if batch.is_none() {
            n.div_ceil(BLOCK_ROWS)
        } else {
            0
        };
        let rows = batch.unwrap_or(n);
        Work {
            wt: z(k * d, !gemm),
            gt: z(k * d, !gemm),
            partials: z(blocks * k * d, !gemm),
            all: if gemm || batch.is_some() {
                Vec::new()
            } else {
                (0..n).collect()
            },
            r: z(rows * k, gemm),
            g: z(d * k, gemm),
            xb: z(rows * d, gemm && batch.is_some()),
            yb: z(rows * k, gemm && batch.is_some()),
            traffic: std::mem::size_of_val(p.x).saturating_mul(epochs as usize),
        }
    }

    /// `G = X_R^T (X_R W - Y_R)` for the rows `R` listed, or all rows; [`Self::grad`] reads it.
    fn gradient(&mut self, p: &Problem<T>, w: &[T], rows: Option<&[usize]>) {
        let Problem { x, y, n, d, k } = *p;
        if k >= GEMM_MIN_K {
            let (xs, ys, m) = match rows {
                None => (x, y, n),
                Some(idx) => {
                    for (slot, &i) in idx.iter().enumerate() {
                        self.xb[slot * d..][..d].copy_from_slice(&x[i * d..][..d]);
                        self.yb[slot * k..][..k].copy_from_slice(&y[i * k..][..k]);
                    }
                    (
                        &self.xb[..idx.len() * d],
                        &self.yb[..idx.len() * k],
                        idx.len(),
                    )
                }
            };
            let r = &mut self.r[..m * k];
            matmul(r, k, View::new(xs, m, d), View::new(w, d, k), false);
            r.iter_mut().zip(ys).for_each(|(r, &y)| *r = *r - y);
            matmul(
                &mut self.g,
                k,
                View::new(xs, m, d).t(),
                View::new(r, m, k),
                false,
            );
            return;
        }
        transpose_into(&mut self.wt, w, d, k);
        let wt = &self.wt;
        self.gt.fill(T::ZERO);
        match rows {
            Some(idx) => rows_gradient(&mut self.gt, x, y, wt, idx, k),
            None => {
                let all = &self.all;
                let tasks: Vec<(usize, &mut [T])> =
                    self.partials.chunks_mut(k * d).enumerate().collect();
                map_tasks(tasks, self.traffic, |(b, part)| {
                    part.fill(T::ZERO);
                    let block = &all[b * BLOCK_ROWS..((b + 1) * BLOCK_ROWS).min(n)];
                    rows_gradient(part, x, y, wt, block, k);
                });
                for part in self.partials.chunks(k * d) {
                    self.gt.iter_mut().zip(part).for_each(|(g, &p)| *g = *g + p);
                }
            }
        }
    }

    /// Element `(c, j)` of the last gradient.
    fn grad(&self, c: usize, j: usize, d: usize, k: usize) -> T {
        if k >= GEMM_MIN_K {
            self.g[c * k + j]
        } else {
            self.gt[j * d + c]
        }
    }
}

/// The rows of an epoch sorted by their keys, ties by index: the reference's stable argsort.
/// The keys are uniform 64-bit words, so a counting pass on their top bits (at least as many
/// buckets as rows) leaves buckets of a row or two, sorted in place: linear time, where a
/// comparison sort of 20,000 rows took most of an SGD epoch.
#[derive(Default)]
struct Shuffle {
    keys: Vec<(u64, usize)>,
    sorted: Vec<(u64, usize)>,
    starts: Vec<usize>,
    next: Vec<usize>,
    order: Vec<usize>,
    shift: u32,
}

/// Kept between calls: its buffers take some 64 bytes a row.
impl Scratch for Shuffle {
    fn bytes(&self) -> usize {
        let pairs = self.keys.capacity() + self.sorted.capacity();
        let words = self.starts.capacity() + self.next.capacity() + self.order.capacity();
        pairs * std::mem::size_of::<(u64, usize)>() + words * std::mem::size_of::<usize>()
    }
}

impl Shuffle {
    /// Sizes the buffers for `n` rows.
    fn resize(&mut self, n: usize) {
        let bits = n.next_power_of_two().trailing_zeros().max(1);
        self.sorted.resize(n, (0, 0));
        self.starts.resize((1 << bits) + 1, 0);
        self.next.resize((1 << bits) + 1, 0);
        self.shift = 64 - bits;
    }

    /// Rows `0..n` in the order of `(key(i), i)`.
    fn order(&mut self, key: impl Fn(usize) -> u64) -> &[usize] {
        let n = self.sorted.len();
        self.keys.clear();
        self.keys.extend((0..n).map(|i| (key(i), i)));
        let bucket = |k: u64| (k >> self.shift) as usize;
        self.starts.fill(0);
        for &(k, _) in &self.keys {
            self.starts[bucket(k) + 1] += 1;
        }
        for b in 1..self.starts.len() {
            self.starts[b] += self.starts[b - 1];
        }
        // Rows enter their bucket in index order; each bucket is then sorted on (key, index).
        self.next.copy_from_slice(&self.starts);
        for &(k, i) in &self.keys {
            let b = bucket(k);
            self.sorted[self.next[b]] = (k, i);
            self.next[b] += 1;
        }
        for w in self.starts.windows(2) {
            if w[1] - w[0] > 1 {
                self.sorted[w[0]..w[1]].sort_unstable();
            }
        }
        self.order.clear();
        self.order.extend(self.sorted.iter().map(|&(_, i)| i));
        &self.order
    }
}

/// `epochs` steps of `W -= learning_rate X^T (X W - Y) / n`. `go_on()` is asked between
/// epochs; when it says no (an interrupt), the loop stops with `w` after a whole number of
/// epochs.
pub fn gradient_descent<T: Gemm>(
    p: Problem<T>,
    w: &mut [T],
    args: &GradientDescentArgs,
    go_on: &mut impl FnMut() -> bool,
) {
    let GradientDescentArgs {
        learning_rate,
        epochs,
    } = *args;
    let Problem { n, d, k, .. } = p;
    if d * k == 0 {
        return;
    }
    let row_bytes = d * std::mem::size_of::<T>();
    let narrow = d < COLUMNS_MAX_D && row_bytes < COLUMNS_MAX_ROW_BYTES;
    if narrow && k < GEMM_MIN_K && n * row_bytes <= COLUMNS_MAX_BYTES {
        return descend_columns(p, w, learning_rate, epochs, go_on);
    }
    let mut work = Work::new(&p, None, epochs);
    let (n_t, lr_t) = (T::of(n as f64), T::of(learning_rate));
    for e in 0..epochs {
        if e > 0 && !go_on() {
            return;
        }
        work.gradient(&p, w, None);
        for c in 0..d {
            for j in 0..k {
                // The reference's order: divide by n, times lr, subtract.
                w[c * k + j] = w[c * k + j] - work.grad(c, j, d, k) / n_t * lr_t;
            }
        }
    }
}

/// [`gradient_descent`] for narrow `X` that fits in cache (see [`COLUMNS_MAX_D`]), where the
/// row loop's dot products are short. `X` is transposed once, and each block of rows takes
/// `r = X W - y` as axpys down the columns of `X` and `G = X^T r` as dot products along them,
/// both vectorized across rows. The blocks are fixed by the shape and combined in index
/// order: the same bits for every thread count.
fn descend_columns<T: Gemm>(
    p: Problem<T>,
    w: &mut [T],
    learning_rate: f64,
    epochs: u64,
    go_on: &mut impl FnMut() -> bool,
) {
    let Problem { x, y, n, d, k } = p;
    let mut xt = vec![T::ZERO; d * n];
    for (i, row) in x.chunks_exact(d).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            xt[c * n + i] = v;
        }
    }
    let block = (COLUMN_BYTES / (d * std::mem::size_of::<T>())).clamp(64, COLUMN_ROWS);
    let blocks: Vec<usize> = (0..n).step_by(block).collect();
    let (n_t, lr_t) = (T::of(n as f64), T::of(learning_rate));
    let mut g = vec![T::ZERO; d * k];
    for e in 0..epochs {
        if e > 0 && !go_on() {
            return;
        }
        // X once per epoch, every epoch of the call (as `Work::traffic`)
        let traffic = std::mem::size_of_val(x).saturating_mul(epochs as usize);
        let parts = map_tasks(blocks.clone(), traffic, |start| {
            let rows = block.min(n - start);
            let mut part = vec![T::ZERO; d * k];
            columns_gradient(&mut part, &xt, y, w, (start, rows), (n, d, k));
            part
        });
        g.fill(T::ZERO);
        for part in &parts {
            g.iter_mut().zip(part).for_each(|(g, &q)| *g = *g + q);
        }
        for (w, &g) in w.iter_mut().zip(&g) {
            // The reference's order: divide by n, times lr, subtract.
            *w = *w - g / n_t * lr_t;
        }
    }
}

crate::simd! {
    /// `part = X_B^T (X_B W - Y_B)` (`d x k`, as `W`) for the block `B` of `rows` rows from
    /// `start`, from `xt` (`X` transposed, `d x n`).
    fn columns_gradient<T: Real>(part: &mut [T], xt: &[T], y: &[T], w: &[T], (start, rows): (usize, usize), (n, d, k): (usize, usize, usize)) {
        for j in 0..k {
            // r = X_B w_j - y_B, a column at a time
            let w0 = w[j];
            let mut r: Vec<T> = xt[start..][..rows].iter().map(|&v| v * w0).collect();
            for c in 1..d {
                let wc = w[c * k + j];
                let col = &xt[c * n + start..][..rows];
                r.iter_mut().zip(col).for_each(|(r, &v)| *r = *r + v * wc);
            }
            if k == 1 {
                r.iter_mut().zip(&y[start..]).for_each(|(r, &y)| *r = *r - y);
            } else {
                let ys = y[start * k + j..].iter().step_by(k);
                r.iter_mut().zip(ys).for_each(|(r, &y)| *r = *r - y);
            }
            for c in 0..d {
                part[c * k + j] = dot(&xt[c * n + start..][..rows], &r);
            }
        }
    }
}

/// Lanes of [`dot`]: four AVX-512 registers of float32, enough independent sums to keep the
/// multiply-adds busy (sixteen lanes compiled to a mix of 2- and 8-wide code).
const DOT_LANES: usize = 64;

/// The dot product of two slices of one length in [`DOT_LANES`] lanes, summed pairwise by
/// [`fold`]: lane `j` with lane `j + n` for n = 32, 16, ..., 1.
#[inline(always)]
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; DOT_LANES];
    let (ca, cb) = (a.chunks_exact(DOT_LANES), b.chunks_exact(DOT_LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (a, b) in ca.zip(cb) {
        for ((s, &a), &b) in acc.iter_mut().zip(a).zip(b) {
            *s = *s + a * b;
        }
    }
    for ((s, &a), &b) in acc.iter_mut().zip(ra).zip(rb) {
        *s = *s + a * b;
    }
    fold_lanes(acc)
}

/// SGD with momentum: epoch `e` visits the rows sorted by `Stream::new(seed, e).bits(i)`
/// (ties by index), in batches of `batch_size`; per batch
/// `v = momentum v - learning_rate g`, `W += v`, with `v` starting at zero. `go_on()` is asked
/// between epochs, as in [`gradient_descent`].
pub fn sgd<T: Gemm>(p: Problem<T>, w: &mut [T], args: &SgdArgs, go_on: &mut impl FnMut() -> bool) {
    let SgdArgs {
        learning_rate,
        batch_size,
        momentum,
        epochs,
        seed,
    } = *args;
    let Problem { n, d, k, .. } = p;
    if d * k == 0 {
        return;
    }
    let batch = batch_size.min(n);
    let mut work = Work::new(&p, Some(batch), 1);
    let (lr_t, mu_t) = (T::of(learning_rate), T::of(momentum));
    let mut velocity = vec![T::ZERO; d * k];
    with_kept(|shuffle: &mut Shuffle| {
        shuffle.resize(n);
        for epoch in 0..epochs {
            if epoch > 0 && !go_on() {
                return;
            }
            let stream = Stream::new(seed, epoch);
            for idx in shuffle.order(|i| stream.bits(i as u64)).chunks(batch) {
                work.gradient(&p, w, Some(idx));
                let m = T::of(idx.len() as f64);
                for c in 0..d {
                    for j in 0..k {
                        let v = &mut velocity[c * k + j];
                        *v = *v * mu_t - work.grad(c, j, d, k) / m * lr_t;
                        w[c * k + j] = w[c * k + j] + *v;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u64) -> Vec<f64> {
        let st = Stream::new(seed, 1);
        (0..len).map(|i| st.uniform(i as u64) * 2.0 - 1.0).collect()
    }

    /// `X_R^T (X_R W - Y_R) / |R|` one sample at a time, in float64.
    fn naive_grad(x: &[f64], y: &[f64], w: &[f64], rows: &[usize], d: usize, k: usize) -> Vec<f64> {
        let mut g = vec![0.0; d * k];
        for &i in rows {
            for j in 0..k {
                let r: f64 =
                    (0..d).map(|c| x[i * d + c] * w[c * k + j]).sum::<f64>() - y[i * k + j];
                for c in 0..d {
                    g[c * k + j] += x[i * d + c] * r / rows.len() as f64;
                }
            }
        }
        g
    }

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.iter()
            .zip(b)
            .all(|(a, b)| (a - b).abs() <= tol * (1.0 + b.abs()))
    }

    #[test]
    fn gradient_descent_matches_a_sample_by_sample_loop() {
        // k = 8 takes the GEMM. d = 1 to 6 work down columns, with several blocks at n = 9000
        // (2 at k = 3); d = 40 and 45 take the row loop (n = 1100: three blocks). In 16 lanes
        // (AVX-512): full lane blocks, a half block, and at 45 five columns more; in 8 (AVX2):
        // full blocks, and at 45 a half block and one column more.
        for (n, d, k) in [
            (1, 1, 1),
            (9000, 5, 1),
            (9000, 5, 3),
            (37, 4, 3),
            (1100, 40, 1),
            (300, 45, 2),
            (50, 6, 8),
        ] {
            let (x, y) = (data(n * d, 1), data(n * k, 2));
            let mut w = data(d * k, 3);
            let mut want = w.clone();
            let all: Vec<usize> = (0..n).collect();
            for _ in 0..4 {
                let g = naive_grad(&x, &y, &want, &all, d, k);
                want.iter_mut().zip(&g).for_each(|(w, g)| *w -= 0.05 * g);
            }
            gradient_descent(
                Problem {
                    x: &x,
                    y: &y,
                    n,
                    d,
                    k,
                },
                &mut w,
                &GradientDescentArgs {
                    learning_rate: 0.05,
                    epochs: 4,
                },
                &mut || true,
            );
            assert!(close(&w, &want, 1e-12), "{n} {d} {k}");
        }
    }

    #[test]
    fn sgd_matches_a_sample_by_sample_loop_over_the_streams_order() {
        for (n, d, k, batch) in [(1, 2, 1, 4), (10, 3, 1, 4), (23, 4, 2, 5), (19, 3, 9, 4)] {
            let (x, y) = (data(n * d, 4), data(n * k, 5));
            let mut w = data(d * k, 6);
            let mut want = w.clone();
            let mut v = vec![0.0; d * k];
            for epoch in 0..3 {
                let st = Stream::new(77, epoch);
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by_key(|&i| st.bits(i as u64)); // stable: ties by index
                for rows in order.chunks(batch) {
                    let g = naive_grad(&x, &y, &want, rows, d, k);
                    for j in 0..d * k {
                        v[j] = 0.9 * v[j] - 0.1 * g[j];
                        want[j] += v[j];
                    }
                }
            }
            sgd(
                Problem {
                    x: &x,
                    y: &y,
                    n,
                    d,
                    k,
                },
                &mut w,
                &SgdArgs {
                    learning_rate: 0.1,
                    batch_size: batch,
                    momentum: 0.9,
                    epochs: 3,
                    seed: 77,
                },
                &mut || true,
            );
            assert!(close(&w, &want, 1e-12), "{n} {d} {k} {batch}");
        }
    }

    #[test]
    fn a_loop_told_to_stop_holds_a_whole_number_of_epochs() {
        // narrow X (the column path) and wide X (the row loop)
        for (n, d) in [(50, 3), (40, 300)] {
            let (x, y) = (data(n * d, 1), data(n, 2));
            let p = Problem {
                x: &x,
                y: &y,
                n,
                d,
                k: 1,
            };
            let stop_after = |epochs: usize| {
                let mut asked = 0;
                move || {
                    asked += 1;
                    asked < epochs
                }
            };
            let (mut two, mut stopped) = (vec![0.0; d], vec![0.0; d]);
            let gd = |epochs| GradientDescentArgs {
                learning_rate: 0.01,
                epochs,
            };
            gradient_descent(p, &mut two, &gd(2), &mut || true);
            gradient_descent(p, &mut stopped, &gd(9), &mut stop_after(2));
            assert_eq!(stopped, two);
            let (mut two, mut stopped) = (vec![0.0; d], vec![0.0; d]);
            let sgd_args = |epochs| SgdArgs {
                learning_rate: 0.01,
                batch_size: 7,
                momentum: 0.9,
                epochs,
                seed: 5,
            };
            sgd(p, &mut two, &sgd_args(2), &mut || true);
            sgd(p, &mut stopped, &sgd_args(9), &mut stop_after(2));
            assert_eq!(stopped, two);
        }
    }

    #[test]
    fn the_shuffle_is_the_stable_argsort_of_the_keys() {
        // Crafted keys: equal keys (ties by index), equal top bits, extremes.
        let keys = [
            5u64 << 60,
            3,
            u64::MAX,
            3,
            5 << 60,
            0,
            (5 << 60) + 1,
            u64::MAX,
            7 << 59,
        ];
        let mut want: Vec<usize> = (0..keys.len()).collect();
        want.sort_by_key(|&i| keys[i]);
        let mut shuffle = Shuffle::default();
        shuffle.resize(keys.len());
        assert_eq!(shuffle.order(|i| keys[i]), &want[..]);
        // one Shuffle resized for every n, smaller after larger too (as kept between calls)
        for n in [1, 2, 3, 1000, 4097, 5] {
            let st = Stream::new(9, n as u64);
            let mut want: Vec<usize> = (0..n).collect();
            want.sort_by_key(|&i| st.bits(i as u64));
            shuffle.resize(n);
            assert_eq!(shuffle.order(|i| st.bits(i as u64)), &want[..]);
            // A second epoch reuses the buffers.
            let st2 = Stream::new(10, 0);
            let mut want: Vec<usize> = (0..n).collect();
            want.sort_by_key(|&i| st2.bits(i as u64));
            assert_eq!(shuffle.order(|i| st2.bits(i as u64)), &want[..]);
        }
    }

    #[test]
    fn empty_weights_and_zero_epochs_change_nothing() {
        let x = data(6, 1);
        let mut w: Vec<f64> = vec![];
        let no_columns = Problem {
            x: &x,
            y: &[],
            n: 3,
            d: 2,
            k: 0,
        };
        let gd = |epochs| GradientDescentArgs {
            learning_rate: 0.1,
            epochs,
        };
        let sgd_args = |epochs| SgdArgs {
            learning_rate: 0.1,
            batch_size: 2,
            momentum: 0.5,
            epochs,
            seed: 0,
        };
        gradient_descent(no_columns, &mut w, &gd(3), &mut || true);
        sgd(no_columns, &mut w, &sgd_args(3), &mut || true);
        let y = data(3, 2);
        let mut w = vec![0.5, -0.5];
        let p = Problem {
            y: &y,
            k: 1,
            ..no_columns
        };
        gradient_descent(p, &mut w, &gd(0), &mut || true);
        sgd(p, &mut w, &sgd_args(0), &mut || true);
        assert_eq!(w, vec![0.5, -0.5]);
    }

    #[test]
    fn gradient_descent_gives_the_same_bits_for_every_thread_count() {
        // X of 10 MB (row loop) and 1.3 MB (columns): above a lowered threshold, so the blocks
        // run on the pool (other tests running meanwhile may use the pool too; no result
        // depends on it).
        crate::runtime::pool::set_parallel_min_bytes(1 << 20);
        for d in [64, 8] {
            let n = 20_000;
            let (x, y) = (data(n * d, 7), data(n, 8));
            let run = |threads| {
                crate::runtime::pool::set_num_threads(threads);
                let mut w = vec![0.0; d];
                gradient_descent(
                    Problem {
                        x: &x,
                        y: &y,
                        n,
                        d,
                        k: 1,
                    },
                    &mut w,
                    &GradientDescentArgs {
                        learning_rate: 0.01,
                        epochs: 3,
                    },
                    &mut || true,
                );
                w
            };
            let one = run(1);
            assert_eq!(one, run(3));
            assert_ne!(one, vec![0.0; d]);
        }
    }
}
