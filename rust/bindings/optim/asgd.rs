//! `ASGD` (the engine of its `update`). Its running `eta` and `mu`, the same for every
//! parameter, are the `extra` of its step state: `None` before the first step, then the pair
//! the last step left, committed with the state and the step count.

use gradfast_kernels::optim::asgd::{asgd as kernel, ASGDArgs, ASGDTensor};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::{Dicts, Groups, Hypers};
use crate::arrays::Float;
use crate::bindings::guard;
use crate::bindings::steps::{StepState, MAX_STEP};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::hyper_class;

hyper_class! {
    /// `gradfast.ASGD`'s hyper-parameters.
    ASGDHyper {
        learning_rate: f64,
        lambd: f64,
        alpha: f64,
        t0: f64,
        weight_decay: f64,
        maximize: bool,
    }
}

impl ASGDHyper {
    /// The `(eta, mu)` that step number `step` leaves for the next, in float64 as torch forms
    /// them: `lr / (1 + lambd * lr * step) ** alpha` and `1 / max(1, step - t0)`.
    fn after(&self, step: u64) -> (f64, f64) {
        let (lr, t) = (self.learning_rate, step as f64);
        let eta = lr / (1.0 + self.lambd * lr * t).powf(self.alpha);
        (eta, 1.0 / (t - self.t0).max(1.0))
    }
}

fn asgd_typed<T: Float>(
    py: Python<'_>,
    dicts: &Dicts,
    hypers: &Hypers<ASGDHyper>,
    args: &ASGDArgs,
) -> Result<()> {
    dicts.run::<T, T, 1, _>(py, ["ax"], hypers, |arrays, h| {
        let tensors = arrays.into_iter().map(|a| {
            let [ax] = a.slots;
            ASGDTensor { p: a.p, g: a.g, ax }
        });
        // the rate's hyper-parameters, which make eta and mu, are the optimizer's own
        let args = ASGDArgs {
            weight_decay: h.weight_decay,
            maximize: h.maximize,
            ..*args
        };
        kernel(tensors.collect(), &args)
    })
}

/// One ASGD step over a dict of parameters, in place, committed with its `(eta, mu)` to
/// `steps` (as every step binding, see `take_step`).
#[pyfunction]
#[pyo3(signature = (func, steps, params, gradients, fresh, hyper, groups=None))]
#[allow(clippy::too_many_arguments)]
pub fn asgd<'py>(
    py: Python<'py>,
    func: &str,
    steps: &Bound<'py, StepState>,
    params: &Bound<'py, PyAny>,
    gradients: &Bound<'py, PyAny>,
    fresh: Option<Bound<'py, PyAny>>,
    hyper: &Bound<'py, ASGDHyper>,
    groups: Groups<'py, ASGDHyper>,
) -> PyResult<()> {
    let h = hyper.get();
    let (hypers, claimed) = super::hypers(hyper, &groups);
    guard(func, || {
        let mut taking = steps.get().take(py);
        if !taking.state.is_truthy()? {
            if let Some(fresh) = fresh {
                taking.state = fresh;
            }
        }
        if taking.step >= MAX_STEP {
            return Err(Error::Value(format!(
                "{func}: the step count must stay at most 2**62, got a step past it (load a state \
                 with a smaller step to go on)"
            ))
            .into());
        }
        let (eta, mu) = if taking.extra.is_none() {
            (h.learning_rate, 1.0)
        } else {
            taking.extra.extract::<(f64, f64)>().map_err(|_| {
                Error::Value(format!(
                    "{func}: the optimizer's (eta, mu) must be a pair of floats, got {}",
                    taking.extra
                ))
            })?
        };
        taking.step += 1;
        let args = ASGDArgs {
            lambd: h.lambd,
            weight_decay: h.weight_decay,
            maximize: h.maximize,
            eta,
            mu,
        };
        let dicts = Dicts::new(func, params, gradients, &taking.state, claimed)?;
        if let Some(dtype) = dicts.dtype()? {
            dispatch!(dtype => asgd_typed(py, &dicts, &hypers, &args))?;
        }
        let (eta, mu) = h.after(taking.step);
        taking.extra = PyTuple::new(py, [eta, mu])?.into_any();
        taking.commit();
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ASGDHyper>()?;
    m.add_function(wrap_pyfunction!(asgd, m)?)
}
