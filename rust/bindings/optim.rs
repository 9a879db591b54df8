//! Adam/AdamW and momentum over a whole dict of parameters in one call.
//!
//! `state` maps each parameter's key to a dict of state arrays (`exp_avg`, `velocity`, ...),
//! as the Python optimizer classes keep it.

use gradfast_kernels::adam::{adam as adam_kernel, AdamHyper, AdamTensor};
use gradfast_kernels::momentum::{momentum as momentum_kernel, MomentumHyper, MomentumTensor};
use gradfast_kernels::Real;
use numpy::{Element, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::run;
use crate::arrays::{
    dict, float_dtype, input, output, same_keys, same_shape, slices_mut, Dtype, Input, Name,
};
use crate::error::{python, Error, Result};

/// The borrowed arrays of one parameter: itself, its gradient and its state slots.
struct Group<'py, T: Element> {
    p: PyReadwriteArrayDyn<'py, T>,
    g: Input<'py, T>,
    slots: Vec<PyReadwriteArrayDyn<'py, T>>,
}

/// The arrays of a dict of parameters: dict arguments and keys checked, then the dtype of
/// the first parameter, shared by every array.
struct Call<'a, 'py> {
    func: &'a str,
    params: &'a Bound<'py, PyDict>,
    grads: &'a Bound<'py, PyDict>,
    state: &'a Bound<'py, PyDict>,
}

impl<'a, 'py> Call<'a, 'py> {
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
        Ok(Call {
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
            Some((key, p)) => float_dtype(self.func, &Name::Item("params", &key), &p).map(Some),
        }
    }

    /// Borrows every array; `slots` are the state slot names, as interned Python strings
    /// (looked up without building a string each time) and for messages.
    fn groups<T: Element + Copy>(
        &self,
        slots: &[(&Bound<'py, PyString>, &str)],
    ) -> Result<Vec<Group<'py, T>>> {
        let func = self.func;
        let mut out = Vec::with_capacity(self.params.len());
        for (key, p) in self.params.iter() {
            let p = output::<T>(func, &Name::Item("params", &key), &p)?;
            let g_obj = self
                .grads
                .get_item(&key)
                .map_err(python)?
                .ok_or_else(|| gone(func, "gradients"))?;
            let g = input::<T>(func, &Name::Item("gradients", &key), &g_obj)?;
            same_shape(func, &Name::Item("gradients", &key), g.shape(), p.shape())?;
            let s_obj = self
                .state
                .get_item(&key)
                .map_err(python)?
                .ok_or_else(|| gone(func, "state"))?;
            let s = dict(func, "each optimizer state entry", &s_obj)?;
            let mut arrays = Vec::with_capacity(slots.len());
            for &(slot, slot_name) in slots {
                let name = Name::Slot("state", &key, slot_name);
                let a = s.get_item(slot).map_err(python)?.ok_or_else(|| {
                    Error::Value(format!(
                        "{func}: {name} must be a state array, got it missing"
                    ))
                })?;
                let a = output::<T>(func, &name, &a)?;
                same_shape(func, &name, a.shape(), p.shape())?;
                arrays.push(a);
            }
            out.push(Group {
                p,
                g,
                slots: arrays,
            });
        }
        Ok(out)
    }
}

/// A dict changed between the key check and the lookup (a key's `__eq__` misbehaving).
fn gone(func: &str, what: &str) -> Error {
    Error::Value(format!(
        "{func}: {what} must keep its keys during the call, got a key that vanished"
    ))
}

fn adam_hyper(
    step: u64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
) -> AdamHyper {
    AdamHyper {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        decoupled,
        step,
    }
}

fn adam_typed<T: Element + Real>(
    py: Python<'_>,
    call: &Call,
    h: &AdamHyper,
    amsgrad: bool,
) -> Result<()> {
    let m = (intern!(py, "exp_avg"), "exp_avg");
    let v = (intern!(py, "exp_avg_sq"), "exp_avg_sq");
    let mut groups = if amsgrad {
        call.groups::<T>(&[m, v, (intern!(py, "max_exp_avg_sq"), "max_exp_avg_sq")])?
    } else {
        call.groups::<T>(&[m, v])?
    };
    let mut tensors = Vec::with_capacity(groups.len());
    let mut total = 0;
    for gr in groups.iter_mut() {
        let g = gr.g.slice()?;
        let mut s = slices_mut(&mut gr.slots)?.into_iter();
        let p =
            gr.p.as_slice_mut()
                .map_err(|e| Error::Value(e.to_string()))?;
        total += p.len();
        let (Some(m), Some(v)) = (s.next(), s.next()) else {
            return Err(Error::Value(format!(
                "{}: internal error: state slots",
                call.func
            )));
        };
        tensors.push(AdamTensor {
            p,
            g,
            m,
            v,
            vmax: s.next(),
        });
    }
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
    let call = Call::new(func, params, gradients, state)?;
    let h = adam_hyper(step, lr, beta1, beta2, eps, weight_decay, decoupled);
    match call.dtype()? {
        None => Ok(()),
        Some(Dtype::F32) => Ok(adam_typed::<f32>(py, &call, &h, amsgrad)?),
        Some(Dtype::F64) => Ok(adam_typed::<f64>(py, &call, &h, amsgrad)?),
    }
}

fn adam_array_typed<T: Element + Real>(
    py: Python<'_>,
    func: &str,
    arrays: [&Bound<'_, PyAny>; 4],
    h: &AdamHyper,
) -> Result<()> {
    let [p, g, m, v] = arrays;
    let mut p = output::<T>(func, &Name::Arg("params"), p)?;
    let g = input::<T>(func, &Name::Arg("gradients"), g)?;
    same_shape(func, &Name::Arg("gradients"), g.shape(), p.shape())?;
    let mut mv = Vec::with_capacity(2);
    for (name, a) in [("state['m']", m), ("state['v']", v)] {
        let a = output::<T>(func, &Name::Arg(name), a)?;
        same_shape(func, &Name::Arg(name), a.shape(), p.shape())?;
        mv.push(a);
    }
    let mut s = slices_mut(&mut mv)?.into_iter();
    let (Some(m), Some(v)) = (s.next(), s.next()) else {
        return Err(Error::Value(format!("{func}: internal error: state slots")));
    };
    let p = p.as_slice_mut().map_err(|e| Error::Value(e.to_string()))?;
    let t = AdamTensor {
        p,
        g: g.slice()?,
        m,
        v,
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
    let h = adam_hyper(step, lr, beta1, beta2, eps, 0.0, false);
    let arrays = [params, gradients, m, v];
    match float_dtype(func, &Name::Arg("params"), params)? {
        Dtype::F32 => Ok(adam_array_typed::<f32>(py, func, arrays, &h)?),
        Dtype::F64 => Ok(adam_array_typed::<f64>(py, func, arrays, &h)?),
    }
}

fn momentum_typed<T: Element + Real>(py: Python<'_>, call: &Call, h: &MomentumHyper) -> Result<()> {
    let mut groups = call.groups::<T>(&[(intern!(py, "velocity"), "velocity")])?;
    let mut tensors = Vec::with_capacity(groups.len());
    let mut total = 0;
    for gr in groups.iter_mut() {
        let g = gr.g.slice()?;
        let Some(v) = slices_mut(&mut gr.slots)?.into_iter().next() else {
            return Err(Error::Value(format!(
                "{}: internal error: state slots",
                call.func
            )));
        };
        let p =
            gr.p.as_slice_mut()
                .map_err(|e| Error::Value(e.to_string()))?;
        total += p.len();
        tensors.push(MomentumTensor { p, g, v });
    }
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
    let call = Call::new(func, params, gradients, state)?;
    let h = MomentumHyper {
        lr,
        momentum,
        nesterov,
    };
    match call.dtype()? {
        None => Ok(()),
        Some(Dtype::F32) => Ok(momentum_typed::<f32>(py, &call, &h)?),
        Some(Dtype::F64) => Ok(momentum_typed::<f64>(py, &call, &h)?),
    }
}
