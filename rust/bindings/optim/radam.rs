//! `RAdam` (the engine of its `update`).

use gradfast_kernels::optim::radam::{radam as kernel, RAdamArgs, RAdamTensor};
use gradfast_kernels::{Real, Store};
use pyo3::prelude::*;

use super::{Dicts, Hypers};
use crate::arrays::Elem;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.RAdam`'s hyper-parameters.
    RAdamHyper {
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        epsilon: f64,
        weight_decay: f64,
        decoupled: bool,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: Option<u64>,
    }
}

fn radam_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<RAdamHyper>,
    step: u64,
) -> Result<()> {
    dicts.run::<P, S, 2, _>(py, ["exp_avg", "exp_avg_sq"], h, |arrays, h| {
        let args = RAdamArgs {
            learning_rate: h.learning_rate,
            beta1: h.beta1,
            beta2: h.beta2,
            epsilon: h.epsilon,
            weight_decay: h.weight_decay,
            decoupled: h.decoupled,
            maximize: h.maximize,
            step,
        };
        let tensors = arrays.into_iter().map(|a| {
            let draws = a.draws(h.rounding_seed, step);
            let [exp_avg, exp_avg_sq] = a.slots;
            RAdamTensor {
                p: a.p,
                g: a.g,
                exp_avg,
                exp_avg_sq,
                draws,
            }
        });
        kernel::<C, P, S>(tensors.collect(), &args)
    })
}

step_binding! {
    /// One RAdam step over a dict of parameters, in place, committed to `steps`.
    radam(RAdamHyper, bf16_state: bf16_state) => radam_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RAdamHyper>()?;
    m.add_function(wrap_pyfunction!(radam, m)?)
}
