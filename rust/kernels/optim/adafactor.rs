//! Adafactor (Shazeer and Stern, 2018) as `torch.optim.Adafactor` computes it.
//!
//! Per tensor: the norm of `p` and the row and column norms of `g` (one pass over each, in
//! float64, fixed pieces: the same bits for any thread count), the factors' `lerp` (`m + n`
//! values), then one pass for the norm of the update `u = rsqrt(max(v, eps1^2)) * g` and one
//! that writes `p = p (1 - lr wd) + (-alpha / denom) u`, recomputing `u` the same way. Norms
//! are rounded once to `T` as torch's `.norm()` returns them; scalars in float64 as torch's
//! Python (with Python's `max`, so a NaN norm gives way); `lerp` with ATen's two branches.

use super::lerp::Lerp;
use crate::runtime::pool::{map_tasks, CHUNK};
use crate::runtime::reduce::{norms, sum_squares, Order};
use crate::Real;

/// The step's hyper-parameters; `epsilon1` of `None` is `T`'s machine epsilon; `step` 1-based.
#[derive(Clone, Copy, Debug)]
pub struct AdafactorArgs {
    pub learning_rate: f64,
    pub beta2_decay: f64,
    pub epsilon1: Option<f64>,
    pub epsilon2: f64,
    pub d: f64,
    pub weight_decay: f64,
    pub maximize: bool,
    pub step: u64,
}

/// The second moment of one tensor: factors of its `batch` matrices of `rows x cols` (torch's
/// `row_var`, `batch * rows` values, and `col_var`, `batch * cols`), or a full `variance`.
pub enum SecondMoment<'a, T> {
    Factored {
        rows: usize,
        cols: usize,
        row_var: &'a mut [T],
        col_var: &'a mut [T],
    },
    Full(&'a mut [T]),
}

pub struct AdafactorTensor<'a, T> {
    pub p: &'a mut [T],
    pub g: &'a [T],
    pub v: SecondMoment<'a, T>,
}

/// Python's `max(a, b)`: `b` only when `b > a`.
fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

fn machine_epsilon<T: Real>() -> f64 {
    if size_of::<T>() == 4 {
        f32::EPSILON as f64
    } else {
        f64::EPSILON
    }
}

/// The scale of the update of one element: `1 / sqrt(max(v, eps1^2))`, `v` from the factors
/// (`r c / mean_r`) or the full variance.
#[derive(Clone, Copy)]
struct Scale<'a, T> {
    /// per matrix row, `row_var` (factored only)
    row: &'a [T],
    /// per column of every matrix, `col_var`
    col: &'a [T],
    /// per matrix, `max(mean(row_var), eps1)`
    mean: &'a [T],
    full: &'a [T],
    rows: usize,
    cols: usize,
    eps_sq: T,
}

impl<T: Real> Scale<'_, T> {
    /// `u` for `g` over the elements `start..start + g.len()`, which are whole rows when
    /// factored, written to `out` (of `g`'s length).
    #[inline(always)]
    fn fill(&self, start: usize, g: &[T], neg: bool, out: &mut [T]) {
        let sign = |x: T| if neg { T::ZERO - x } else { x };
        let eps_sq = self.eps_sq;
        if self.full.is_empty() && self.cols > 0 {
            let n = self.cols;
            for (r, (gr, ur)) in g.chunks(n).zip(out.chunks_mut(n)).enumerate() {
                let row = start / n + r;
                let b = row / self.rows;
                let (ri, d) = (self.row[row], self.mean[b]);
                let col = &self.col[b * n..(b + 1) * n];
                let (gr, ur) = (&gr[..n], &mut ur[..n]);
                for j in 0..n {
                    let v = (ri * col[j]) / d;
                    let v = if v < eps_sq { eps_sq } else { v }; // clamp keeps NaN
                    ur[j] = (T::ONE / v.sqrt()) * sign(gr[j]);
                }
            }
        } else {
            let n = g.len();
            let (full, out) = (&self.full[start..start + n], &mut out[..n]);
            for i in 0..n {
                let v = full[i];
                let v = if v < eps_sq { eps_sq } else { v };
                out[i] = (T::ONE / v.sqrt()) * sign(g[i]);
            }
        }
    }
}

/// The sum of squares of `u` over one piece, element `i` of the piece in lane `i % LANES`;
/// `u` is the piece's scratch.
fn piece_squares<T: Real>(s: &Scale<'_, T>, start: usize, g: &[T], neg: bool, u: &mut [T]) -> f64 {
    fill_piece(s, start, g, neg, u);
    sum_squares(u)
}

crate::simd! {
    fn fill_piece<T: Real>(s: &Scale<'_, T>, start: usize, g: &[T], neg: bool, u: &mut [T]) {
        s.fill(start, g, neg, u)
    }
}

/// The decay and step of the final pass.
#[derive(Clone, Copy)]
struct Apply<T> {
    decays: bool,
    decay: T,
    coef: T,
}

crate::simd! {
    /// `p = p (1 - lr wd) + coef u` over one piece; `u` is the piece's scratch.
    fn piece_apply<T: Real>(s: &Scale<'_, T>, start: usize, g: &[T], neg: bool, p: &mut [T], u: &mut [T], a: &Apply<T>) {
        s.fill(start, g, neg, u);
        let n = p.len();
        let (u, a) = (&u[..n], *a);
        for i in 0..n {
            let pi = if a.decays { p[i] * a.decay } else { p[i] };
            p[i] = pi + a.coef * u[i];
        }
    }
}

crate::simd! {
    /// `variance = lerp(variance, g * g, w)` (a vector's full second moment).
    fn full_variance<T: Real>(variance: &mut [T], g: &[T], w: &Lerp<T>) {
        let n = variance.len();
        let (g, w) = (&g[..n], *w);
        for i in 0..n {
            variance[i] = w.at(variance[i], g[i] * g[i]);
        }
    }
}

/// One Adafactor step over every tensor, in place.
pub fn adafactor<T: Real>(tensors: Vec<AdafactorTensor<'_, T>>, args: &AdafactorArgs) {
    for t in tensors {
        step_tensor(t, args);
    }
}

/// Pieces of whole rows of about [`CHUNK`] elements: `(start, len)` in elements.
fn row_pieces(len: usize, row: usize) -> Vec<(usize, usize)> {
    let step = (CHUNK / row.max(1)).max(1) * row.max(1);
    (0..len)
        .step_by(step)
        .map(|s| (s, step.min(len - s)))
        .collect()
}

fn step_tensor<T: Real>(t: AdafactorTensor<'_, T>, a: &AdafactorArgs) {
    let AdafactorTensor { p, g, v } = t;
    let numel = p.len();
    if numel == 0 {
        return;
    }
    let step = a.step as f64;
    let eps1 = a.epsilon1.unwrap_or_else(machine_epsilon::<T>);
    let w = Lerp::<T>::new(step.powf(a.beta2_decay));
    let rho = a.learning_rate.min(1.0 / step.powf(0.5));
    let p_norm = T::of(norms(&[&*p], Order::Two)[0]).to_f64();
    let alpha = py_max(a.epsilon2, p_norm / (numel as f64).powf(0.5)) * rho;
    let neg = a.maximize;
    let eps_sq = T::of(eps1 * eps1);
    let mean: Vec<T>;
    let scale = match v {
        SecondMoment::Factored {
            rows,
            cols,
            row_var,
            col_var,
        } => {
            let (row_sq, col_sq) = row_col_squares(g, rows, cols);
            for (r, s) in row_var.iter_mut().zip(&row_sq) {
                let n = T::of(s.sqrt());
                *r = w.at(*r, (n * n) / T::of(cols as f64));
            }
            for (c, s) in col_var.iter_mut().zip(&col_sq) {
                let n = T::of(s.sqrt());
                *c = w.at(*c, (n * n) / T::of(rows as f64));
            }
            mean = row_var
                .chunks(rows)
                .map(|r| {
                    let m = T::of(r.iter().map(|x| x.to_f64()).sum::<f64>()) / T::of(rows as f64);
                    if m < T::of(eps1) {
                        T::of(eps1)
                    } else {
                        m
                    }
                })
                .collect();
            Scale {
                row: row_var,
                col: col_var,
                mean: &mean,
                full: &[],
                rows,
                cols,
                eps_sq,
            }
        }
        SecondMoment::Full(variance) => {
            // (-g)^2 = g^2 exactly: maximize does not change the variance
            full_variance(variance, g, &w);
            Scale {
                row: &[],
                col: &[],
                mean: &[],
                full: variance,
                rows: 1,
                cols: 0,
                eps_sq,
            }
        }
    };
    let pieces = row_pieces(numel, scale.cols);
    let bytes = size_of_val(g);
    // the norm of the update, over fixed pieces in order
    let sums = map_tasks(pieces.clone(), bytes, |(s, len)| {
        let mut u = vec![T::ZERO; len];
        piece_squares(&scale, s, &g[s..s + len], neg, &mut u)
    });
    let u_norm = T::of(sums.iter().sum::<f64>().sqrt()).to_f64();
    let denom = py_max(1.0, u_norm / ((numel as f64).powf(0.5) * a.d));
    let apply = Apply {
        decays: a.weight_decay != 0.0,
        decay: T::of(1.0 - a.learning_rate * a.weight_decay),
        coef: T::of(-alpha / denom),
    };
    let mut tasks = Vec::with_capacity(pieces.len());
    let mut rest = &mut p[..];
    for &(s, len) in &pieces {
        let (head, tail) = rest.split_at_mut(len);
        tasks.push((s, head));
        rest = tail;
    }
    map_tasks(tasks, 3 * bytes, |(s, ps)| {
        let mut u = vec![T::ZERO; ps.len()];
        piece_apply(&scale, s, &g[s..s + ps.len()], neg, ps, &mut u, &apply)
    });
}

crate::simd! {
    /// Adds the squares of `x` to `col`, element by element, and returns their sum: element
    /// `j` in lane `j % 8`, the lanes combined in a fixed tree.
    fn add_squares<T: Real>(x: &[T], col: &mut [f64]) -> f64 {
        let n = x.len();
        let col = &mut col[..n];
        let mut lanes = [0.0f64; 8];
        let whole = n - n % 8;
        for j0 in (0..whole).step_by(8) {
            for l in 0..8 {
                let y = x[j0 + l].to_f64() * x[j0 + l].to_f64();
                col[j0 + l] += y;
                lanes[l] += y;
            }
        }
        for j in whole..n {
            let y = x[j].to_f64() * x[j].to_f64();
            col[j] += y;
            lanes[j - whole] += y;
        }
        ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    }
}

/// The sums of squares of every row and every column of `g`, `batch` matrices of
/// `rows x cols`: tasks of a block of columns of one matrix, each summing its columns over
/// the rows in order and the pieces of its rows; a row's pieces are added in column order.
fn row_col_squares<T: Real>(g: &[T], rows: usize, cols: usize) -> (Vec<f64>, Vec<f64>) {
    const BLOCK: usize = 256;
    let batch = g.len().checked_div(rows * cols).unwrap_or(0);
    let blocks = cols.div_ceil(BLOCK);
    let tasks: Vec<(usize, usize)> = (0..batch)
        .flat_map(|b| (0..blocks).map(move |k| (b, k)))
        .collect();
    let parts = map_tasks(tasks, size_of_val(g), |(b, k)| {
        let (j0, j1) = (k * BLOCK, ((k + 1) * BLOCK).min(cols));
        let mut col = vec![0.0f64; j1 - j0];
        let mut row = vec![0.0f64; rows];
        for (i, r) in row.iter_mut().enumerate() {
            *r = add_squares(
                &g[(b * rows + i) * cols + j0..(b * rows + i) * cols + j1],
                &mut col,
            );
        }
        (row, col)
    });
    let mut row_sq = vec![0.0f64; batch * rows];
    let mut col_sq = Vec::with_capacity(batch * cols);
    for (idx, (row, col)) in parts.into_iter().enumerate() {
        let b = idx / blocks;
        for (s, r) in row_sq[b * rows..(b + 1) * rows].iter_mut().zip(row) {
            *s += r;
        }
        col_sq.extend(col);
    }
    (row_sq, col_sq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, PARALLEL_MIN_BYTES};

    fn args(step: u64) -> AdafactorArgs {
        AdafactorArgs {
            learning_rate: 0.05,
            beta2_decay: -0.8,
            epsilon1: None,
            epsilon2: 1e-3,
            d: 1.0,
            weight_decay: 0.1,
            maximize: false,
            step,
        }
    }

    fn values(n: usize, k: f64) -> Vec<f64> {
        (0..n).map(|i| ((i as f64 + k) * 0.77).sin()).collect()
    }

    /// torch's single-tensor step written out for one `rows x cols` matrix in float64.
    fn by_hand(
        p: &mut [f64],
        g: &[f64],
        r: &mut [f64],
        c: &mut [f64],
        cols: usize,
        a: &AdafactorArgs,
    ) {
        let rows = p.len() / cols;
        let t = a.step as f64;
        let w = Lerp::<f64>::new(t.powf(a.beta2_decay));
        let rho = a.learning_rate.min(1.0 / t.sqrt());
        let pn = p.iter().map(|x| x * x).sum::<f64>().sqrt();
        let alpha = (pn / (p.len() as f64).sqrt()).max(a.epsilon2) * rho;
        for i in 0..rows {
            let s: f64 = (0..cols).map(|j| g[i * cols + j].powi(2)).sum();
            r[i] = w.at(r[i], s.sqrt() * s.sqrt() / cols as f64);
        }
        for j in 0..cols {
            let s: f64 = (0..rows).map(|i| g[i * cols + j].powi(2)).sum();
            c[j] = w.at(c[j], s.sqrt() * s.sqrt() / rows as f64);
        }
        let mean = (r.iter().sum::<f64>() / rows as f64).max(f64::EPSILON);
        let u: Vec<f64> = (0..p.len())
            .map(|e| {
                g[e] / ((r[e / cols] * c[e % cols]) / mean)
                    .max(f64::EPSILON.powi(2))
                    .sqrt()
            })
            .collect();
        let un = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        let denom = (un / ((p.len() as f64).sqrt() * a.d)).max(1.0);
        for e in 0..p.len() {
            p[e] = p[e] * (1.0 - a.learning_rate * a.weight_decay) + (-alpha / denom) * u[e];
        }
    }

    #[test]
    fn a_matrix_matches_the_step_written_out() {
        let (rows, cols) = (5, 3);
        let mut p = values(rows * cols, 0.0);
        let (mut r, mut c) = (vec![0.0; rows], vec![0.0; cols]);
        let (mut p2, mut r2, mut c2) = (p.clone(), r.clone(), c.clone());
        for step in 1..=4 {
            let g = values(rows * cols, 3.0 * step as f64);
            let v = SecondMoment::Factored {
                rows,
                cols,
                row_var: &mut r,
                col_var: &mut c,
            };
            adafactor(
                vec![AdafactorTensor {
                    p: &mut p,
                    g: &g,
                    v,
                }],
                &args(step),
            );
            by_hand(&mut p2, &g, &mut r2, &mut c2, cols, &args(step));
        }
        for (x, y) in p
            .iter()
            .zip(&p2)
            .chain(r.iter().zip(&r2))
            .chain(c.iter().zip(&c2))
        {
            assert!((x - y).abs() <= 1e-14 * y.abs().max(1e-300), "{x} vs {y}");
        }
    }

    #[test]
    fn a_vector_keeps_the_full_variance_and_maximize_flips_the_step() {
        let g = [0.5f32, -2.0];
        let mut out = Vec::new();
        for maximize in [false, true] {
            let (mut p, mut v) = (vec![1.0f32, 1.0], vec![0.0f32; 2]);
            let a = AdafactorArgs {
                maximize,
                weight_decay: 0.0,
                ..args(1)
            };
            adafactor(
                vec![AdafactorTensor {
                    p: &mut p,
                    g: &g,
                    v: SecondMoment::Full(&mut v),
                }],
                &a,
            );
            assert_eq!(v, vec![0.25, 4.0]); // beta2_t = 1 at step 1
            out.push(p);
        }
        // u = sign(g), ||u|| / sqrt(2) = 1: alpha = 1 * 0.05
        assert_eq!(out[0], vec![0.95, 1.05]);
        assert_eq!(out[1], vec![1.05, 0.95]);
    }

    #[test]
    fn empty_input_is_a_no_op() {
        adafactor::<f32>(vec![], &args(1));
        let (mut r, mut c) = (vec![0.0f64; 0], vec![0.0f64; 3]);
        let v = SecondMoment::Factored {
            rows: 0,
            cols: 3,
            row_var: &mut r,
            col_var: &mut c,
        };
        adafactor(
            vec![AdafactorTensor {
                p: &mut [],
                g: &[],
                v,
            }],
            &args(1),
        );
        assert_eq!(c, vec![0.0; 3]);
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let (rows, cols) = (3 * 700, PARALLEL_MIN_BYTES / 4 / 2000 + 300);
        let n = rows * cols;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let mut p = vec![0.5f32; n];
            let (mut r, mut c) = (vec![0.0f32; rows], vec![0.0f32; 3 * cols]);
            let (mut q, mut v) = (vec![0.5f32; 1000], vec![0.0f32; 1000]);
            for step in 1..=2 {
                let t = AdafactorTensor {
                    p: &mut p,
                    g: &g,
                    v: SecondMoment::Factored {
                        rows: rows / 3,
                        cols,
                        row_var: &mut r,
                        col_var: &mut c,
                    },
                };
                let u = AdafactorTensor {
                    p: &mut q,
                    g: &g[..1000],
                    v: SecondMoment::Full(&mut v),
                };
                adafactor(vec![t, u], &args(step));
            }
            (p, r, c, q, v)
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(3));
    }
}
