//! `LAMB` (the engine of its `update`).

use gradfast_kernels::optim::lamb::{lamb as kernel, LambArgs, LambTensor};
use pyo3::prelude::*;

use super::{Dicts, Hypers};
use crate::arrays::Float;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.LAMB`'s hyper-parameters.
    LambHyper {
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        epsilon: f64,
        weight_decay: f64,
        maximize: bool,
    }
}

fn lamb_typed<T: Float>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<LambHyper>,
    step: u64,
) -> Result<()> {
    dicts.run::<T, T, 2, _>(py, ["exp_avg", "exp_avg_sq"], h, |arrays, h| {
        let args = LambArgs {
            learning_rate: h.learning_rate,
            beta1: h.beta1,
            beta2: h.beta2,
            epsilon: h.epsilon,
            weight_decay: h.weight_decay,
            maximize: h.maximize,
            step,
        };
        let tensors = arrays.into_iter().map(|a| {
            let [m, v] = a.slots;
            LambTensor {
                p: a.p,
                g: a.g,
                m,
                v,
            }
        });
        kernel(tensors.collect(), &args)
    })
}

step_binding! {
    /// One LAMB step over a dict of layers, in place, committed to `steps`.
    lamb(LambHyper) => lamb_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LambHyper>()?;
    m.add_function(wrap_pyfunction!(lamb, m)?)
}
