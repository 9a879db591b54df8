//! Adam/AdamW and momentum over a whole dict of parameters in one call.
//!
//! `state` maps each parameter's key to a dict of state arrays (`exp_avg`, `velocity`, ...),
//! as the Python optimizer classes keep it.

use gradfast_kernels::optim::adam::{adam as adam_kernel, AdamHyper, AdamTensor};
use gradfast_kernels::optim::momentum::{
    momentum as momentum_kernel, MomentumHyper, MomentumTensor,
};
use gradfast_kernels::Real;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::run;
use crate::arrays::{
    dict, float_dtype, same_keys, same_shape, Call, Checked, Dtype, Float, In, Name, Out,
};
use crate::error::{python, Error, Result};

/// The arrays of one parameter: itself, its gradient and its state slots.
struct Group<'py, T: Float> {
    p: Out<'py, T>,
    g: In<'py, T>,
    slots: Vec<Out<'py, T>>,
}

/// The dict arguments of an optimizer step, with their keys checked against each other.
struct Dicts<'a, 'py> {
    func: &'a str,
    params: &'a Bound<'py, PyDict>,
    grads: &'a Bound<'py, PyDict>,
    state: &'a Bound<'py, PyDict>,
}

impl<'a, 'py> Dicts<'a, 'py> {
    fn new(
        func: &'a str,
        params: &'a Bound<'py, PyAny>,
        grads: &'a Bound<'py, PyAny>,
        state: &'a Bound<'py, PyAny>,
    ) -> Result<Self> {
        let params = dict(func, "params", params)?;
        let grads = dict(func, "gradients", grads)?;
        let state = dict(func, "the optimizer state", state)?;
        same_keys(func, "gradients", grads, "params", params)?;
        same_keys(func, "params", params, "the optimizer state", state)?;
        Ok(Dicts {
            func,
            params,
            grads,
            state,
        })
    }

    /// The dtype of the first parameter; `None` for an empty dict.
    fn dtype(&self) -> Result<Option<Dtype>> {
        match self.params.iter().next() {
            None => Ok(None),
            Some((key, p)) => float_dtype(self.func, &Name::Item("params", key), &p).map(Some),
        }
    }

    /// Validates every array; `slots` are the state slot names, as interned Python strings
    /// (looked up without building a string each time) and for messages.
    fn groups<T: Float>(
        &self,
        slots: &[(&Bound<'py, PyString>, &'static str)],
    ) -> Result<(Vec<Group<'py, T>>, Checked)> {
        let func = self.func;
        let mut call = Call::new(func);
        let mut out = Vec::with_capacity(self.params.len());
        for (key, p) in self.params.iter() {
            let p = call.output::<T>(Name::Item("params", key.clone()), &p)?;
            let g_obj = self
                .grads
                .get_item(&key)
                .map_err(python)?
                .ok_or_else(|| gone(func, "gradients"))?;
            let g_name = Name::Item("gradients", key.clone());
            let g = call.input::<T>(g_name.clone(), &g_obj)?;
            same_shape(func, &g_name, g.shape(), p.shape())?;
            let s_obj = self
                .state
                .get_item(&key)
                .map_err(python)?
                .ok_or_else(|| gone(func, "state"))?;
            let s = dict(func, "each optimizer state entry", &s_obj)?;
            let mut arrays = Vec::with_capacity(slots.len());
            for &(slot, slot_name) in slots {
                let name = Name::Slot("state", key.clone(), slot_name);
                let Some(a) = s.get_item(slot).map_err(python)? else {
                    return Err(Error::Value(format!(
                        "{func}: {name} must be a state array, got it missing"
                    )));
                };
                let a = call.output::<T>(name.clone(), &a)?;
                same_shape(func, &name, a.shape(), p.shape())?;
                arrays.push(a);
            }
            out.push(Group {
                p,
                g,
                slots: arrays,
            });
        }
        Ok((out, call.check_overlaps()?))
    }
}

/// A dict changed between the key check and the lookup (a key's `__eq__` misbehaving).
fn gone(func: &str, what: &str) -> Error {
    Error::Value(format!(
        "{func}: {what} must keep its keys during the call, got a key that vanished"
    ))
}

fn adam_typed<T: Float + Real>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &AdamHyper,
    amsgrad: bool,
) -> Result<()> {
    let m = (intern!(py, "exp_avg"), "exp_avg");
    let v = (intern!(py, "exp_avg_sq"), "exp_avg_sq");
    let (mut groups, ok) = if amsgrad {
        dicts.groups::<T>(&[m, v, (intern!(py, "max_exp_avg_sq"), "max_exp_avg_sq")])?
    } else {
        dicts.groups::<T>(&[m, v])?
    };
    let mut total = 0;
    let tensors: Vec<AdamTensor<T>> = groups
        .iter_mut()
        .map(|gr| {
            let mut slots = gr.slots.iter_mut();
            let (m, v) = (slots.next(), slots.next());
            let p = gr.p.slice(&ok);
            total += p.len();
            AdamTensor {
                p,
                g: gr.g.slice(&ok),
                m: m.map_or(&mut [], |a| a.slice(&ok)),
                v: v.map_or(&mut [], |a| a.slice(&ok)),
                vmax: slots.next().map(|a| a.slice(&ok)),
            }
        })
        .collect();
    run(py, total, || adam_kernel(tensors, h));
    Ok(())
}

/// One Adam step over a dict of parameters, in place (the engine of `Adam.update`).
#[pyfunction]
#[pyo3(signature = (func, params, gradients, state, step, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad))]
#[allow(clippy::too_many_arguments)]
pub fn adam(
    py: Python<'_>,
    func: &str,
    params: &Bound<'_, PyAny>,
    gradients: &Bound<'_, PyAny>,
    state: &Bound<'_, PyAny>,
    step: u64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    amsgrad: bool,
) -> PyResult<()> {
    let dicts = Dicts::new(func, params, gradients, state)?;
    let h = AdamHyper {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        decoupled,
        step,
    };
    match dicts.dtype()? {
        None => Ok(()),
        Some(Dtype::F32) => Ok(adam_typed::<f32>(py, &dicts, &h, amsgrad)?),
        Some(Dtype::F64) => Ok(adam_typed::<f64>(py, &dicts, &h, amsgrad)?),
    }
}

fn adam_array_typed<T: Float + Real>(
    py: Python<'_>,
    func: &str,
    arrays: [&Bound<'_, PyAny>; 4],
    h: &AdamHyper,
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
    };
    run(py, t.p.len(), || adam_kernel(vec![t], h));
    Ok(())
}

/// One Adam step on one array with the seed's state arrays `m` and `v`.
#[pyfunction]
#[pyo3(signature = (func, params, gradients, m, v, step, lr, beta1, beta2, eps))]
#[allow(clippy::too_many_arguments)]
pub fn adam_array(
    py: Python<'_>,
    func: &str,
    params: &Bound<'_, PyAny>,
    gradients: &Bound<'_, PyAny>,
    m: &Bound<'_, PyAny>,
    v: &Bound<'_, PyAny>,
    step: u64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
) -> PyResult<()> {
    let h = AdamHyper {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay: 0.0,
        decoupled: false,
        step,
    };
    let arrays = [params, gradients, m, v];
    match float_dtype(func, &Name::Arg("params"), params)? {
        Dtype::F32 => Ok(adam_array_typed::<f32>(py, func, arrays, &h)?),
        Dtype::F64 => Ok(adam_array_typed::<f64>(py, func, arrays, &h)?),
    }
}

fn momentum_typed<T: Float + Real>(py: Python<'_>, dicts: &Dicts, h: &MomentumHyper) -> Result<()> {
    let (mut groups, ok) = dicts.groups::<T>(&[(intern!(py, "velocity"), "velocity")])?;
    let mut total = 0;
    let tensors: Vec<MomentumTensor<T>> = groups
        .iter_mut()
        .map(|gr| {
            let p = gr.p.slice(&ok);
            total += p.len();
            let v = gr.slots.first_mut().map_or(&mut [][..], |a| a.slice(&ok));
            MomentumTensor {
                p,
                g: gr.g.slice(&ok),
                v,
            }
        })
        .collect();
    run(py, total, || momentum_kernel(tensors, h));
    Ok(())
}

/// One momentum step over a dict of parameters, in place (the engine of
/// `MomentumOptimizer.update`).
#[pyfunction]
#[pyo3(signature = (func, params, gradients, state, lr, momentum, nesterov))]
#[allow(clippy::too_many_arguments)]
pub fn momentum(
    py: Python<'_>,
    func: &str,
    params: &Bound<'_, PyAny>,
    gradients: &Bound<'_, PyAny>,
    state: &Bound<'_, PyAny>,
    lr: f64,
    momentum: f64,
    nesterov: bool,
) -> PyResult<()> {
    let dicts = Dicts::new(func, params, gradients, state)?;
    let h = MomentumHyper {
        lr,
        momentum,
        nesterov,
    };
    match dicts.dtype()? {
        None => Ok(()),
        Some(Dtype::F32) => Ok(momentum_typed::<f32>(py, &dicts, &h)?),
        Some(Dtype::F64) => Ok(momentum_typed::<f64>(py, &dicts, &h)?),
    }
}
