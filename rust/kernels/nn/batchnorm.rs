//! Batch normalization over `x` of shape `(N, C, L)` (`L = 1` for `(N, C)`), per channel `c`
//! over the `n = N * L` values of the other axes, as `torch.nn.BatchNorm1d`.
//!
//! All arithmetic is float64, each result rounded once to the element type: the reference's
//! formulas operation by operation, except that float32 outputs come from fused
//! multiply-adds (see [`narrow`]). Statistics and gradient sums are taken over
//! blocks of whole rows (about [`CHUNK`] elements, fixed by the shape), each block's result
//! combined in index order, so they do not depend on the thread count.
//!
//! - Training forward reads `x` twice: once for the moments (each block, or each stretch of a
//!   channel, takes its mean and then its centred sum of squares while it is in cache, and
//!   blocks are merged by Chan's formula), once to write the output.
//! - Backward reads `grad_output` twice: the sums `sum g` and `sum g * (x - mean)`, then
//!   `grad_x`. It needs `x` and, per channel, the mean, `1 / sqrt(var + eps)` and `gamma` of
//!   the forward ([`Saved`]), never the normalized input.

use crate::runtime::pool::{map_chunks, map_tasks, CHUNK};
use crate::runtime::reduce::fold_lanes;
use crate::runtime::scratch::with_scratch;
use crate::Real;

/// The shape of `x`: rows `n`, channels `c`, length `l` of each channel's run in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub n: usize,
    pub c: usize,
    pub l: usize,
}

impl Layout {
    fn row(&self) -> usize {
        self.c * self.l
    }

    /// Elements of a block: whole rows, about [`CHUNK`] of them (at least one row).
    fn block(&self) -> usize {
        let row = self.row().max(1);
        (CHUNK / row).max(1) * row
    }

    /// Values per channel.
    pub fn count(&self) -> usize {
        self.n * self.l
    }
}

/// Hyper-parameters of a forward, named as the layer's attributes.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormArgs {
    pub eps: f64,
    pub momentum: f64,
}

/// What backward needs of the last forward, per channel, in float64.
#[derive(Clone, Debug, PartialEq)]
pub struct Saved {
    pub training: bool,
    pub mean: Vec<f64>,
    pub inv_std: Vec<f64>,
    pub gamma: Vec<f64>,
}

/// The learnable parameters and running statistics of the layer, `C` values each: `R` is
/// `&mut [T]` in training (the running statistics are updated), `&[T]` in eval.
pub struct Params<'a, T, R = &'a mut [T]> {
    pub gamma: &'a [T],
    pub beta: &'a [T],
    pub running_mean: R,
    pub running_var: R,
}

crate::bundle! {
    struct RowsOut<'a, T> {
        pub x: &'a [T],
        pub out: &'a mut [T],
    }
}

crate::bundle! {
    struct GradOut<'a, T> {
        pub g: &'a [T],
        pub out: &'a mut [T],
    }
}

crate::bundle! {
    struct GradRowsOut<'a, T> {
        pub g: &'a [T],
        pub x: &'a [T],
        pub out: &'a mut [T],
    }
}

/// Mean and centred sum of squares of each channel.
struct Moments {
    mean: Vec<f64>,
    m2: Vec<f64>,
}

/// The weights that add the moments of `n` more values to those of `na` (Chan, Golub and
/// LeVeque): `n / total` for the mean, `na * n / total` for the centred sum of squares.
#[inline(always)]
fn weights(na: f64, n: f64) -> (f64, f64) {
    let total = na + n;
    (n / total, na * n / total)
}

/// Adds the moments `(mean_b, m2_b)` of more values to `(mean, m2)`, with [`weights`].
#[inline(always)]
fn merge(mean: &mut f64, m2: &mut f64, mean_b: f64, m2_b: f64, (wm, wq): (f64, f64)) {
    let d = mean_b - *mean;
    *mean += d * wm;
    *m2 += m2_b + d * d * wq;
}

/// Independent float64 sums per slice: enough to vectorize and hide the add latency.
const LANES: usize = 8;
/// Values of one channel's run taken at once for its two-pass moments: they stay in L1.
const STRETCH: usize = 4096;

crate::simd! {
    /// Mean and centred sum of squares of a short slice, in two passes.
    fn stretch_moments<T: Real>(x: &[T]) -> (f64, f64) {
        let mut acc = [0.0f64; LANES];
        let chunks = x.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for j in 0..LANES {
                acc[j] += c[j].to_f64();
            }
        }
        for (j, v) in rest.iter().enumerate() {
            acc[j] += v.to_f64();
        }
        let mean = fold_lanes(acc) / x.len() as f64;
        let mut acc = [0.0f64; LANES];
        let chunks = x.chunks_exact(LANES);
        for c in chunks {
            for j in 0..LANES {
                let d = c[j].to_f64() - mean;
                acc[j] += d * d;
            }
        }
        for (j, v) in rest.iter().enumerate() {
            let d = v.to_f64() - mean;
            acc[j] += d * d;
        }
        (mean, fold_lanes(acc))
    }
}

/// Rows of `c` values taken four at a time by the `(N, C)` loops: each channel's accumulator
/// or constant is then loaded once per four rows.
const ROWS: usize = 4;

/// The four rows of `c` values of `q`, each sliced to exactly `c` (no bounds checks after).
#[inline(always)]
fn quad<T>(q: &[T], c: usize) -> (&[T], &[T], &[T], &[T]) {
    (&q[..c], &q[c..2 * c], &q[2 * c..3 * c], &q[3 * c..4 * c])
}

/// [`quad`] of a block being written.
#[inline(always)]
fn quad_mut<T>(q: &mut [T], c: usize) -> (&mut [T], &mut [T], &mut [T], &mut [T]) {
    let (r0, q) = q.split_at_mut(c);
    let (r1, q) = q.split_at_mut(c);
    let (r2, r3) = q.split_at_mut(c);
    (r0, r1, r2, &mut r3[..c])
}

crate::simd! {
    /// `(N, C)` rows: each channel's mean, then centred sum of squares, over the block's rows
    /// (vectorized across channels).
    fn row_moments<T: Real>(x: &[T], mean: &mut [f64], m2: &mut [f64]) {
        let c = mean.len();
        let m2 = &mut m2[..c];
        let rows = x.len() / c;
        let quads = x.chunks_exact(ROWS * c);
        let rest = quads.remainder();
        for q in quads {
            let (r0, r1, r2, r3) = quad(q, c);
            for ch in 0..c {
                mean[ch] += (r0[ch].to_f64() + r1[ch].to_f64()) + (r2[ch].to_f64() + r3[ch].to_f64());
            }
        }
        for r in rest.chunks_exact(c) {
            let r = &r[..c];
            for ch in 0..c {
                mean[ch] += r[ch].to_f64();
            }
        }
        for s in mean.iter_mut() {
            *s /= rows as f64;
        }
        let sq = |v: T, m: f64| (v.to_f64() - m) * (v.to_f64() - m);
        for q in x.chunks_exact(ROWS * c) {
            let (r0, r1, r2, r3) = quad(q, c);
            for ch in 0..c {
                let m = mean[ch];
                m2[ch] += (sq(r0[ch], m) + sq(r1[ch], m)) + (sq(r2[ch], m) + sq(r3[ch], m));
            }
        }
        for r in rest.chunks_exact(c) {
            let r = &r[..c];
            for ch in 0..c {
                m2[ch] += sq(r[ch], mean[ch]);
            }
        }
    }
}

/// The moments of one block of rows into `mean` and `m2` (`c` values each).
fn block_moments<T: Real>(x: &[T], lay: Layout, mean: &mut [f64], m2: &mut [f64]) {
    mean.fill(0.0);
    m2.fill(0.0);
    if lay.l == 1 {
        row_moments(x, mean, m2);
        return;
    }
    // each channel merges its stretches in row order; every channel has `done` values before
    // a row
    let mut done = 0.0;
    for row in x.chunks_exact(lay.row()) {
        let runs = row
            .chunks_exact(lay.l)
            .zip(mean.iter_mut().zip(m2.iter_mut()));
        for (run, (mean, m2)) in runs {
            let mut count = done;
            for s in run.chunks(STRETCH) {
                let (mean_s, m2_s) = stretch_moments(s);
                let n = s.len() as f64;
                if count == 0.0 {
                    (*mean, *m2) = (mean_s, m2_s);
                } else {
                    merge(mean, m2, mean_s, m2_s, weights(count, n));
                }
                count += n;
            }
        }
        done += lay.l as f64;
    }
}

/// Per channel: mean and centred sum of squares of `x`.
fn moments<T: Real>(x: &[T], lay: Layout) -> Moments {
    let (c, block) = (lay.c, lay.block());
    // x is read once, but each block takes two passes of float64 arithmetic: weighed as four
    // streams, so that the threads start where they pay
    let bytes = std::mem::size_of_val(x) * 4;
    with_scratch(x.len().div_ceil(block) * 2 * c, |parts| {
        let tasks: Vec<_> = x.chunks(block).zip(parts.chunks_mut(2 * c)).collect();
        map_tasks(tasks, bytes, |(b, part)| {
            let (mean, m2) = part.split_at_mut(c);
            block_moments(b, lay, mean, m2);
        });
        let mut total = Moments {
            mean: vec![0.0; c],
            m2: vec![0.0; c],
        };
        // every channel of a block has its `len / c` values: one set of weights per block
        let mut count = 0.0;
        for (b, part) in x.chunks(block).zip(parts.chunks(2 * c)) {
            let (mean, m2) = part.split_at(c);
            let n = (b.len() / c) as f64;
            if count == 0.0 {
                total.mean.copy_from_slice(mean);
                total.m2.copy_from_slice(m2);
            } else {
                let w = weights(count, n);
                let all = total
                    .mean
                    .iter_mut()
                    .zip(&mut total.m2)
                    .zip(mean.iter().zip(m2));
                for ((tm, tq), (&mb, &qb)) in all {
                    merge(tm, tq, mb, qb, w);
                }
            }
            count += n;
        }
        total
    })
}

crate::simd! {
    /// `out = (x - mean) * a + beta` per channel (`a = gamma * inv_std`), rounded once.
    fn normalize_block<T: Real>(x: &[T], out: &mut [T], l: usize, mean: &[f64], a: &[f64], beta: &[f64], shift: &[f64]) {
        let c = mean.len();
        let (a, beta, shift) = (&a[..c], &beta[..c], &shift[..c]);
        let one = |v: T, ch: usize| {
            if narrow::<T>() {
                T::of(v.to_f64().mul_add(a[ch], shift[ch]))
            } else {
                T::of((v.to_f64() - mean[ch]) * a[ch] + beta[ch])
            }
        };
        if l == 1 {
            // four rows per load of the channel constants; re-sliced to `c` so that the loops
            // have no bounds checks and vectorize
            let quads = x.chunks_exact(ROWS * c).zip(out.chunks_exact_mut(ROWS * c));
            for (xq, oq) in quads {
                let (x0, x1, x2, x3) = quad(xq, c);
                let (o0, o1, o2, o3) = quad_mut(oq, c);
                for ch in 0..c {
                    (o0[ch], o1[ch], o2[ch], o3[ch]) = (one(x0[ch], ch), one(x1[ch], ch), one(x2[ch], ch), one(x3[ch], ch));
                }
            }
            let done = x.len() / (ROWS * c) * (ROWS * c);
            for (xr, or) in x[done..].chunks_exact(c).zip(out[done..].chunks_exact_mut(c)) {
                let (xr, or) = (&xr[..c], &mut or[..c]);
                for ch in 0..c {
                    or[ch] = one(xr[ch], ch);
                }
            }
            return;
        }
        for (xr, or) in x.chunks_exact(c * l).zip(out.chunks_exact_mut(c * l)) {
            for (ch, (xs, os)) in xr.chunks_exact(l).zip(or.chunks_exact_mut(l)).enumerate() {
                for (o, &v) in os.iter_mut().zip(xs) {
                    *o = one(v, ch);
                }
            }
        }
    }
}

/// Whether `T` is float32: its per-element maps then take one float64 fused multiply-add per
/// term (`x a + (beta - mean a)`), whose cancellation float64 keeps far below float32's
/// rounding unless `|mean| / std` nears 1e8; float64 keeps the reference's order of operations.
#[inline(always)]
fn narrow<T: Real>() -> bool {
    std::mem::size_of::<T>() < 8
}

fn normalize<T: Real>(x: &[T], out: &mut [T], lay: Layout, s: &Saved, beta: &[f64]) {
    let a: Vec<f64> = s.gamma.iter().zip(&s.inv_std).map(|(g, i)| g * i).collect();
    let shift: Vec<f64> = (0..lay.c).map(|ch| beta[ch] - s.mean[ch] * a[ch]).collect();
    // x read, out written
    map_chunks(
        vec![RowsOut { x, out }],
        lay.block(),
        2 * std::mem::size_of::<T>(),
        |b| normalize_block(b.x, b.out, lay.l, &s.mean, &a, beta, &shift),
    );
}

fn to_f64<T: Real>(a: &[T]) -> Vec<f64> {
    a.iter().map(|v| v.to_f64()).collect()
}

/// Training forward: batch statistics, the output, and the running statistics updated in
/// place (`momentum * batch + (1 - momentum) * running`, the unbiased variance). `x` has
/// `lay.count() >= 2` values per channel.
pub fn forward_training<T: Real>(
    x: &[T],
    out: &mut [T],
    lay: Layout,
    p: Params<'_, T>,
    args: &BatchNormArgs,
) -> Saved {
    let m = moments(x, lay);
    let n = lay.count() as f64;
    let inv_std =
        m.m2.iter()
            .map(|q| 1.0 / (q / n + args.eps).sqrt())
            .collect();
    let s = Saved {
        training: true,
        mean: m.mean,
        inv_std,
        gamma: to_f64(p.gamma),
    };
    normalize(x, out, lay, &s, &to_f64(p.beta));
    let k = args.momentum;
    for ch in 0..lay.c {
        let rm = &mut p.running_mean[ch];
        *rm = T::of(k * s.mean[ch] + (1.0 - k) * rm.to_f64());
        let rv = &mut p.running_var[ch];
        *rv = T::of(k * (m.m2[ch] / (n - 1.0)) + (1.0 - k) * rv.to_f64());
    }
    s
}

/// Eval forward: the output normalized with the running statistics (`args.momentum` plays
/// no part).
pub fn forward_eval<'a, T: Real>(
    x: &[T],
    out: &mut [T],
    lay: Layout,
    p: Params<'a, T, &'a [T]>,
    args: &BatchNormArgs,
) -> Saved {
    let eps = args.eps;
    let s = Saved {
        training: false,
        mean: to_f64(p.running_mean),
        inv_std: p
            .running_var
            .iter()
            .map(|v| 1.0 / (v.to_f64() + eps).sqrt())
            .collect(),
        gamma: to_f64(p.gamma),
    };
    normalize(x, out, lay, &s, &to_f64(p.beta));
    s
}

crate::simd! {
    /// Adds `sum g` and `sum g * (x - mean)` of each channel over a block.
    fn grad_sums_block<T: Real>(g: &[T], x: &[T], l: usize, mean: &[f64], sg: &mut [f64], sgx: &mut [f64]) {
        let c = mean.len();
        let (sg, sgx) = (&mut sg[..c], &mut sgx[..c]);
        if l == 1 {
            let gx = |gr: &[T], xr: &[T], ch: usize| gr[ch].to_f64() * (xr[ch].to_f64() - mean[ch]);
            let (gq, xq) = (g.chunks_exact(ROWS * c), x.chunks_exact(ROWS * c));
            let (g_rest, x_rest) = (gq.remainder(), xq.remainder());
            for (gq, xq) in gq.zip(xq) {
                let (g0, g1, g2, g3) = quad(gq, c);
                let (x0, x1, x2, x3) = quad(xq, c);
                for ch in 0..c {
                    sg[ch] += (g0[ch].to_f64() + g1[ch].to_f64()) + (g2[ch].to_f64() + g3[ch].to_f64());
                    sgx[ch] += (gx(g0, x0, ch) + gx(g1, x1, ch)) + (gx(g2, x2, ch) + gx(g3, x3, ch));
                }
            }
            for (gr, xr) in g_rest.chunks_exact(c).zip(x_rest.chunks_exact(c)) {
                let (gr, xr) = (&gr[..c], &xr[..c]);
                for ch in 0..c {
                    sg[ch] += gr[ch].to_f64();
                    sgx[ch] += gx(gr, xr, ch);
                }
            }
            return;
        }
        for (gr, xr) in g.chunks_exact(c * l).zip(x.chunks_exact(c * l)) {
            for (ch, (gs, xs)) in gr.chunks_exact(l).zip(xr.chunks_exact(l)).enumerate() {
                let m = mean[ch];
                let (mut a, mut b) = ([0.0f64; LANES], [0.0f64; LANES]);
                let (gc, xc) = (gs.chunks_exact(LANES), xs.chunks_exact(LANES));
                let (gt, xt) = (gc.remainder(), xc.remainder());
                for (gl, xl) in gc.zip(xc) {
                    for j in 0..LANES {
                        let gv = gl[j].to_f64();
                        a[j] += gv;
                        b[j] += gv * (xl[j].to_f64() - m);
                    }
                }
                for (j, (gv, xv)) in gt.iter().zip(xt).enumerate() {
                    let gv = gv.to_f64();
                    a[j] += gv;
                    b[j] += gv * (xv.to_f64() - m);
                }
                sg[ch] += fold_lanes(a);
                sgx[ch] += fold_lanes(b);
            }
        }
    }
}

crate::simd! {
    /// Eval: `grad_x = scale g` per channel (`x` plays no part), rounded once.
    fn grad_x_eval_block<T: Real>(g: &[T], out: &mut [T], l: usize, scale: &[f64]) {
        let c = scale.len();
        for (gr, or) in g.chunks_exact(c * l).zip(out.chunks_exact_mut(c * l)) {
            if l == 1 {
                let (gr, or) = (&gr[..c], &mut or[..c]);
                for ch in 0..c {
                    or[ch] = T::of(gr[ch].to_f64() * scale[ch]);
                }
                continue;
            }
            for (ch, (gs, os)) in gr.chunks_exact(l).zip(or.chunks_exact_mut(l)).enumerate() {
                let k = scale[ch];
                for (o, v) in os.iter_mut().zip(gs) {
                    *o = T::of(v.to_f64() * k);
                }
            }
        }
    }
}

/// The per-channel factors of the training `grad_x`, one vector each (so that loads across
/// channels are contiguous).
struct Coef {
    a: Vec<f64>,
    b: Vec<f64>,
    d: Vec<f64>,
    /// `d - b mean`, for float32 (see [`narrow`])
    shift: Vec<f64>,
}

crate::simd! {
    /// Training: `grad_x = a g + b (x - mean) + d` per channel, rounded once.
    fn grad_x_block<T: Real>(g: &[T], x: &[T], out: &mut [T], l: usize, mean: &[f64], k: &Coef) {
        let c = mean.len();
        let (ka, kb, kd, ks) = (&k.a[..c], &k.b[..c], &k.d[..c], &k.shift[..c]);
        let one = |gv: T, xv: T, ch: usize| {
            let (g, x) = (gv.to_f64(), xv.to_f64());
            if narrow::<T>() {
                T::of(ka[ch].mul_add(g, kb[ch].mul_add(x, ks[ch])))
            } else {
                T::of(ka[ch] * g + kb[ch] * (x - mean[ch]) + kd[ch])
            }
        };
        if l == 1 {
            // four rows per load of the channel constants (as `normalize_block`)
            let at = |gr: &[T], xr: &[T], ch: usize| one(gr[ch], xr[ch], ch);
            let quads = g.chunks_exact(ROWS * c).zip(x.chunks_exact(ROWS * c)).zip(out.chunks_exact_mut(ROWS * c));
            for ((gq, xq), oq) in quads {
                let (g0, g1, g2, g3) = quad(gq, c);
                let (x0, x1, x2, x3) = quad(xq, c);
                let (o0, o1, o2, o3) = quad_mut(oq, c);
                for ch in 0..c {
                    (o0[ch], o1[ch], o2[ch], o3[ch]) = (at(g0, x0, ch), at(g1, x1, ch), at(g2, x2, ch), at(g3, x3, ch));
                }
            }
            let done = g.len() / (ROWS * c) * (ROWS * c);
            let rows = g[done..].chunks_exact(c).zip(x[done..].chunks_exact(c)).zip(out[done..].chunks_exact_mut(c));
            for ((gr, xr), or) in rows {
                let (gr, xr) = (&gr[..c], &xr[..c]);
                for (ch, o) in or[..c].iter_mut().enumerate() {
                    *o = at(gr, xr, ch);
                }
            }
            return;
        }
        for ((gr, xr), or) in g
            .chunks_exact(c * l)
            .zip(x.chunks_exact(c * l))
            .zip(out.chunks_exact_mut(c * l))
        {
            for (ch, ((gs, xs), os)) in gr
                .chunks_exact(l)
                .zip(xr.chunks_exact(l))
                .zip(or.chunks_exact_mut(l))
                .enumerate()
            {
                for ((o, &gv), &xv) in os.iter_mut().zip(gs).zip(xs) {
                    *o = one(gv, xv, ch);
                }
            }
        }
    }
}

/// What backward writes: `grad_x` like `x`, `grad_gamma` and `grad_beta` of `C` values.
pub struct Grads<'a, T> {
    pub grad_x: &'a mut [T],
    pub grad_gamma: &'a mut [T],
    pub grad_beta: &'a mut [T],
}

/// Backward of the last forward (`saved`, on the same `x`) for `grad_output` `g`: writes
/// `grad_x`, `grad_gamma = sum(g * xhat)` and `grad_beta = sum(g)`.
pub fn backward<T: Real>(g: &[T], x: &[T], lay: Layout, saved: &Saved, grads: Grads<'_, T>) {
    let Grads {
        grad_x,
        grad_gamma,
        grad_beta,
    } = grads;
    let c = lay.c;
    let size = std::mem::size_of::<T>();
    let block = lay.block();
    let (mut gb, mut gg) = (vec![0.0f64; c], vec![0.0f64; c]);
    with_scratch(g.len().div_ceil(block) * 2 * c, |parts| {
        let tasks: Vec<_> = (g.chunks(block).zip(x.chunks(block)))
            .zip(parts.chunks_mut(2 * c))
            .collect();
        // g and x read
        map_tasks(tasks, std::mem::size_of_val(g) * 2, |((g, x), part)| {
            part.fill(0.0);
            let (sg, sgx) = part.split_at_mut(c);
            grad_sums_block(g, x, lay.l, &saved.mean, sg, sgx);
        });
        for part in parts.chunks(2 * c) {
            let (sg, sgx) = part.split_at(c);
            for ch in 0..c {
                gb[ch] += sg[ch];
                gg[ch] += sgx[ch];
            }
        }
    });
    for ch in 0..c {
        gg[ch] *= saved.inv_std[ch];
        grad_gamma[ch] = T::of(gg[ch]);
        grad_beta[ch] = T::of(gb[ch]);
    }
    let scale: Vec<f64> = (0..c)
        .map(|ch| saved.gamma[ch] * saved.inv_std[ch])
        .collect();
    if !saved.training {
        // g read, grad_x written
        map_chunks(
            vec![GradOut { g, out: grad_x }],
            lay.block(),
            2 * size,
            |b| grad_x_eval_block(b.g, b.out, lay.l, &scale),
        );
        return;
    }
    // grad_x = scale / n * (n g - grad_beta - xhat grad_gamma), xhat = (x - mean) inv_std,
    // expanded per channel into a g + b (x - mean) + d
    let n = lay.count() as f64;
    let q: Vec<f64> = scale.iter().map(|s| s / n).collect();
    let b: Vec<f64> = (0..c)
        .map(|ch| -(q[ch] * saved.inv_std[ch] * gg[ch]))
        .collect();
    let d: Vec<f64> = (0..c).map(|ch| -(q[ch] * gb[ch])).collect();
    let k = Coef {
        a: q.iter().map(|q| q * n).collect(),
        shift: (0..c).map(|ch| d[ch] - b[ch] * saved.mean[ch]).collect(),
        b,
        d,
    };
    // g and x read, grad_x written
    map_chunks(
        vec![GradRowsOut { g, x, out: grad_x }],
        lay.block(),
        3 * size,
        |b| grad_x_block(b.g, b.x, b.out, lay.l, &saved.mean, &k),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, PARALLEL_MIN_BYTES};

    /// The reference's formulas, two-pass, element by element.
    fn naive(x: &[f64], lay: Layout, ch: usize) -> (f64, f64) {
        let vals: Vec<f64> = (0..lay.n)
            .flat_map(|r| (0..lay.l).map(move |j| (r * lay.c + ch) * lay.l + j))
            .map(|i| x[i])
            .collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let m2 = vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>();
        (mean, m2)
    }

    fn data(len: usize, offset: f64) -> Vec<f64> {
        (0..len)
            .map(|i| offset + ((i * 7919) % 1013) as f64 / 101.0)
            .collect()
    }

    const ARGS: BatchNormArgs = BatchNormArgs {
        eps: 1e-5,
        momentum: 0.1,
    };

    fn grads<'a, T>(
        grad_x: &'a mut [T],
        grad_gamma: &'a mut [T],
        grad_beta: &'a mut [T],
    ) -> Grads<'a, T> {
        Grads {
            grad_x,
            grad_gamma,
            grad_beta,
        }
    }

    fn train(x: &[f64], lay: Layout) -> (Vec<f64>, Saved, Vec<f64>, Vec<f64>) {
        let mut out = vec![0.0; x.len()];
        let (gamma, beta): (Vec<f64>, Vec<f64>) =
            (0..lay.c).map(|c| (1.0 + c as f64, -(c as f64))).unzip();
        let (mut rm, mut rv) = (vec![0.5; lay.c], vec![2.0; lay.c]);
        let p = Params {
            gamma: &gamma,
            beta: &beta,
            running_mean: &mut rm[..],
            running_var: &mut rv[..],
        };
        let s = forward_training(x, &mut out, lay, p, &ARGS);
        (out, s, rm, rv)
    }

    #[test]
    fn statistics_and_output_follow_the_formulas() {
        // several blocks, and a channel run longer than a stretch; a large offset tests that
        // the variance is centred
        for lay in [
            Layout {
                n: 300,
                c: 700,
                l: 1,
            },
            Layout {
                n: 3,
                c: 2,
                l: 5000,
            },
            Layout { n: 2, c: 3, l: 1 },
        ] {
            let x = data(lay.n * lay.c * lay.l, 1e6);
            let (out, s, rm, rv) = train(&x, lay);
            let n = lay.count() as f64;
            for ch in 0..lay.c {
                let (mean, m2) = naive(&x, lay, ch);
                assert!((s.mean[ch] - mean).abs() <= 1e-15 * mean.abs(), "{lay:?}");
                let inv = 1.0 / (m2 / n + 1e-5).sqrt();
                assert!((s.inv_std[ch] - inv).abs() <= 1e-9 * inv, "{lay:?}");
                assert!((rm[ch] - (0.1 * mean + 0.9 * 0.5)).abs() <= 1e-9);
                let want_rv = 0.1 * m2 / (n - 1.0) + 0.9 * 2.0;
                assert!((rv[ch] - want_rv).abs() <= 1e-9 * want_rv);
            }
            for (i, o) in out.iter().enumerate() {
                let ch = (i / lay.l) % lay.c;
                let want = s.gamma[ch] * ((x[i] - s.mean[ch]) * s.inv_std[ch]) - ch as f64;
                assert!(
                    (o - want).abs() <= 1e-12 * (1.0 + want.abs()),
                    "{o} vs {want}"
                );
            }
        }
    }

    #[test]
    fn backward_matches_the_closed_form() {
        let lay = Layout { n: 4, c: 3, l: 2 };
        let x = data(24, 0.0);
        let g: Vec<f64> = data(24, -5.0);
        let (_, s, _, _) = train(&x, lay);
        let (mut gx, mut gg, mut gb) = (vec![0.0; 24], vec![0.0; 3], vec![0.0; 3]);
        backward(&g, &x, lay, &s, grads(&mut gx, &mut gg, &mut gb));
        let n = 8.0;
        for ch in 0..3 {
            let idx: Vec<usize> = (0..4)
                .flat_map(|r| (0..2).map(move |j| (r * 3 + ch) * 2 + j))
                .collect();
            let xhat = |i: usize| (x[i] - s.mean[ch]) * s.inv_std[ch];
            let sb: f64 = idx.iter().map(|&i| g[i]).sum();
            let sgm: f64 = idx.iter().map(|&i| g[i] * xhat(i)).sum();
            assert!((gb[ch] - sb).abs() < 1e-12 && (gg[ch] - sgm).abs() < 1e-12);
            for &i in &idx {
                let want = s.gamma[ch] * s.inv_std[ch] / n * (n * g[i] - sb - xhat(i) * sgm);
                assert!((gx[i] - want).abs() < 1e-12, "{} vs {want}", gx[i]);
            }
        }
        // eval: the statistics are constants
        let mut out = vec![0.0; 24];
        let p = Params {
            gamma: &[2.0; 3],
            beta: &[0.0; 3],
            running_mean: &[1.0; 3][..],
            running_var: &[3.0; 3][..],
        };
        let eps_1 = BatchNormArgs { eps: 1.0, ..ARGS };
        let s = forward_eval(&x, &mut out, lay, p, &eps_1);
        backward(&g, &x, lay, &s, grads(&mut gx, &mut gg, &mut gb));
        assert!(gx.iter().zip(&g).all(|(a, b)| *a == b * (2.0 * 0.5)));
        assert_eq!(out[5], 2.0 * ((x[5] - 1.0) * 0.5));
    }

    #[test]
    fn empty_batches_give_empty_outputs() {
        let lay = Layout { n: 0, c: 2, l: 3 };
        let p = || Params {
            gamma: &[1.0f32; 2],
            beta: &[0.0; 2],
            running_mean: &[0.0; 2][..],
            running_var: &[1.0; 2][..],
        };
        let s = forward_eval::<f32>(&[], &mut [], lay, p(), &ARGS);
        let (mut gg, mut gb) = ([1.0f32; 2], [1.0f32; 2]);
        backward::<f32>(&[], &[], lay, &s, grads(&mut [], &mut gg, &mut gb));
        assert_eq!((gg, gb), ([0.0; 2], [0.0; 2]));
        let lay = Layout { n: 2, c: 2, l: 0 };
        forward_eval::<f32>(&[], &mut [], lay, p(), &ARGS);
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let go = |threads, lay: Layout| {
            set_num_threads(threads);
            let len = lay.n * lay.c * lay.l;
            let x: Vec<f32> = (0..len).map(|i| ((i % 997) as f32).sin()).collect();
            let mut out = vec![0.0f32; len];
            let (gamma, beta) = (vec![1.5f32; lay.c], vec![0.25f32; lay.c]);
            let (mut rm, mut rv) = (vec![0.0f32; lay.c], vec![1.0f32; lay.c]);
            let p = Params {
                gamma: &gamma,
                beta: &beta,
                running_mean: &mut rm[..],
                running_var: &mut rv[..],
            };
            let s = forward_training(&x, &mut out, lay, p, &ARGS);
            let (mut gx, mut gg, mut gb) = (vec![0.0f32; len], vec![0.0; lay.c], vec![0.0; lay.c]);
            backward(&out, &x, lay, &s, grads(&mut gx, &mut gg, &mut gb));
            (out, s, rm, rv, gx, gg, gb)
        };
        let rows = PARALLEL_MIN_BYTES / (4 * 512) + 3;
        for lay in [
            Layout {
                n: rows,
                c: 512,
                l: 1,
            },
            Layout {
                n: rows / 8,
                c: 64,
                l: 8,
            },
        ] {
            let one = go(1, lay);
            assert!(one == go(2, lay) && one == go(3, lay), "{lay:?}");
        }
    }
}
