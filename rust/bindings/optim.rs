//! Adam/AdamW and momentum over a whole dict of parameters in one call.
//!
//! `state` maps each parameter's key to a dict of state arrays (`exp_avg`, `velocity`, ...),
//! as the Python optimizer classes keep it. A step holds the optimizer's lock from reading its
//! `state` and `step` to committing them: once the kernel has run, the binding sets them
//! before returning, with no Python code in between, so a `KeyboardInterrupt` can never
//! separate the arrays from the counter, and two threads cannot take the same step.

use gradfast_kernels::optim::adam as adam_k;
use gradfast_kernels::optim::adam::{adam as adam_kernel, AdamTensor};
use gradfast_kernels::optim::momentum as momentum_k;
use gradfast_kernels::optim::momentum::{momentum as momentum_kernel, MomentumTensor};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

mod lamb;
mod lars;
mod layerwise;

use super::lock::{Held, StepLock};
use super::{guard, run};
use gradfast_kernels::{Real, Store};

use crate::arrays::{
    float_dtype, same_shape, storage_dtype, Call, Checked, Dtype, Elem, Float, In, Items, Mapping,
    Name, Out, Storage,
};
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
        bf16_state: bool,
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
        bf16_state: bool,
    }
}

/// The arrays of one parameter: itself and its gradient stored as `P`, its state slots as `S`.
struct Group<'py, P: Elem, S: Elem> {
    p: Out<'py, P>,
    g: In<'py, P>,
    slots: Vec<Out<'py, S>>,
}

/// The storage of an Adam or momentum step: params and gradients, then state. The
/// arithmetic is float64 for float64 params, float32 otherwise.
#[derive(Clone, Copy)]
enum Layout {
    F32,
    F64,
    /// float32 params, bfloat16 state
    F32Bf16,
    /// bfloat16 params and state
    Bf16,
    /// bfloat16 params, float32 state
    Bf16F32,
}

/// Calls `f::<C, P, S>(args)` with the types of a [`Layout`].
macro_rules! layout_dispatch {
    ($layout:expr => $f:ident($($arg:expr),* $(,)?)) => {
        match $layout {
            Layout::F32 => $f::<f32, f32, f32>($($arg),*),
            Layout::F64 => $f::<f64, f64, f64>($($arg),*),
            Layout::F32Bf16 => $f::<f32, f32, u16>($($arg),*),
            Layout::Bf16 => $f::<f32, u16, u16>($($arg),*),
            Layout::Bf16F32 => $f::<f32, u16, f32>($($arg),*),
        }
    };
}

/// The dict arguments of an optimizer step: `params` read into a list, `gradients` and
/// `state` looked up by its keys.
struct Dicts<'a, 'py> {
    func: &'a str,
    params: Items<'py>,
    grads: Mapping<'py>,
    state: Mapping<'py>,
}

impl<'a, 'py> Dicts<'a, 'py> {
    fn new(
        func: &'a str,
        params: &Bound<'py, PyAny>,
        grads: &Bound<'py, PyAny>,
        state: &Bound<'py, PyAny>,
    ) -> Result<Self> {
        let params = Items::read(func, "params", "numpy arrays", params)?;
        let grads = Mapping::new(func, "gradients", "numpy arrays", grads)?;
        let state = Mapping::new(func, "the optimizer state", "state dicts", state)?;
        let dicts = Dicts {
            func,
            params,
            grads,
            state,
        };
        // With equal lengths, finding every key of `params` (in `groups`) proves equal keys.
        if dicts.grads.len()? != dicts.params.len() {
            return Err(dicts.grads_key_error());
        }
        if dicts.state.len()? != dicts.params.len() {
            return Err(dicts.state_key_error());
        }
        Ok(dicts)
    }

    fn grads_key_error(&self) -> Error {
        self.grads
            .key_error(self.func, "gradients", "params", &self.params)
    }

    /// Keys of the state unlike those of `params` are named as `params` missing or having
    /// keys: the state is the optimizer's, the params are the caller's.
    fn state_key_error(&self) -> Error {
        match self.state.items() {
            Ok(items) => {
                let state = Items {
                    map: self.state.clone(),
                    items,
                };
                self.params
                    .map
                    .key_error(self.func, "params", "the optimizer state", &state)
            }
            Err(e) => e,
        }
    }

    /// The layout of a step with bfloat16 state or not, from the dtype of the first
    /// parameter; `None` for an empty dict.
    fn layout(&self, bf16_state: bool) -> Result<Option<Layout>> {
        let Some((key, p)) = self.params.items.first() else {
            return Ok(None);
        };
        let name = Name::Item("params", key.clone());
        Ok(Some(
            match (storage_dtype(self.func, &name, p)?, bf16_state) {
                (Storage::F32, false) => Layout::F32,
                (Storage::F64, false) => Layout::F64,
                (Storage::F32, true) => Layout::F32Bf16,
                (Storage::Bf16, true) => Layout::Bf16,
                (Storage::Bf16, false) => Layout::Bf16F32,
                (Storage::F64, true) => {
                    return Err(Error::Type(format!(
                    "{}: {name} must have dtype float32 or bfloat16 with state_dtype='bfloat16', \
                     got float64 (bfloat16 state is computed in float32)",
                    self.func
                )))
                }
            },
        ))
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
    fn groups<P: Elem, S: Elem>(
        &self,
        slots: &[(&Bound<'py, PyString>, &'static str)],
    ) -> Result<(Vec<Group<'py, P, S>>, Checked)> {
        let func = self.func;
        let mut call = Call::new(func);
        let mut out = Vec::with_capacity(self.params.len());
        for (key, p) in &self.params.items {
            let p = call.output::<P>(Name::Item("params", key.clone()), p)?;
            let g = self.grads.get(key)?.ok_or_else(|| self.grads_key_error())?;
            let g_name = Name::Item("gradients", key.clone());
            let g = call.input::<P>(g_name.clone(), &g)?;
            same_shape(func, &g_name, g.shape(), p.shape())?;
            let s = self.state.get(key)?.ok_or_else(|| self.state_key_error())?;
            let s = Mapping::new(func, "each optimizer state entry", "state arrays", &s)?;
            let mut arrays = Vec::with_capacity(slots.len());
            for &(slot, slot_name) in slots {
                let name = Name::Slot("state", key.clone(), slot_name);
                let Some(a) = s.get(slot.as_any())? else {
                    return Err(Error::Value(format!(
                        "{func}: {name} must be a state array, got it missing"
                    )));
                };
                let a = call.output::<S>(name.clone(), &a)?;
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

/// The largest step count, as `gradfast._base.optimizer.MAX_STEP`: a step past it would
/// leave a state that `load_state_dict` refuses.
const MAX_STEP: u64 = 1 << 62;

/// An optimizer object during one step: its lock held, its state (fresh zeros from
/// `opt._fresh_state(params, gradients)` if it has none yet) and the step number to take.
struct Stepping<'l, 'py> {
    opt: &'l Bound<'py, PyAny>,
    state: Bound<'py, PyAny>,
    step: u64,
    _held: Held<'l>,
}

impl<'l, 'py> Stepping<'l, 'py> {
    fn begin(
        opt: &'l Bound<'py, PyAny>,
        lock: &'l Bound<'py, StepLock>,
        params: &Bound<'py, PyAny>,
        gradients: &Bound<'py, PyAny>,
    ) -> PyResult<Self> {
        let py = opt.py();
        let held = lock.get().hold(py);
        let mut state = opt.getattr(intern!(py, "state"))?;
        if !state.is_truthy()? {
            state = opt.call_method1(intern!(py, "_fresh_state"), (params, gradients))?;
        }
        let step = opt.getattr(intern!(py, "step"))?.extract::<u64>()? + 1;
        Ok(Stepping {
            opt,
            state,
            step,
            _held: held,
        })
    }

    /// Records the finished step on the optimizer: its state and step count, with no Python
    /// code run between the kernel and this (the count goes straight into the instance dict,
    /// where the `step` descriptor keeps it, not through the descriptor's check).
    fn commit(self) -> PyResult<()> {
        let py = self.opt.py();
        if !self.opt.getattr(intern!(py, "state"))?.is(&self.state) {
            self.opt.setattr(intern!(py, "state"), &self.state)?;
        }
        let dict = self.opt.getattr(intern!(py, "__dict__"))?;
        dict.cast::<PyDict>()?
            .set_item(intern!(py, "step"), self.step)
    }
}

/// The body of every stateful optimizer binding: under `opt`'s lock, its state and step read
/// (fresh zeros asked for when it has none), the dicts checked, `step(dicts, step_number)`
/// run, then the step committed.
fn optimizer_step<'py>(
    func: &str,
    opt: &Bound<'py, PyAny>,
    lock: &Bound<'py, StepLock>,
    params: &Bound<'py, PyAny>,
    gradients: &Bound<'py, PyAny>,
    step: impl FnOnce(&Dicts<'_, 'py>, u64) -> Result<()>,
) -> PyResult<()> {
    guard(func, || {
        let s = Stepping::begin(opt, lock, params, gradients)?;
        if s.step > MAX_STEP {
            return Err(Error::Value(format!(
                "{func}: step must be an int < 2**62 to take another step, got {}",
                s.step - 1
            ))
            .into());
        }
        let dicts = Dicts::new(func, params, gradients, &s.state)?;
        step(&dicts, s.step)?;
        s.commit()
    })
}

fn adam_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &adam_k::AdamHyper,
    amsgrad: bool,
) -> Result<()> {
    let m = (intern!(py, "exp_avg"), "exp_avg");
    let v = (intern!(py, "exp_avg_sq"), "exp_avg_sq");
    let (mut groups, ok) = if amsgrad {
        dicts.groups::<P, S>(&[m, v, (intern!(py, "max_exp_avg_sq"), "max_exp_avg_sq")])?
    } else {
        dicts.groups::<P, S>(&[m, v])?
    };
    let mut total = 0;
    let tensors: Vec<AdamTensor<P, S>> = groups
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

/// One Adam step of the optimizer `opt` (under its lock `lock`, from its `state` and
/// `step`) over a dict of parameters, in place, then committed to `opt` (the engine of
/// `Adam.update`).
#[pyfunction]
#[pyo3(signature = (func, opt, lock, params, gradients, hyper))]
pub fn adam(
    py: Python<'_>,
    func: &str,
    opt: &Bound<'_, PyAny>,
    lock: &Bound<'_, StepLock>,
    params: &Bound<'_, PyAny>,
    gradients: &Bound<'_, PyAny>,
    hyper: &Bound<'_, AdamHyper>,
) -> PyResult<()> {
    let hyper = hyper.get();
    optimizer_step(func, opt, lock, params, gradients, |dicts, step| {
        if let Some(layout) = dicts.layout(hyper.bf16_state)? {
            let h = hyper.kernel(step);
            layout_dispatch!(layout => adam_typed(py, dicts, &h, hyper.amsgrad))?;
        }
        Ok(())
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

fn momentum_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &momentum_k::MomentumHyper,
) -> Result<()> {
    let (mut groups, ok) = dicts.groups::<P, S>(&[(intern!(py, "velocity"), "velocity")])?;
    let mut total = 0;
    let tensors: Vec<MomentumTensor<P, S>> = groups
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

/// One momentum step of the optimizer `opt`, as [`adam`] (the engine of
/// `MomentumOptimizer.update`).
#[pyfunction]
#[pyo3(signature = (func, opt, lock, params, gradients, hyper))]
pub fn momentum(
    py: Python<'_>,
    func: &str,
    opt: &Bound<'_, PyAny>,
    lock: &Bound<'_, StepLock>,
    params: &Bound<'_, PyAny>,
    gradients: &Bound<'_, PyAny>,
    hyper: &Bound<'_, MomentumHyper>,
) -> PyResult<()> {
    let hyper = hyper.get();
    optimizer_step(func, opt, lock, params, gradients, |dicts, _| {
        if let Some(layout) = dicts.layout(hyper.bf16_state)? {
            let h = momentum_k::MomentumHyper {
                lr: hyper.learning_rate,
                momentum: hyper.momentum,
                nesterov: hyper.nesterov,
            };
            layout_dispatch!(layout => momentum_typed(py, dicts, &h))?;
        }
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AdamHyper>()?;
    m.add_class::<MomentumHyper>()?;
    m.add_function(wrap_pyfunction!(adam, m)?)?;
    m.add_function(wrap_pyfunction!(adam_array, m)?)?;
    m.add_function(wrap_pyfunction!(momentum, m)?)?;
    lamb::register(m)?;
    lars::register(m)?;
    layerwise::register(m)
}
