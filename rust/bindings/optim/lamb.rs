//! LAMB over a whole dict of layers in one call (the engine of `LAMB.update`).

use gradfast_kernels::optim::lamb as kernel;
use gradfast_kernels::optim::lamb::LambTensor;
use pyo3::intern;
use pyo3::prelude::*;

use super::{optimizer_step, Dicts};
use crate::arrays::Float;
use crate::bindings::lock::StepLock;
use crate::bindings::run;
use crate::error::Result;
use crate::{dispatch, hyper_class};

hyper_class! {
    /// `gradfast.LAMB`'s hyper-parameters.
    LambHyper {
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        epsilon: f64,
        weight_decay: f64,
    }
}

fn lamb_typed<T: Float>(py: Python<'_>, dicts: &Dicts, h: &kernel::LambHyper) -> Result<()> {
    let m = (intern!(py, "exp_avg"), "exp_avg");
    let v = (intern!(py, "exp_avg_sq"), "exp_avg_sq");
    let (mut groups, ok) = dicts.groups::<T, T>(&[m, v])?;
    let mut total = 0;
    let tensors: Vec<LambTensor<T>> = groups
        .iter_mut()
        .map(|gr| {
            let mut slots = gr.slots.iter_mut();
            let (m, v) = (slots.next(), slots.next());
            let p = gr.p.slice(&ok);
            total += p.len();
            LambTensor {
                p,
                g: gr.g.slice(&ok),
                m: m.map_or(&mut [], |a| a.slice(&ok)),
                v: v.map_or(&mut [], |a| a.slice(&ok)),
            }
        })
        .collect();
    run(py, total, || kernel::lamb(tensors, h));
    Ok(())
}

/// One LAMB step of the optimizer `opt` (under its lock `lock`, from its `state` and `step`)
/// over a dict of layers, in place, then committed to `opt` (the engine of `LAMB.update`).
#[pyfunction]
#[pyo3(signature = (func, opt, lock, params, gradients, hyper))]
pub fn lamb(
    py: Python<'_>,
    func: &str,
    opt: &Bound<'_, PyAny>,
    lock: &Bound<'_, StepLock>,
    params: &Bound<'_, PyAny>,
    gradients: &Bound<'_, PyAny>,
    hyper: &Bound<'_, LambHyper>,
) -> PyResult<()> {
    let hyper = hyper.get();
    optimizer_step(func, opt, lock, params, gradients, |dicts, step| {
        if let Some(dtype) = dicts.dtype()? {
            let h = kernel::LambHyper {
                lr: hyper.learning_rate,
                beta1: hyper.beta1,
                beta2: hyper.beta2,
                eps: hyper.epsilon,
                weight_decay: hyper.weight_decay,
                step,
            };
            dispatch!(dtype => lamb_typed(py, dicts, &h))?;
        }
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LambHyper>()?;
    m.add_function(wrap_pyfunction!(lamb, m)?)
}
