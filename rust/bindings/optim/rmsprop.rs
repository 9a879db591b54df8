//! `RMSprop` (the engine of its `update`).

use gradfast_kernels::optim::rmsprop::{rmsprop as kernel, RMSpropArgs, RMSpropTensor};
use gradfast_kernels::runtime::store::Draws;
use gradfast_kernels::{Real, Store};
use pyo3::prelude::*;

use super::{Arrays, Dicts, Hypers};
use crate::arrays::Elem;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.RMSprop`'s hyper-parameters.
    RMSpropHyper {
        learning_rate: f64,
        alpha: f64,
        epsilon: f64,
        weight_decay: f64,
        momentum: f64,
        centered: bool,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: Option<u64>,
    }
}

/// The kernel's tensor of one parameter whose slots are `square_avg` and the optional
/// buffers in torch's order (`momentum_buffer`, `grad_avg`), as the settings ask.
fn tensor<'a, P, S, const N: usize>(
    a: Arrays<'a, P, S, N>,
    momentum: bool,
    centered: bool,
    draws: Draws,
) -> RMSpropTensor<'a, P, S> {
    let mut slots = a.slots.into_iter();
    let square_avg = slots.next().unwrap_or_default();
    let momentum_buffer = if momentum { slots.next() } else { None };
    let grad_avg = if centered { slots.next() } else { None };
    RMSpropTensor {
        p: a.p,
        g: a.g,
        square_avg,
        momentum_buffer,
        grad_avg,
        draws,
    }
}

fn rmsprop_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<RMSpropHyper>,
    step: u64,
) -> Result<()> {
    // the slots are the optimizer's (a group may not change them)
    let (m, c) = (h.momentum > 0.0, h.centered);
    let seed = h.rounding_seed;
    let run = |tensors: Vec<RMSpropTensor<'_, P, S>>, h: &RMSpropHyper| {
        let args = RMSpropArgs {
            learning_rate: h.learning_rate,
            alpha: h.alpha,
            epsilon: h.epsilon,
            weight_decay: h.weight_decay,
            momentum: h.momentum,
            centered: h.centered,
            maximize: h.maximize,
        };
        kernel::<C, P, S>(tensors, &args)
    };
    macro_rules! run_with {
        ($n:literal: $($slot:literal),+) => {
            dicts.run::<P, S, $n, _>(py, [$($slot),+], h, |arrays, h| {
                let tensors = arrays.into_iter().map(|a| {
                    let draws = a.draws(seed, step);
                    tensor(a, m, c, draws)
                });
                run(tensors.collect(), h)
            })
        };
    }
    match (m, c) {
        (false, false) => run_with!(1: "square_avg"),
        (true, false) => run_with!(2: "square_avg", "momentum_buffer"),
        (false, true) => run_with!(2: "square_avg", "grad_avg"),
        (true, true) => run_with!(3: "square_avg", "momentum_buffer", "grad_avg"),
    }
}

step_binding! {
    /// One RMSprop step over a dict of parameters, in place, committed to `steps`.
    rmsprop(RMSpropHyper, bf16_state: bf16_state) => rmsprop_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RMSpropHyper>()?;
    m.add_function(wrap_pyfunction!(rmsprop, m)?)
}
