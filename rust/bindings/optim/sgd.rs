//! torch's SGD (the engine of `gradfast.torch.SGD`; the step number says whether the
//! momentum buffers have a value yet: they take the first direction at step 1).

use gradfast_kernels::optim::sgd::{sgd as kernel, sgd_plain, SgdArgs, SgdPlainTensor, SgdTensor};
use gradfast_kernels::{Real, Store};
use pyo3::prelude::*;

use super::{Dicts, Hypers};
use crate::arrays::Elem;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// torch SGD's hyper-parameters.
    SgdStepHyper {
        learning_rate: f64,
        momentum: f64,
        dampening: f64,
        weight_decay: f64,
        nesterov: bool,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: Option<u64>,
    }
}

fn sgd_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<SgdStepHyper>,
    step: u64,
) -> Result<()> {
    let args = |h: &SgdStepHyper| SgdArgs {
        learning_rate: h.learning_rate,
        momentum: h.momentum,
        dampening: h.dampening,
        weight_decay: h.weight_decay,
        nesterov: h.nesterov,
        maximize: h.maximize,
        first: step == 1,
    };
    // Every group has the optimizer's slots (momentum on or off is the optimizer's only).
    if h.momentum == 0.0 {
        return dicts.run::<P, S, 0, _>(py, [], h, |arrays, h| {
            let tensors = arrays
                .into_iter()
                .map(|a| SgdPlainTensor { p: a.p, g: a.g });
            sgd_plain::<C, P>(tensors.collect(), &args(h))
        });
    }
    dicts.run::<P, S, 1, _>(py, ["momentum_buffer"], h, |arrays, group| {
        let tensors = arrays.into_iter().map(|a| {
            let draws = a.draws(h.rounding_seed, step);
            let [buf] = a.slots;
            SgdTensor {
                p: a.p,
                g: a.g,
                buf,
                draws,
            }
        });
        kernel::<C, P, S>(tensors.collect(), &args(group))
    })
}

step_binding! {
    /// One torch SGD step over a dict of parameters, in place, committed to `steps`.
    sgd_step(SgdStepHyper, bf16_state: bf16_state) => sgd_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SgdStepHyper>()?;
    m.add_function(wrap_pyfunction!(sgd_step, m)?)
}
