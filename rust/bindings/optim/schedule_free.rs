//! `ScheduleFreeAdamW` (the engine of its `update`, `train` and `eval`). Its running
//! `lr_max`, `weight_sum` and mode are the step state's `extra`, `(lr_max, weight_sum,
//! train_mode)`: read under the lock, the sums advanced and committed with the arrays and the
//! step count; a step in eval mode is refused before anything is written.

use gradfast_kernels::optim::schedule_free::{
    schedule_free as kernel, switch, Schedule, ScheduleFreeArgs, ScheduleFreeTensor, SwitchTensor,
};
use pyo3::prelude::*;

use super::{hypers, take_step_with_extra, Dicts, Groups, Hypers};
use crate::arrays::{float_dtype, same_shape, Call, Float, Items, Mapping, Name};
use crate::bindings::steps::StepState;
use crate::bindings::{guard, run};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::hyper_class;

hyper_class! {
    /// `gradfast.ScheduleFreeAdamW`'s hyper-parameters.
    ScheduleFreeAdamWHyper {
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        epsilon: f64,
        weight_decay: f64,
        warmup_steps: u64,
        r: f64,
        weight_lr_power: f64,
    }
}

fn step_typed<T: Float>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<ScheduleFreeAdamWHyper>,
    args: &(dyn Fn(&ScheduleFreeAdamWHyper) -> ScheduleFreeArgs + Sync),
) -> Result<Schedule> {
    // The schedule hangs only on what every group shares (the optimizer's only settings).
    let mut schedule = args(h).schedule();
    dicts.run::<T, T, 2, _>(py, ["z", "exp_avg_sq"], h, |arrays, h| {
        let tensors = arrays.into_iter().map(|a| {
            let [z, exp_avg_sq] = a.slots;
            ScheduleFreeTensor {
                p: a.p,
                g: a.g,
                z,
                exp_avg_sq,
            }
        });
        schedule = kernel(tensors.collect(), &args(h));
    })?;
    Ok(schedule)
}

/// One schedule-free AdamW step over a dict of parameters, in place, committed to `steps` with
/// the new `(lr_max, weight_sum, train_mode)` (its `extra`); refused in eval mode.
#[pyfunction]
#[pyo3(signature = (func, steps, params, gradients, fresh, hyper, groups=None))]
#[allow(clippy::too_many_arguments)]
pub fn schedule_free_adamw<'py>(
    py: Python<'py>,
    func: &str,
    steps: &Bound<'py, StepState>,
    params: &Bound<'py, PyAny>,
    gradients: &Bound<'py, PyAny>,
    fresh: Option<Bound<'py, PyAny>>,
    hyper: &Bound<'py, ScheduleFreeAdamWHyper>,
    groups: Groups<'py, ScheduleFreeAdamWHyper>,
) -> PyResult<()> {
    let (h, claimed) = hypers(hyper, &groups);
    take_step_with_extra(
        func,
        steps,
        params,
        gradients,
        fresh,
        claimed,
        |dicts, step, extra| {
            let (lr_max, weight_sum, train_mode): (f64, f64, bool) =
                extra.extract().map_err(|_| {
                    Error::Value(format!(
                        "{func}: the optimizer's (lr_max, weight_sum, train_mode) must be two \
                         floats and a bool, got {extra}"
                    ))
                })?;
            if !train_mode {
                return Err(Error::Value(format!(
                    "{func}: the optimizer must be in train mode (call .train(params) before \
                     training, .eval(params) before evaluating), got eval mode"
                )));
            }
            let args = |h: &ScheduleFreeAdamWHyper| ScheduleFreeArgs {
                learning_rate: h.learning_rate,
                beta1: h.beta1,
                beta2: h.beta2,
                epsilon: h.epsilon,
                weight_decay: h.weight_decay,
                warmup_steps: h.warmup_steps,
                r: h.r,
                weight_lr_power: h.weight_lr_power,
                step,
                lr_max,
                weight_sum,
            };
            let s = match dicts.dtype()? {
                Some(dtype) => dispatch!(dtype => step_typed(py, dicts, &h, &args))?,
                None => args(&h).schedule(),
            };
            *extra = (s.lr_max, s.weight_sum, true)
                .into_pyobject(py)
                .map_err(Error::Python)?
                .into_any();
            Ok(())
        },
    )
}

fn switch_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    params: &Items,
    state: &[Bound<'_, PyAny>],
    weight: f64,
) -> Result<()> {
    let z_key = pyo3::intern!(py, "z");
    let mut call = Call::new(func);
    let mut checked = Vec::with_capacity(params.len());
    for ((key, p), s) in params.items.iter().zip(state) {
        let p = call.output::<T>(Name::Item("params", key.clone()), p)?;
        let s = Mapping::new(func, "each optimizer state entry", "state arrays", s)?;
        let name = Name::Slot("state", key.clone(), "z");
        let Some(z) = s.get(z_key.as_any())? else {
            return Err(Error::Value(format!(
                "{func}: {name} must be a state array, got it missing"
            )));
        };
        let z = call.input::<T>(name.clone(), &z)?;
        same_shape(func, &name, z.shape(), p.shape())?;
        checked.push((p, z));
    }
    let ok = call.check_overlaps()?;
    let mut total = 0;
    let tensors: Vec<_> = checked
        .iter_mut()
        .map(|(p, z)| {
            let p = p.slice(&ok);
            total += p.len();
            SwitchTensor { p, z: z.slice(&ok) }
        })
        .collect();
    run(py, total, || switch(tensors, weight));
    Ok(())
}

/// `p = lerp(p, state[key]['z'], weight)` for every key of `params`, in place: the switch
/// between train and eval mode. The caller holds the optimizer's lock.
#[pyfunction]
pub fn schedule_free_switch<'py>(
    py: Python<'py>,
    func: &str,
    params: &Bound<'py, PyAny>,
    state: &Bound<'py, PyAny>,
    weight: f64,
) -> PyResult<()> {
    guard(func, || {
        let params = Items::read(func, "params", "numpy arrays", params)?;
        let state = Mapping::new(func, "the optimizer state", "state dicts", state)?;
        let entries = state.values_for(func, "the optimizer state", "params", &params)?;
        let Some((key, p)) = params.items.first() else {
            return Ok(());
        };
        let dtype = float_dtype(func, &Name::Item("params", key.clone()), p)?;
        dispatch!(dtype => switch_typed(py, func, &params, &entries, weight))?;
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ScheduleFreeAdamWHyper>()?;
    m.add_function(wrap_pyfunction!(schedule_free_adamw, m)?)?;
    m.add_function(wrap_pyfunction!(schedule_free_switch, m)?)
}
