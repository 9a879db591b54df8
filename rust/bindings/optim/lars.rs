//! `LARS` (the engine of its `update`).

use gradfast_kernels::optim::lars::{lars as kernel, LarsArgs, LarsTensor};
use pyo3::prelude::*;

use super::{Dicts, Hypers};
use crate::arrays::Float;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.LARS`'s hyper-parameters.
    LarsHyper {
        learning_rate: f64,
        momentum: f64,
        weight_decay: f64,
        trust_coefficient: f64,
        epsilon: f64,
        maximize: bool,
    }
}

fn lars_typed<T: Float>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<LarsHyper>,
    _step: u64,
) -> Result<()> {
    dicts.run::<T, T, 1, _>(py, ["velocity"], h, |arrays, h| {
        let args = LarsArgs {
            learning_rate: h.learning_rate,
            momentum: h.momentum,
            weight_decay: h.weight_decay,
            trust_coefficient: h.trust_coefficient,
            epsilon: h.epsilon,
            maximize: h.maximize,
        };
        let tensors = arrays.into_iter().map(|a| {
            let [v] = a.slots;
            LarsTensor { p: a.p, g: a.g, v }
        });
        kernel(tensors.collect(), &args)
    })
}

step_binding! {
    /// One LARS step over a dict of layers, in place, committed to `steps`.
    lars(LarsHyper) => lars_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LarsHyper>()?;
    m.add_function(wrap_pyfunction!(lars, m)?)
}
