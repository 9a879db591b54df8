//! LARS over a whole dict of layers in one call (the engine of `LARS.update`).

use gradfast_kernels::optim::lars as kernel;
use gradfast_kernels::optim::lars::LarsTensor;
use pyo3::intern;
use pyo3::prelude::*;

use super::{optimizer_step, Dicts};
use crate::arrays::Float;
use crate::bindings::lock::StepLock;
use crate::bindings::run;
use crate::error::Result;
use crate::{dispatch, hyper_class};

hyper_class! {
    /// `gradfast.LARS`'s hyper-parameters.
    LarsHyper {
        learning_rate: f64,
        momentum: f64,
        weight_decay: f64,
        trust_coefficient: f64,
        epsilon: f64,
    }
}

fn lars_typed<T: Float>(py: Python<'_>, dicts: &Dicts, h: &kernel::LarsHyper) -> Result<()> {
    let (mut groups, ok) = dicts.groups::<T, T>(&[(intern!(py, "velocity"), "velocity")])?;
    let mut total = 0;
    let tensors: Vec<LarsTensor<T>> = groups
        .iter_mut()
        .map(|gr| {
            let p = gr.p.slice(&ok);
            total += p.len();
            let v = gr.slots.first_mut().map_or(&mut [][..], |a| a.slice(&ok));
            LarsTensor {
                p,
                g: gr.g.slice(&ok),
                v,
            }
        })
        .collect();
    run(py, total, || kernel::lars(tensors, h));
    Ok(())
}

/// One LARS step of the optimizer `opt` (under its lock `lock`, from its `state` and `step`)
/// over a dict of layers, in place, then committed to `opt` (the engine of `LARS.update`).
#[pyfunction]
#[pyo3(signature = (func, opt, lock, params, gradients, hyper))]
pub fn lars(
    py: Python<'_>,
    func: &str,
    opt: &Bound<'_, PyAny>,
    lock: &Bound<'_, StepLock>,
    params: &Bound<'_, PyAny>,
    gradients: &Bound<'_, PyAny>,
    hyper: &Bound<'_, LarsHyper>,
) -> PyResult<()> {
    let hyper = hyper.get();
    optimizer_step(func, opt, lock, params, gradients, |dicts, _| {
        if let Some(dtype) = dicts.dtype()? {
            let h = kernel::LarsHyper {
                lr: hyper.learning_rate,
                momentum: hyper.momentum,
                weight_decay: hyper.weight_decay,
                trust_coefficient: hyper.trust_coefficient,
                eps: hyper.epsilon,
            };
            dispatch!(dtype => lars_typed(py, dicts, &h))?;
        }
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LarsHyper>()?;
    m.add_function(wrap_pyfunction!(lars, m)?)
}
