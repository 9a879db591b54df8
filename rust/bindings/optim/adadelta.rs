//! `Adadelta` (the engine of its `update`).

use gradfast_kernels::optim::adadelta::{adadelta as kernel, AdadeltaArgs, AdadeltaTensor};
use gradfast_kernels::{Real, Store};
use pyo3::prelude::*;

use super::{Dicts, Hypers};
use crate::arrays::Elem;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.Adadelta`'s hyper-parameters.
    AdadeltaHyper {
        learning_rate: f64,
        rho: f64,
        epsilon: f64,
        weight_decay: f64,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: Option<u64>,
    }
}

fn adadelta_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<AdadeltaHyper>,
    step: u64,
) -> Result<()> {
    dicts.run::<P, S, 2, _>(py, ["square_avg", "acc_delta"], h, |arrays, h| {
        let args = AdadeltaArgs {
            learning_rate: h.learning_rate,
            rho: h.rho,
            epsilon: h.epsilon,
            weight_decay: h.weight_decay,
            maximize: h.maximize,
        };
        let tensors = arrays.into_iter().map(|a| {
            let draws = a.draws(h.rounding_seed, step);
            let [square_avg, acc_delta] = a.slots;
            AdadeltaTensor {
                p: a.p,
                g: a.g,
                square_avg,
                acc_delta,
                draws,
            }
        });
        kernel::<C, P, S>(tensors.collect(), &args)
    })
}

step_binding! {
    /// One Adadelta step over a dict of parameters, in place, committed to `steps`.
    adadelta(AdadeltaHyper, bf16_state: bf16_state) => adadelta_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AdadeltaHyper>()?;
    m.add_function(wrap_pyfunction!(adadelta, m)?)
}
