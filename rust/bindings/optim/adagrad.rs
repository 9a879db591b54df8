//! `Adagrad` (the engine of its `update`).

use gradfast_kernels::optim::adagrad::{adagrad as kernel, AdagradArgs, AdagradTensor};
use gradfast_kernels::{Real, Store};
use pyo3::prelude::*;

use super::{Dicts, Hypers};
use crate::arrays::Elem;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.Adagrad`'s hyper-parameters.
    AdagradHyper {
        learning_rate: f64,
        lr_decay: f64,
        weight_decay: f64,
        epsilon: f64,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: Option<u64>,
    }
}

fn adagrad_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<AdagradHyper>,
    step: u64,
) -> Result<()> {
    dicts.run::<P, S, 1, _>(py, ["sum"], h, |arrays, h| {
        let args = AdagradArgs {
            learning_rate: h.learning_rate,
            lr_decay: h.lr_decay,
            weight_decay: h.weight_decay,
            epsilon: h.epsilon,
            maximize: h.maximize,
            step,
        };
        let tensors = arrays.into_iter().map(|a| {
            let draws = a.draws(h.rounding_seed, step);
            let [sum] = a.slots;
            AdagradTensor {
                p: a.p,
                g: a.g,
                sum,
                draws,
            }
        });
        kernel::<C, P, S>(tensors.collect(), &args)
    })
}

step_binding! {
    /// One Adagrad step over a dict of parameters, in place, committed to `steps`.
    adagrad(AdagradHyper, bf16_state: bf16_state) => adagrad_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AdagradHyper>()?;
    m.add_function(wrap_pyfunction!(adagrad, m)?)
}
