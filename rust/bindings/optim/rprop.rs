//! `Rprop` (the engine of its `update`).

use gradfast_kernels::optim::rprop::{rprop as kernel, RpropArgs, RpropTensor};
use pyo3::prelude::*;

use super::{Dicts, Hypers};
use crate::arrays::Float;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.Rprop`'s hyper-parameters (`learning_rate` only sets the first step sizes,
    /// which Python fills in).
    RpropHyper {
        learning_rate: f64,
        etaminus: f64,
        etaplus: f64,
        step_size_min: f64,
        step_size_max: f64,
        maximize: bool,
    }
}

fn rprop_typed<T: Float>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<RpropHyper>,
    _step: u64,
) -> Result<()> {
    dicts.run::<T, T, 2, _>(py, ["prev", "step_size"], h, |arrays, h| {
        let args = RpropArgs {
            etaminus: h.etaminus,
            etaplus: h.etaplus,
            step_size_min: h.step_size_min,
            step_size_max: h.step_size_max,
            maximize: h.maximize,
        };
        let tensors = arrays.into_iter().map(|a| {
            let [prev, step_size] = a.slots;
            RpropTensor {
                p: a.p,
                g: a.g,
                prev,
                step_size,
            }
        });
        kernel(tensors.collect(), &args)
    })
}

step_binding! {
    /// One Rprop step over a dict of parameters, in place, committed to `steps`.
    rprop(RpropHyper) => rprop_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RpropHyper>()?;
    m.add_function(wrap_pyfunction!(rprop, m)?)
}
