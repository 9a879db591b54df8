//! `Adam` and `AdamW` (the engine of their `update`), and the original functional
//! `adam_optimizer` on one array.

use gradfast_kernels::optim::adam::{
    adam as kernel, adam_8bit as kernel_8bit, AdamArgs, AdamTensor,
};
use gradfast_kernels::runtime::store::Draws;
use gradfast_kernels::{Real, Store};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::{Dicts, Hypers};
use crate::arrays::{float_dtype, same_shape, Call, Elem, Float, Name};
use crate::bindings::{guard, run};
use crate::error::{Error, Result};
use crate::{dispatch, hyper_class, step_binding};

hyper_class! {
    /// `gradfast.Adam`'s hyper-parameters.
    AdamHyper {
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        epsilon: f64,
        weight_decay: f64,
        decoupled: bool,
        amsgrad: bool,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: Option<u64>,
    }
}

impl AdamHyper {
    fn args(&self, step: u64) -> AdamArgs {
        AdamArgs {
            learning_rate: self.learning_rate,
            beta1: self.beta1,
            beta2: self.beta2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
            decoupled: self.decoupled,
            maximize: self.maximize,
            step,
        }
    }
}

fn adam_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<AdamHyper>,
    step: u64,
) -> Result<()> {
    if h.amsgrad {
        let slots = ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
        dicts.run::<P, S, 3, _>(py, slots, h, |arrays, g| {
            let tensors = arrays.into_iter().map(|a| {
                let draws = a.draws(h.rounding_seed, step);
                let [m, v, vmax] = a.slots;
                AdamTensor {
                    p: a.p,
                    g: a.g,
                    m,
                    v,
                    vmax: Some(vmax),
                    draws,
                }
            });
            kernel::<C, P, S>(tensors.collect(), &g.args(step))
        })
    } else {
        dicts.run::<P, S, 2, _>(py, ["exp_avg", "exp_avg_sq"], h, |arrays, g| {
            let tensors = arrays.into_iter().map(|a| {
                let draws = a.draws(h.rounding_seed, step);
                let [m, v] = a.slots;
                AdamTensor {
                    p: a.p,
                    g: a.g,
                    m,
                    v,
                    vmax: None,
                    draws,
                }
            });
            kernel::<C, P, S>(tensors.collect(), &g.args(step))
        })
    }
}

step_binding! {
    /// One Adam step over a dict of parameters, in place, committed to `steps`.
    adam(AdamHyper, bf16_state: bf16_state) => adam_typed
}

fn adam_8bit_typed(py: Python<'_>, dicts: &Dicts, h: &Hypers<AdamHyper>, step: u64) -> Result<()> {
    if h.amsgrad {
        return Err(Error::Value(format!(
            "{}: amsgrad must be False with state_dtype='8bit' (8-bit Adam keeps no maximum), got True",
            dicts.func
        )));
    }
    let slots = ["exp_avg", "exp_avg_sq"];
    let maxima = ["exp_avg_absmax", "exp_avg_sq_absmax"];
    dicts.run_8bit(py, slots, maxima, h, |full, quantized, h| {
        let args = h.args(step);
        let full = full.into_iter().map(|a| {
            let [m, v] = a.slots;
            AdamTensor {
                p: a.p,
                g: a.g,
                m,
                v,
                vmax: None,
                draws: Draws::NEAREST,
            }
        });
        kernel::<f32, f32, f32>(full.collect(), &args);
        kernel_8bit(quantized.into_iter().map(|a| a.tensor()).collect(), &args);
    })
}

step_binding! {
    @fn
    /// One Adam step with 8-bit state over a dict of float32 parameters, in place, committed
    /// to `steps`.
    adam_8bit(AdamHyper) |py, dicts, h, step| adam_8bit_typed(py, dicts, h, step)
}

fn adam_array_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    arrays: [&Bound<'_, PyAny>; 4],
    args: &AdamArgs,
) -> Result<()> {
    let [p, g, m, v] = arrays;
    let mut call = Call::new(func);
    let mut p = call.output::<T>(Name::Arg("params"), p)?;
    let g = call.input::<T>(Name::Arg("gradients"), g)?;
    same_shape(func, &Name::Arg("gradients"), g.shape(), p.shape())?;
    let mut m = call.output::<T>(Name::Arg("state['m']"), m)?;
    same_shape(func, &Name::Arg("state['m']"), m.shape(), p.shape())?;
    let mut v = call.output::<T>(Name::Arg("state['v']"), v)?;
    same_shape(func, &Name::Arg("state['v']"), v.shape(), p.shape())?;
    let ok = call.check_overlaps()?;
    let t = AdamTensor {
        p: p.slice(&ok),
        g: g.slice(&ok),
        m: m.slice(&ok),
        v: v.slice(&ok),
        vmax: None,
        draws: Draws::NEAREST,
    };
    run(py, t.p.len(), || kernel(vec![t], args));
    Ok(())
}

/// Step number `t` of the original functional Adam on one array with state arrays `m` and
/// `v`; then `state['m']`, `state['v']` and `state['t']` are set.
#[pyfunction]
#[pyo3(signature = (func, params, gradients, state, m, v, t, hyper))]
#[allow(clippy::too_many_arguments)]
pub fn adam_array(
    py: Python<'_>,
    func: &str,
    params: &Bound<'_, PyAny>,
    gradients: &Bound<'_, PyAny>,
    state: &Bound<'_, PyDict>,
    m: &Bound<'_, PyAny>,
    v: &Bound<'_, PyAny>,
    t: u64,
    hyper: &Bound<'_, AdamHyper>,
) -> PyResult<()> {
    guard(func, || {
        let args = hyper.get().args(t);
        let dtype = float_dtype(func, &Name::Arg("params"), params)?;
        dispatch!(dtype => adam_array_typed(py, func, [params, gradients, m, v], &args))?;
        state.set_item(intern!(py, "m"), m)?;
        state.set_item(intern!(py, "v"), v)?;
        state.set_item(intern!(py, "t"), t)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AdamHyper>()?;
    m.add_function(wrap_pyfunction!(adam, m)?)?;
    m.add_function(wrap_pyfunction!(adam_8bit, m)?)?;
    m.add_function(wrap_pyfunction!(adam_array, m)?)
}
