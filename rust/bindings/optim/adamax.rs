//! `Adamax` (the engine of its `update`).

use gradfast_kernels::optim::adamax::{adamax as kernel, AdamaxArgs, AdamaxTensor};
use gradfast_kernels::{Real, Store};
use pyo3::prelude::*;

use super::{Dicts, Hypers};
use crate::arrays::Elem;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.Adamax`'s hyper-parameters.
    AdamaxHyper {
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        epsilon: f64,
        weight_decay: f64,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: Option<u64>,
    }
}

fn adamax_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<AdamaxHyper>,
    step: u64,
) -> Result<()> {
    dicts.run::<P, S, 2, _>(py, ["exp_avg", "exp_inf"], h, |arrays, h| {
        let args = AdamaxArgs {
            learning_rate: h.learning_rate,
            beta1: h.beta1,
            beta2: h.beta2,
            epsilon: h.epsilon,
            weight_decay: h.weight_decay,
            maximize: h.maximize,
            step,
        };
        let tensors = arrays.into_iter().map(|a| {
            let draws = a.draws(h.rounding_seed, step);
            let [exp_avg, exp_inf] = a.slots;
            AdamaxTensor {
                p: a.p,
                g: a.g,
                exp_avg,
                exp_inf,
                draws,
            }
        });
        kernel::<C, P, S>(tensors.collect(), &args)
    })
}

step_binding! {
    /// One Adamax step over a dict of parameters, in place, committed to `steps`.
    adamax(AdamaxHyper, bf16_state: bf16_state) => adamax_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AdamaxHyper>()?;
    m.add_function(wrap_pyfunction!(adamax, m)?)
}
