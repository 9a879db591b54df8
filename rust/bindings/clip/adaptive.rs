//! The original design's adaptive per-tensor clipper (`AdaptiveClipper.clip_gradients`) in one call:
//! one pass to measure, one to write the clipped copies. The clipper's state is committed
//! by the binding before it returns.

use gradfast_kernels::clip::{scale_into, Adaptive};
use gradfast_kernels::runtime::reduce::{norms, Order};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{float_dtype, fresh, Call, Float, In, Items, Name, Out};
use crate::bindings::{guard, run};
use crate::error::Result;
use crate::{dispatch, hyper_class};

hyper_class! {
    /// `gradfast.AdaptiveClipper`'s hyper-parameters.
    AdaptiveClipHyper {
        init_clip_value: f64,
        adaptation_rate: f64,
        min_clip_value: f64,
    }
}

/// Measures, updates `state`, and returns each tensor's clipped copy (None: passed through).
fn adaptive_typed<'py, T: Float>(
    py: Python<'py>,
    func: &str,
    grads: &Items<'py>,
    state: &mut Adaptive,
    h: &AdaptiveClipHyper,
) -> Result<Vec<Option<Bound<'py, PyAny>>>> {
    let mut call = Call::new(func);
    let mut arrays: Vec<In<T>> = Vec::with_capacity(grads.len());
    for (key, g) in &grads.items {
        arrays.push(call.input::<T>(Name::Item("gradients", key.clone()), g)?);
    }
    let ok = call.check_overlaps()?;
    let views: Vec<&[T]> = arrays.iter().map(|a| a.slice(&ok)).collect();
    let total = views.iter().map(|v| v.len()).sum();
    let n = run(py, total, || norms(&views, Order::Two));
    state.observe(&n, h.adaptation_rate);
    let clip = state.clip_value(h.min_clip_value, h.init_clip_value);
    // the clipped tensors' copies, new arrays registered with a call of their own
    let mut results = Call::new(func);
    let mut copies = Vec::with_capacity(arrays.len());
    let mut outs: Vec<(Out<T>, usize)> = Vec::new();
    for (i, ((key, _), (a, &norm))) in grads.items.iter().zip(arrays.iter().zip(&n)).enumerate() {
        if norm.is_finite() && norm > clip {
            // SAFETY: `scale_into` writes every element before the array reaches Python, and
            // nothing reads it before.
            let copy = unsafe { fresh::empty::<T>(py, a.shape()) }?.into_any();
            outs.push((
                results.output::<T>(Name::Item("result", key.clone()), &copy)?,
                i,
            ));
            copies.push(Some(copy));
        } else {
            copies.push(None);
        }
    }
    let fresh = results.check_overlaps()?;
    let mut clipped = 0;
    let pairs: Vec<(&[T], &mut [T], f64)> = outs
        .iter_mut()
        .map(|(out, i)| {
            clipped += views[*i].len();
            (views[*i], out.slice(&fresh), clip / n[*i])
        })
        .collect();
    run(py, clipped, || scale_into(pairs));
    Ok(copies)
}

/// One `clip_gradients` call of `clipper` (see `AdaptiveClipper`): a new dict, with the
/// clipper's `running_max` and `running_weight` updated.
#[pyfunction]
#[pyo3(signature = (func, clipper, gradients, hyper))]
pub fn adaptive_clip<'py>(
    py: Python<'py>,
    func: &str,
    clipper: &Bound<'py, PyAny>,
    gradients: &Bound<'py, PyAny>,
    hyper: &Bound<'py, AdaptiveClipHyper>,
) -> PyResult<Bound<'py, PyDict>> {
    guard(func, || {
        let grads = Items::read(func, "gradients", "numpy arrays", gradients)?;
        let (rm, rw) = (intern!(py, "running_max"), intern!(py, "running_weight"));
        let mut state = Adaptive {
            running_max: clipper.getattr(rm)?.extract()?,
            running_weight: clipper.getattr(rw)?.extract()?,
        };
        let out = PyDict::new(py);
        if let Some((key, g)) = grads.items.first() {
            let dtype = float_dtype(func, &Name::Item("gradients", key.clone()), g)?;
            let copies =
                dispatch!(dtype => adaptive_typed(py, func, &grads, &mut state, hyper.get()))?;
            for ((key, g), copy) in grads.items.iter().zip(copies) {
                out.set_item(key, copy.as_ref().unwrap_or(g))?;
            }
        }
        clipper.setattr(rm, state.running_max)?;
        clipper.setattr(rw, state.running_weight)?;
        Ok(out)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AdaptiveClipHyper>()?;
    m.add_function(wrap_pyfunction!(adaptive_clip, m)?)
}
