//! `NAdam` (the engine of its `update`). Its running `mu_product` is the step state's `extra`
//! (a float): read, advanced and committed with the arrays and the step count.

use gradfast_kernels::optim::nadam::{nadam as kernel, NAdamArgs, NAdamTensor};
use gradfast_kernels::{Real, Store};
use pyo3::prelude::*;
use pyo3::types::PyFloat;

use super::{take_step_with_extra, Dicts, Groups, Hypers};
use crate::arrays::{Elem, Layout};
use crate::bindings::steps::StepState;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::hyper_class;

hyper_class! {
    /// `gradfast.NAdam`'s hyper-parameters.
    NAdamHyper {
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        epsilon: f64,
        weight_decay: f64,
        momentum_decay: f64,
        decoupled: bool,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: Option<u64>,
    }
}

fn nadam_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    hypers: &Hypers<NAdamHyper>,
    args: &NAdamArgs,
) -> Result<()> {
    dicts.run::<P, S, 2, _>(py, ["exp_avg", "exp_avg_sq"], hypers, |arrays, h| {
        let tensors = arrays.into_iter().map(|a| {
            let draws = a.draws(h.rounding_seed, args.step);
            let [exp_avg, exp_avg_sq] = a.slots;
            NAdamTensor {
                p: a.p,
                g: a.g,
                exp_avg,
                exp_avg_sq,
                draws,
            }
        });
        // beta1 and momentum_decay, which make mu_product, are the optimizer's own
        let args = NAdamArgs {
            learning_rate: h.learning_rate,
            beta2: h.beta2,
            epsilon: h.epsilon,
            weight_decay: h.weight_decay,
            decoupled: h.decoupled,
            maximize: h.maximize,
            ..*args
        };
        kernel::<C, P, S>(tensors.collect(), &args)
    })
}

/// One NAdam step over a dict of parameters, in place, committed to `steps` with the new
/// `mu_product` (its `extra`).
#[pyfunction]
#[pyo3(signature = (func, steps, params, gradients, fresh, hyper, groups=None))]
#[allow(clippy::too_many_arguments)]
pub fn nadam<'py>(
    py: Python<'py>,
    func: &str,
    steps: &Bound<'py, StepState>,
    params: &Bound<'py, PyAny>,
    gradients: &Bound<'py, PyAny>,
    fresh: Option<Bound<'py, PyAny>>,
    hyper: &Bound<'py, NAdamHyper>,
    groups: Groups<'py, NAdamHyper>,
) -> PyResult<()> {
    let h = hyper.get();
    let (hypers, claimed) = super::hypers(hyper, &groups);
    take_step_with_extra(
        func,
        steps,
        params,
        gradients,
        fresh,
        claimed,
        |dicts, step, extra| {
            let layout = dicts.layout(h.bf16_state)?;
            let mut args = NAdamArgs {
                learning_rate: h.learning_rate,
                beta1: h.beta1,
                beta2: h.beta2,
                epsilon: h.epsilon,
                weight_decay: h.weight_decay,
                momentum_decay: h.momentum_decay,
                decoupled: h.decoupled,
                maximize: h.maximize,
                step,
                mu_product: 1.0,
            };
            let previous: f64 = extra.extract().map_err(Error::Python)?;
            args.mu_product = args.next_mu_product(previous, layout == Some(Layout::F64));
            if let Some(layout) = layout {
                dispatch!(storage layout => nadam_typed(py, dicts, &hypers, &args))?;
            }
            *extra = PyFloat::new(py, args.mu_product).into_any();
            Ok(())
        },
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NAdamHyper>()?;
    m.add_function(wrap_pyfunction!(nadam, m)?)
}
