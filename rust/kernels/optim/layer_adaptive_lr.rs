//! The original design's layer-wise adaptive learning rates (`LayerAdaptiveLR`): per element,
//! `sq = beta * sq + (1 - beta) * g * g` and `rate = lr / (sqrt(sq / (1 - beta^n)) + eps)`,
//! with `n` the layer's own step count. One fused pass, which either moves the parameters in
//! place, writes `p - rate * g` to a new array, or writes the rates themselves.

use crate::runtime::bundle::Each;
use crate::runtime::pool::for_each_chunk;
use crate::Real;

#[derive(Clone, Copy, Debug)]
pub struct LayerAdaptiveLRArgs {
    pub learning_rate: f64,
    pub beta: f64,
    pub epsilon: f64,
}

/// What a step writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// `out` holds the parameters and is moved in place: `out -= rate * g`.
    InPlace,
    /// `out = p - rate * g`, with `p` the parameters (read only).
    Stepped,
    /// `out = rate`.
    Rates,
}

crate::bundle! {
    /// One layer. `p` is given only for [`Write::Stepped`].
    pub struct LayerAdaptiveLRTensor<'a, T> {
        pub out: &'a mut [T],
        pub g: &'a [T],
        pub sq: &'a mut [T],
        pub p: Option<&'a [T]>,
        /// The layer's step number `n` (1-based).
        pub step: Each<u64>,
    }
}

/// Advances every layer by one step and writes what `write` says.
pub fn layer_adaptive_lr<T: Real>(
    tensors: Vec<LayerAdaptiveLRTensor<'_, T>>,
    h: &LayerAdaptiveLRArgs,
    write: Write,
) {
    let (beta, one_minus_beta) = (T::of(h.beta), T::of(1.0 - h.beta));
    let (lr, eps) = (T::of(h.learning_rate), T::of(h.epsilon));
    let size = std::mem::size_of::<T>();
    // sq read and written, g read, out written (and read in place, or p read)
    let bytes = if write == Write::Rates { 4 } else { 5 } * size;
    for_each_chunk(tensors, bytes, |t| {
        let bc = T::of(1.0 - h.beta.powf(t.step.0 as f64));
        let c = Consts {
            beta,
            one_minus_beta,
            bc,
            lr,
            eps,
        };
        match (write, t.p) {
            (Write::InPlace, _) => in_place(t.out, t.g, t.sq, &c),
            (Write::Stepped, Some(p)) => stepped(t.out, p, t.g, t.sq, &c),
            (Write::Stepped, None) | (Write::Rates, _) => rates(t.out, t.g, t.sq, &c),
        }
    });
}

#[derive(Clone, Copy)]
struct Consts<T> {
    beta: T,
    one_minus_beta: T,
    /// `1 - beta^n`
    bc: T,
    lr: T,
    eps: T,
}

/// The new square average and the rate of one element.
#[inline(always)]
fn advance<T: Real>(g: T, sq: T, c: &Consts<T>) -> (T, T) {
    let sq = sq * c.beta + c.one_minus_beta * (g * g);
    (sq, c.lr / ((sq / c.bc).sqrt() + c.eps))
}

crate::simd! {
    fn in_place<T: Real>(p: &mut [T], g: &[T], sq: &mut [T], c: &Consts<T>) {
        let n = p.len();
        let (g, sq) = (&g[..n], &mut sq[..n]);
        for i in 0..n {
            let (s, rate) = advance(g[i], sq[i], c);
            sq[i] = s;
            p[i] = p[i] - rate * g[i];
        }
    }
}

crate::simd! {
    fn stepped<T: Real>(out: &mut [T], p: &[T], g: &[T], sq: &mut [T], c: &Consts<T>) {
        let n = out.len();
        let (p, g, sq) = (&p[..n], &g[..n], &mut sq[..n]);
        for i in 0..n {
            let (s, rate) = advance(g[i], sq[i], c);
            sq[i] = s;
            out[i] = p[i] - rate * g[i];
        }
    }
}

crate::simd! {
    fn rates<T: Real>(out: &mut [T], g: &[T], sq: &mut [T], c: &Consts<T>) {
        let n = out.len();
        let (g, sq) = (&g[..n], &mut sq[..n]);
        for i in 0..n {
            let (s, rate) = advance(g[i], sq[i], c);
            sq[i] = s;
            out[i] = rate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    const H: LayerAdaptiveLRArgs = LayerAdaptiveLRArgs {
        learning_rate: 0.1,
        beta: 0.5,
        epsilon: 0.0,
    };

    #[test]
    fn rates_by_hand_with_per_layer_steps() {
        // step 1: sq = 0.5 g^2, corrected g^2, rate lr / |g|;
        // step 2 from sq = 2: sq = 1 + 0.5 * 4 = 3, corrected 3 / 0.75 = 4, rate 0.1 / 2
        let (g, mut out) = (vec![2.0f64], vec![0.0]);
        let (mut sq1, mut sq2) = (vec![0.0], vec![2.0]);
        let mut out2 = vec![0.0];
        let a = LayerAdaptiveLRTensor {
            out: &mut out,
            g: &g,
            sq: &mut sq1,
            p: None,
            step: Each(1),
        };
        let b = LayerAdaptiveLRTensor {
            out: &mut out2,
            g: &g,
            sq: &mut sq2,
            p: None,
            step: Each(2),
        };
        layer_adaptive_lr(vec![a, b], &H, Write::Rates);
        assert_eq!((out[0], sq1[0]), (0.05, 2.0));
        assert_eq!((out2[0], sq2[0]), (0.05, 3.0));
    }

    #[test]
    fn stepped_and_in_place_agree_and_stepped_leaves_params() {
        let p0 = vec![1.0f32, -1.0, 0.5];
        let g = vec![0.5f32, 0.25, -4.0];
        let (mut p, mut out) = (p0.clone(), vec![0.0; 3]);
        let (mut sq1, mut sq2) = (vec![0.1f32; 3], vec![0.1f32; 3]);
        let t = |out, sq, p| LayerAdaptiveLRTensor {
            out,
            g: &g,
            sq,
            p,
            step: Each(3),
        };
        layer_adaptive_lr(vec![t(&mut out, &mut sq1, Some(&p0))], &H, Write::Stepped);
        layer_adaptive_lr(vec![t(&mut p, &mut sq2, None)], &H, Write::InPlace);
        assert_eq!((&out, &sq1), (&p, &sq2));
        assert_ne!(out, p0);
    }

    #[test]
    fn empty_layers_and_one_thread_equals_many_bitwise() {
        let n = PARALLEL_MIN_BYTES / 20 + 2 * CHUNK + 7;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let p: Vec<f32> = (0..n).map(|i| (i % 37) as f32 / 10.0).collect();
        let run = |threads| {
            set_num_threads(threads);
            let (mut out, mut sq) = (vec![0.0f32; n], vec![0.0f32; n]);
            for step in 1..=3 {
                let empty = LayerAdaptiveLRTensor {
                    out: &mut [],
                    g: &[],
                    sq: &mut [],
                    p: Some(&[]),
                    step: Each(1),
                };
                let t = LayerAdaptiveLRTensor {
                    out: &mut out,
                    g: &g,
                    sq: &mut sq,
                    p: Some(&p),
                    step: Each(step),
                };
                // eps > 0: zero gradients would give 0 * inf = NaN, which no assert_eq! equals
                let h = LayerAdaptiveLRArgs { epsilon: 1e-8, ..H };
                layer_adaptive_lr(vec![empty, t], &h, Write::Stepped);
            }
            (out, sq)
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(4));
    }
}
