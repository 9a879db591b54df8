//! `Lion` (the engine of its `update`).

use gradfast_kernels::optim::lion::{lion as kernel, LionArgs, LionTensor};
use gradfast_kernels::{Real, Store};
use pyo3::prelude::*;

use super::{Dicts, Hypers};
use crate::arrays::Elem;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.Lion`'s hyper-parameters.
    LionHyper {
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        bf16_state: bool,
    }
}

fn lion_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<LionHyper>,
    _step: u64,
) -> Result<()> {
    dicts.run::<P, S, 1, _>(py, ["exp_avg"], h, |arrays, h| {
        let args = LionArgs {
            learning_rate: h.learning_rate,
            beta1: h.beta1,
            beta2: h.beta2,
            weight_decay: h.weight_decay,
        };
        let tensors = arrays.into_iter().map(|a| {
            let [exp_avg] = a.slots;
            LionTensor {
                p: a.p,
                g: a.g,
                exp_avg,
            }
        });
        kernel::<C, P, S>(tensors.collect(), &args)
    })
}

step_binding! {
    /// One Lion step over a dict of parameters, in place, committed to `steps`.
    lion(LionHyper, bf16_state: bf16_state) => lion_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LionHyper>()?;
    m.add_function(wrap_pyfunction!(lion, m)?)
}
