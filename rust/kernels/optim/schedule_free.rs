//! Schedule-free AdamW (Defazio et al., 2024), fused into one pass over memory.
//!
//! `schedulefree.AdamWScheduleFree`'s single-tensor step operation by operation: the schedule
//! (warmup, the weight `t^r lr_max^weight_lr_power`, the averaging coefficient `c`) in float64
//! as the peer's Python, then per element, scalars rounded once to `T`:
//! `v = v * beta2 + ((1 - beta2) * g) * g`, `u = g / (sqrt(v / bc2) + eps) [+ wd * y]`,
//! `y = lerp(y, z, c) + (lr (beta1 (1 - c) - 1)) * u`, `z = z + (-lr) * u`; `lerp` with
//! ATen's two branches. [`switch`] moves the params between `y` and the average `x`.

use super::lerp::Lerp;
use crate::runtime::pool::for_each_chunk;
use crate::Real;

/// The step's hyper-parameters, the 1-based `step`, and the schedule's running values before
/// it (`lr_max` starts at -1, `weight_sum` at 0).
#[derive(Clone, Copy, Debug)]
pub struct ScheduleFreeArgs {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    pub warmup_steps: u64,
    pub r: f64,
    pub weight_lr_power: f64,
    pub step: u64,
    pub lr_max: f64,
    pub weight_sum: f64,
}

/// The schedule of one step: what the caller commits (`lr_max`, `weight_sum`) and the scalars
/// of the element-wise update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub lr: f64,
    pub lr_max: f64,
    pub weight_sum: f64,
    pub ckp1: f64,
}

impl ScheduleFreeArgs {
    pub fn schedule(&self) -> Schedule {
        let k = self.step - 1;
        let sched = if k < self.warmup_steps {
            (k + 1) as f64 / self.warmup_steps as f64
        } else {
            1.0
        };
        let lr = self.learning_rate * sched;
        let lr_max = lr.max(self.lr_max);
        let weight = ((k + 1) as f64).powf(self.r) * lr_max.powf(self.weight_lr_power);
        let weight_sum = self.weight_sum + weight;
        let ckp1 = if weight_sum != 0.0 {
            weight / weight_sum
        } else {
            0.0
        };
        Schedule {
            lr,
            lr_max,
            weight_sum,
            ckp1,
        }
    }
}

crate::bundle! {
    /// One tensor: the params (`y` in train mode), gradients, and the two state slots.
    pub struct ScheduleFreeTensor<'a, T> {
        pub p: &'a mut [T],
        pub g: &'a [T],
        pub z: &'a mut [T],
        pub exp_avg_sq: &'a mut [T],
    }
}

crate::bundle! {
    /// The params and `z` of one tensor, for [`switch`].
    pub struct SwitchTensor<'a, T> {
        pub p: &'a mut [T],
        pub z: &'a [T],
    }
}

#[derive(Clone, Copy)]
struct Consts<T> {
    beta2: T,
    one_minus_beta2: T,
    bias_correction2: T,
    eps: T,
    weight_decay: T,
    decays: bool,
    lerp: Lerp<T>,
    y_step: T,
    neg_lr: T,
}

/// One step over every tensor, in place; returns the schedule to commit.
pub fn schedule_free<T: Real>(
    tensors: Vec<ScheduleFreeTensor<'_, T>>,
    args: &ScheduleFreeArgs,
) -> Schedule {
    let s = args.schedule();
    let c = Consts {
        beta2: T::of(args.beta2),
        one_minus_beta2: T::of(1.0 - args.beta2),
        bias_correction2: T::of(1.0 - args.beta2.powf(args.step as f64)),
        eps: T::of(args.epsilon),
        weight_decay: T::of(args.weight_decay),
        decays: args.weight_decay != 0.0,
        lerp: Lerp::new(s.ckp1),
        y_step: T::of(s.lr * (args.beta1 * (1.0 - s.ckp1) - 1.0)),
        neg_lr: T::of(-s.lr),
    };
    // p, z, v read and written, g read
    for_each_chunk(tensors, 7 * size_of::<T>(), |t| {
        step_slices(t.p, t.g, t.z, t.exp_avg_sq, &c)
    });
    s
}

/// `p = lerp(p, z, weight)` over every tensor: `weight = 1 - 1/beta1` for eval, `1 - beta1`
/// for train.
pub fn switch<T: Real>(tensors: Vec<SwitchTensor<'_, T>>, weight: f64) {
    let l = Lerp::<T>::new(weight);
    for_each_chunk(tensors, 3 * size_of::<T>(), |t| switch_slices(t.p, t.z, &l));
}

crate::simd! {
    fn step_slices<T: Real>(y: &mut [T], g: &[T], z: &mut [T], v: &mut [T], c: &Consts<T>) {
        let n = y.len();
        let (g, z, v) = (&g[..n], &mut z[..n], &mut v[..n]);
        let c = *c;
        for i in 0..n {
            let gi = g[i];
            let vi = v[i] * c.beta2 + (c.one_minus_beta2 * gi) * gi;
            v[i] = vi;
            let mut u = gi / ((vi / c.bias_correction2).sqrt() + c.eps);
            if c.decays {
                u = u + c.weight_decay * y[i];
            }
            let zi = z[i];
            y[i] = c.lerp.at(y[i], zi) + c.y_step * u;
            z[i] = zi + c.neg_lr * u;
        }
    }
}

crate::simd! {
    fn switch_slices<T: Real>(p: &mut [T], z: &[T], l: &Lerp<T>) {
        let n = p.len();
        let z = &z[..n];
        let l = *l;
        for i in 0..n {
            p[i] = l.at(p[i], z[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, CHUNK, PARALLEL_MIN_BYTES};

    fn args(step: u64) -> ScheduleFreeArgs {
        ScheduleFreeArgs {
            learning_rate: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.1,
            warmup_steps: 3,
            r: 0.5,
            weight_lr_power: 2.0,
            step,
            lr_max: -1.0,
            weight_sum: 0.0,
        }
    }

    #[test]
    fn the_schedule_warms_up_and_weights_by_lr_max() {
        let s1 = args(1).schedule();
        assert_eq!(s1.lr, 0.01 * (1.0 / 3.0));
        assert_eq!(s1.lr_max, s1.lr);
        assert_eq!(s1.ckp1, 1.0); // the first weight is the whole sum
        let a2 = ScheduleFreeArgs {
            lr_max: s1.lr_max,
            weight_sum: s1.weight_sum,
            ..args(2)
        };
        let s2 = a2.schedule();
        let w2 = 2f64.powf(0.5) * (0.01f64 * (2.0 / 3.0)).powf(2.0);
        assert_eq!(s2.weight_sum, s1.weight_sum + w2);
        assert_eq!(s2.ckp1, w2 / (s1.weight_sum + w2));
        let zero = ScheduleFreeArgs {
            learning_rate: 0.0,
            ..args(1)
        };
        assert_eq!(zero.schedule().ckp1, 0.0);
    }

    #[test]
    fn a_step_matches_a_scalar_recomputation() {
        let a = args(1);
        let s = a.schedule();
        let (mut y, mut z, mut v) = (vec![0.5f64, -1.0], vec![0.5f64, -1.0], vec![0.0f64; 2]);
        let g = [0.25f64, -2.0];
        schedule_free(
            vec![ScheduleFreeTensor {
                p: &mut y,
                g: &g,
                z: &mut z,
                exp_avg_sq: &mut v,
            }],
            &a,
        );
        let y0 = [0.5f64, -1.0];
        for i in 0..2 {
            let vi = 0.0 * 0.999 + ((1.0 - 0.999) * g[i]) * g[i];
            let u = g[i] / ((vi / (1.0 - 0.999f64)).sqrt() + 1e-8) + 0.1 * y0[i];
            // c = 1: lerp's upper branch gives z exactly
            let yi = y0[i] + (s.lr * (0.9 * (1.0 - 1.0) - 1.0)) * u;
            assert_eq!((v[i], y[i], z[i]), (vi, yi, y0[i] + -s.lr * u));
        }
    }

    #[test]
    fn eval_then_train_returns_to_y() {
        let (mut p, z) = (vec![1.0f64, 2.0, -3.0], vec![0.0f64, 1.0, 1.0]);
        let y = p.clone();
        switch(vec![SwitchTensor { p: &mut p, z: &z }], 1.0 - 1.0 / 0.9);
        switch(vec![SwitchTensor { p: &mut p, z: &z }], 1.0 - 0.9);
        for i in 0..3 {
            assert!((p[i] - y[i]).abs() < 1e-15);
        }
    }

    #[test]
    fn empty_input_is_a_no_op() {
        schedule_free::<f32>(vec![], &args(1));
        switch::<f64>(vec![], 0.5);
    }

    #[test]
    fn one_thread_equals_many_threads_bitwise() {
        let n = PARALLEL_MIN_BYTES / 28 + 2 * CHUNK + 5;
        let g: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let run = |threads| {
            set_num_threads(threads);
            let (mut p, mut z, mut v) = (vec![0.5f32; n], vec![0.5f32; n], vec![0.0f32; n]);
            let (mut lr_max, mut weight_sum) = (-1.0, 0.0);
            for step in 1..=3 {
                let a = ScheduleFreeArgs {
                    lr_max,
                    weight_sum,
                    ..args(step)
                };
                let t = ScheduleFreeTensor {
                    p: &mut p,
                    g: &g,
                    z: &mut z,
                    exp_avg_sq: &mut v,
                };
                let s = schedule_free(vec![t], &a);
                (lr_max, weight_sum) = (s.lr_max, s.weight_sum);
            }
            switch(vec![SwitchTensor { p: &mut p, z: &z }], 1.0 - 1.0 / 0.9);
            (p, z, v)
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(3));
    }
}
