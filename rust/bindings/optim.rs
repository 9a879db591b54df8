//! Adam/AdamW and momentum over a whole dict of parameters in one call.
//!
//! `state` maps each parameter's key to a dict of state arrays (`exp_avg`, `velocity`, ...),
//! as the Python optimizer classes keep it. A step commits itself: once the kernel has run,
//! the binding sets the optimizer's `state` and `step` before returning, with no Python code
//! in between, so a `KeyboardInterrupt` can never separate the arrays from the counter.

use gradfast_kernels::optim::adam as adam_k;
use gradfast_kernels::optim::adam::{adam as adam_kernel, AdamTensor};
use gradfast_kernels::optim::momentum as momentum_k;
use gradfast_kernels::optim::momentum::{momentum as momentum_kernel, MomentumTensor};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::{guard, run};
use crate::arrays::{float_dtype, same_shape, Call, Checked, Dtype, Float, In, Items, Name, Out};
use crate::error::{Error, Result};
use crate::{dispatch, hyper_class};

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
    }
}

impl AdamHyper {
    fn kernel(&self, step: u64) -> adam_k::AdamHyper {
        adam_k::AdamHyper {
            lr: self.learning_rate,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.epsilon,
            weight_decay: self.weight_decay,
            decoupled: self.decoupled,
            step,
        }
    }
}

hyper_class! {
    /// `gradfast.MomentumOptimizer`'s hyper-parameters.
    MomentumHyper {
        learning_rate: f64,
        momentum: f64,
        nesterov: bool,
    }
}

/// The arrays of one parameter: itself, its gradient and its state slots.
struct Group<'py, T: Float> {
    p: Out<'py, T>,
    g: In<'py, T>,
    slots: Vec<Out<'py, T>>,
}

/// The dict arguments of an optimizer step, read and with their keys checked.
struct Dicts<'a, 'py> {
    func: &'a str,
    params: Items<'py>,
    grads: Vec<Bound<'py, PyAny>>,
    state: Vec<Bound<'py, PyAny>>,
}

impl<'a, 'py> Dicts<'a, 'py> {
    fn new(
        func: &'a str,
        params: &Bound<'py, PyAny>,
        grads: &Bound<'py, PyAny>,
        state: &Bound<'py, PyAny>,
    ) -> Result<Self> {
        let params = Items::read(func, "params", "numpy arrays", params)?;
        let grads = Items::read(func, "gradients", "numpy arrays", grads)?;
        let state = Items::read(func, "the optimizer state", "state dicts", state)?;
        grads.check_keys(func, "gradients", "params", &params)?;
        params.check_keys(func, "params", "the optimizer state", &state)?;
        Ok(Dicts {
            func,
            grads: grads.values_for(func, "gradients", &params)?,
            state: state.values_for(func, "the optimizer state", &params)?,
            params,
        })
    }

    /// The dtype of the first parameter; `None` for an empty dict.
    fn dtype(&self) -> Result<Option<Dtype>> {
        match self.params.items.first() {
            None => Ok(None),
            Some((key, p)) => {
                float_dtype(self.func, &Name::Item("params", key.clone()), p).map(Some)
            }
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
        for (((key, p), g), s) in self.params.items.iter().zip(&self.grads).zip(&self.state) {
            let p = call.output::<T>(Name::Item("params", key.clone()), p)?;
            let g_name = Name::Item("gradients", key.clone());
            let g = call.input::<T>(g_name.clone(), g)?;
            same_shape(func, &g_name, g.shape(), p.shape())?;
            let s = Items::read(func, "each optimizer state entry", "state arrays", s)?;
            let mut arrays = Vec::with_capacity(slots.len());
            for &(slot, slot_name) in slots {
                let name = Name::Slot("state", key.clone(), slot_name);
                let Some(a) = s.get(slot.as_any())? else {
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

/// Records a finished step on the optimizer object: its state dict and step count.
fn commit(opt: &Bound<PyAny>, state: &Bound<PyAny>, step: u64) -> PyResult<()> {
    let py = opt.py();
    if !opt.getattr(intern!(py, "state"))?.is(state) {
        opt.setattr(intern!(py, "state"), state)?;
    }
    opt.setattr(intern!(py, "step"), step)
}

fn adam_typed<T: Float>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &adam_k::AdamHyper,
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

/// Step number `step` of Adam over a dict of parameters, in place; then `opt.state = state`
/// and `opt.step = step` (the engine of `Adam.update`).
#[pyfunction]
#[pyo3(signature = (func, opt, params, gradients, state, step, hyper))]
#[allow(clippy::too_many_arguments)]
pub fn adam(
    py: Python<'_>,
    func: &str,
    opt: &Bound<'_, PyAny>,
    params: &Bound<'_, PyAny>,
    gradients: &Bound<'_, PyAny>,
    state: &Bound<'_, PyAny>,
    step: u64,
    hyper: &Bound<'_, AdamHyper>,
) -> PyResult<()> {
    guard(func, || {
        let hyper = hyper.get();
        let dicts = Dicts::new(func, params, gradients, state)?;
        if let Some(dtype) = dicts.dtype()? {
            let h = hyper.kernel(step);
            dispatch!(dtype => adam_typed(py, &dicts, &h, hyper.amsgrad))?;
        }
        commit(opt, state, step)
    })
}

fn adam_array_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    arrays: [&Bound<'_, PyAny>; 4],
    h: &adam_k::AdamHyper,
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

/// Step number `t` of the seed's functional Adam on one array with state arrays `m` and
/// `v`; then `state['m']`, `state['v']` and `state['t']` are set.
#[pyfunction]
#[pyo3(signature = (func, params, gradients, state, m, v, t, hyper))]
#[allow(clippy::too_many_arguments)]
pub fn adam_array(
    py: Python<'_>,
    func: &str,
    params: &Bound<'_, PyAny>,
    gradients: &Bound<'_, PyAny>,
    state: &Bound<'_, pyo3::types::PyDict>,
    m: &Bound<'_, PyAny>,
    v: &Bound<'_, PyAny>,
    t: u64,
    hyper: &Bound<'_, AdamHyper>,
) -> PyResult<()> {
    guard(func, || {
        let h = hyper.get().kernel(t);
        let dtype = float_dtype(func, &Name::Arg("params"), params)?;
        dispatch!(dtype => adam_array_typed(py, func, [params, gradients, m, v], &h))?;
        state.set_item(intern!(py, "m"), m)?;
        state.set_item(intern!(py, "v"), v)?;
        state.set_item(intern!(py, "t"), t)
    })
}

fn momentum_typed<T: Float>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &momentum_k::MomentumHyper,
) -> Result<()> {
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

/// Step number `step` of momentum over a dict of parameters, in place; then the step is
/// committed to `opt` (the engine of `MomentumOptimizer.update`).
#[pyfunction]
#[pyo3(signature = (func, opt, params, gradients, state, step, hyper))]
#[allow(clippy::too_many_arguments)]
pub fn momentum(
    py: Python<'_>,
    func: &str,
    opt: &Bound<'_, PyAny>,
    params: &Bound<'_, PyAny>,
    gradients: &Bound<'_, PyAny>,
    state: &Bound<'_, PyAny>,
    step: u64,
    hyper: &Bound<'_, MomentumHyper>,
) -> PyResult<()> {
    guard(func, || {
        let hyper = hyper.get();
        let dicts = Dicts::new(func, params, gradients, state)?;
        if let Some(dtype) = dicts.dtype()? {
            let h = momentum_k::MomentumHyper {
                lr: hyper.learning_rate,
                momentum: hyper.momentum,
                nesterov: hyper.nesterov,
            };
            dispatch!(dtype => momentum_typed(py, &dicts, &h))?;
        }
        commit(opt, state, step)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AdamHyper>()?;
    m.add_class::<MomentumHyper>()?;
    m.add_function(wrap_pyfunction!(adam, m)?)?;
    m.add_function(wrap_pyfunction!(adam_array, m)?)?;
    m.add_function(wrap_pyfunction!(momentum, m)?)
}
