//! `MomentumOptimizer` (the engine of its `update`).

use gradfast_kernels::optim::momentum::{momentum as kernel, MomentumArgs, MomentumTensor};
use gradfast_kernels::{Real, Store};
use pyo3::prelude::*;

use super::{Dicts, Hypers};
use crate::arrays::Elem;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.MomentumOptimizer`'s hyper-parameters.
    MomentumHyper {
        learning_rate: f64,
        momentum: f64,
        nesterov: bool,
        maximize: bool,
        bf16_state: bool,
    }
}

fn momentum_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<MomentumHyper>,
    _step: u64,
) -> Result<()> {
    dicts.run::<P, S, 1, _>(py, ["velocity"], h, |arrays, h| {
        let args = MomentumArgs {
            learning_rate: h.learning_rate,
            momentum: h.momentum,
            nesterov: h.nesterov,
            maximize: h.maximize,
        };
        let tensors = arrays.into_iter().map(|a| {
            let [v] = a.slots;
            MomentumTensor { p: a.p, g: a.g, v }
        });
        kernel::<C, P, S>(tensors.collect(), &args)
    })
}

step_binding! {
    /// One momentum step over a dict of parameters, in place, committed to `steps`.
    momentum(MomentumHyper, bf16_state: bf16_state) => momentum_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MomentumHyper>()?;
    m.add_function(wrap_pyfunction!(momentum, m)?)
}
