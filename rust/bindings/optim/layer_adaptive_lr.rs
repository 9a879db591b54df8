//! `LayerAdaptiveLR` over a dict of layers in one call: the engine of its `update`,
//! `apply_gradients` and `compute_lr`.
//!
//! Python, holding the lock of the optimizer's `StepState` (a call may name any subset of the
//! layers, new ones included, so the base class validates and prepares it), hands over the
//! state and per-layer step counts the step leads to (new layers with fresh zero state); once
//! the kernel has run, the binding commits them to the `StepState` (the per-layer counts as
//! its `extra`), with the step count when the call counts one, before returning: no Python
//! code runs between the kernel and the commit.

use gradfast_kernels::optim::layer_adaptive_lr::{
    layer_adaptive_lr as kernel, LayerAdaptiveLRArgs, LayerAdaptiveLRTensor, Write,
};
use gradfast_kernels::runtime::bundle::Each;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::Groups;
use crate::arrays::{float_dtype, fresh, same_shape, Call, Float, In, Items, Mapping, Name, Out};
use crate::bindings::steps::StepState;
use crate::bindings::{guard, run};
use crate::error::{Error, Result};
use crate::{dispatch, hyper_class};

hyper_class! {
    /// `gradfast.LayerAdaptiveLR`'s hyper-parameters.
    LayerAdaptiveLRHyper {
        learning_rate: f64,
        beta: f64,
        epsilon: f64,
    }
}

/// The dict arguments of a call, read.
struct Args<'py> {
    params: Option<Mapping<'py>>,
    grads: Items<'py>,
    state: Mapping<'py>,
    steps: Mapping<'py>,
    write: Write,
}

/// The arrays of one layer.
struct Layer<'py, T: Float> {
    g: In<'py, T>,
    sq: Out<'py, T>,
    /// The parameters when read (`Stepped`).
    p: Option<In<'py, T>>,
    /// What is written: the parameters (`InPlace`) or a new array.
    out: Out<'py, T>,
    step: u64,
    /// Its group: the index of its arguments.
    group: usize,
}

/// `hs[g]`: the arguments of group `g` (0: the optimizer's own, `i + 1`: group `i`);
/// `claimed`: `{key: i}` for the layers of group `i`.
fn layer_adaptive_lr_typed<'py, T: Float>(
    py: Python<'py>,
    func: &str,
    a: &Args<'py>,
    hs: &[LayerAdaptiveLRArgs],
    claimed: Option<&Bound<'py, PyDict>>,
) -> Result<Vec<Bound<'py, PyAny>>> {
    let mut call = Call::new(func);
    let mut layers: Vec<Layer<T>> = Vec::with_capacity(a.grads.len());
    let mut fresh = Vec::new();
    for (key, g_obj) in &a.grads.items {
        let gone = || {
            Error::Value(format!(
                "{func}: the arguments must keep their keys during the call, got key {} gone",
                crate::arrays::repr(key)
            ))
        };
        let g_name = Name::Item("gradients", key.clone());
        let g = call.input::<T>(g_name.clone(), g_obj)?;
        let s = a.state.get(key)?.ok_or_else(gone)?;
        let s = Mapping::new(func, "each optimizer state entry", "state arrays", &s)?;
        let sq_name = Name::Slot("state", key.clone(), "square_avg");
        let sq_obj = s.get(intern!(py, "square_avg").as_any())?.ok_or_else(|| {
            Error::Value(format!(
                "{func}: {sq_name} must be a state array, got it missing"
            ))
        })?;
        let sq = call.output::<T>(sq_name.clone(), &sq_obj)?;
        same_shape(func, &g_name, g.shape(), sq.shape())?;
        let step: u64 = a.steps.get(key)?.ok_or_else(gone)?.extract().map_err(|_| {
            Error::Value(format!(
                "{func}: each layer step must be an int in [1, 2**64), got another value"
            ))
        })?;
        let p_name = Name::Item("params", key.clone());
        let (p, out) = match (a.write, &a.params) {
            (Write::InPlace, Some(params)) => {
                let p = params.get(key)?.ok_or_else(gone)?;
                (None, call.output::<T>(p_name.clone(), &p)?)
            }
            (Write::Stepped, Some(params)) => {
                let p = call.input::<T>(p_name.clone(), &params.get(key)?.ok_or_else(gone)?)?;
                same_shape(func, &p_name, p.shape(), g.shape())?;
                (
                    Some(p),
                    new_array::<T>(py, &mut call, key, g.shape(), &mut fresh)?,
                )
            }
            _ => (
                None,
                new_array::<T>(py, &mut call, key, g.shape(), &mut fresh)?,
            ),
        };
        same_shape(func, &p_name, out.shape(), g.shape())?;
        let group = match claimed
            .map(|c| c.get_item(key))
            .transpose()
            .map_err(Error::Python)?
            .flatten()
        {
            None => 0,
            Some(i) => match i.extract::<usize>() {
                Ok(i) if i + 1 < hs.len() => i + 1,
                _ => {
                    return Err(Error::Value(format!(
                        "{func}: the group of {p_name} must be an int < {}, got {i}",
                        hs.len() - 1
                    )))
                }
            },
        };
        layers.push(Layer {
            g,
            sq,
            p,
            out,
            step,
            group,
        });
    }
    let ok = call.check_overlaps()?;
    let mut total = 0;
    let mut by_group: Vec<Vec<LayerAdaptiveLRTensor<T>>> = hs.iter().map(|_| Vec::new()).collect();
    for l in layers.iter_mut() {
        let out = l.out.slice(&ok);
        total += out.len();
        by_group[l.group].push(LayerAdaptiveLRTensor {
            out,
            g: l.g.slice(&ok),
            sq: l.sq.slice(&ok),
            p: l.p.as_ref().map(|p| p.slice(&ok)),
            step: Each(l.step),
        });
    }
    let write = a.write;
    run(py, total, || {
        for (tensors, h) in by_group.into_iter().zip(hs) {
            if !tensors.is_empty() {
                kernel(tensors, h, write)
            }
        }
    });
    Ok(fresh)
}

/// A new array of `shape` for layer `key`'s result, also kept in `fresh`.
fn new_array<'py, T: Float>(
    py: Python<'py>,
    call: &mut Call<'_, 'py>,
    key: &Bound<'py, PyAny>,
    shape: &[usize],
    fresh: &mut Vec<Bound<'py, PyAny>>,
) -> Result<Out<'py, T>> {
    // SAFETY: the kernel writes every element before the array reaches Python, and nothing
    // reads it before. Zeroing it would cost a write pass.
    let a = unsafe { fresh::empty::<T>(py, shape) }?.into_any();
    let out = call.output::<T>(Name::Item("result", key.clone()), &a)?;
    fresh.push(a);
    Ok(out)
}

/// One step of the layers of `gradients` (see the module docs); `write` is `"in_place"`
/// (moves `params`), `"stepped"` (returns `{key: p - rate * g}`) or `"rates"` (returns
/// `{key: rate}`, `params` is None). `step` is the optimizer's new step count, None when the
/// call does not count one.
#[pyfunction]
#[pyo3(signature = (func, steps, params, gradients, state, layer_steps, step, hyper, write, groups=None))]
#[allow(clippy::too_many_arguments)]
pub fn layer_adaptive_lr<'py>(
    py: Python<'py>,
    func: &str,
    steps: &Bound<'py, StepState>,
    params: Option<&Bound<'py, PyAny>>,
    gradients: &Bound<'py, PyAny>,
    state: &Bound<'py, PyAny>,
    layer_steps: &Bound<'py, PyAny>,
    step: Option<u64>,
    hyper: &Bound<'py, LayerAdaptiveLRHyper>,
    write: &str,
    groups: Groups<'py, LayerAdaptiveLRHyper>,
) -> PyResult<Bound<'py, PyDict>> {
    guard(func, || {
        let write = match write {
            "in_place" => Write::InPlace,
            "stepped" => Write::Stepped,
            "rates" => Write::Rates,
            _ => {
                return Err(Error::Value(format!(
                    "{func}: write must be 'in_place', 'stepped' or 'rates', got {write:?}"
                ))
                .into())
            }
        };
        let grads = Items::read(func, "gradients", "numpy arrays", gradients)?;
        let params = match params {
            Some(p) => {
                let p = Mapping::new(func, "params", "numpy arrays", p)?;
                p.check_keys(func, "params", "gradients", &grads)?;
                Some(p)
            }
            None if write == Write::Rates => None,
            None => {
                return Err(Error::Value(format!("{func}: params must be a dict, got None")).into())
            }
        };
        let args = Args {
            params,
            state: Mapping::new(func, "the optimizer state", "state dicts", state)?,
            steps: Mapping::new(func, "layer_steps", "ints", layer_steps)?,
            grads,
            write,
        };
        let (hypers, claimed) = super::hypers(hyper, &groups);
        let hs: Vec<LayerAdaptiveLRArgs> = (0..=claimed.map_or(0, |(_, n)| n))
            .map(|g| {
                let h = hypers.of(g);
                LayerAdaptiveLRArgs {
                    learning_rate: h.learning_rate,
                    beta: h.beta,
                    epsilon: h.epsilon,
                }
            })
            .collect();
        let claimed = claimed.map(|(c, _)| c);
        let out = PyDict::new(py);
        if let Some((key, g)) = args.grads.items.first() {
            let dtype = float_dtype(func, &Name::Item("gradients", key.clone()), g)?;
            let arrays =
                dispatch!(dtype => layer_adaptive_lr_typed(py, func, &args, &hs, claimed))?;
            if write != Write::InPlace {
                for ((key, _), a) in args.grads.items.iter().zip(arrays) {
                    out.set_item(key, a)?;
                }
            }
        }
        steps.get().commit_held(state, step, layer_steps);
        Ok(out)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LayerAdaptiveLRHyper>()?;
    m.add_function(wrap_pyfunction!(layer_adaptive_lr, m)?)
}
