//! Gradient clipping over a dict: the global norm (`clip_grad_norm`, here), unit-wise
//! (`adaptive_grad_clip`) and the adaptive per-tensor clipper (`AdaptiveClipper`).

use gradfast_kernels::clip::{clip_to_norm, total_norm};
use gradfast_kernels::runtime::reduce::Order;
use pyo3::prelude::*;

mod adaptive_clipper;
mod adaptive_grad_clip;
mod split;

use super::{guard, run};
use crate::arrays::{Call, Float, Items, Name, Out};
use crate::error::{Error, Result};
use crate::{dispatch, hyper_class};

hyper_class! {
    /// `gradfast.clip_grad_norm`'s arguments besides the gradients.
    ClipGradNormHyper {
        max_norm: f64,
        norm_type: f64,
        error_if_nonfinite: bool,
    }
}

fn clip_grad_norm_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    grads: &Items,
    h: &ClipGradNormHyper,
) -> Result<f64> {
    let ClipGradNormHyper {
        max_norm,
        norm_type,
        error_if_nonfinite,
    } = *h;
    let order = Order::new(norm_type);
    let mut call = Call::new(func);
    let mut arrays: Vec<Out<T>> = Vec::with_capacity(grads.len());
    for (key, g) in &grads.items {
        arrays.push(call.output::<T>(Name::Item("gradients", key.clone()), g)?);
    }
    let ok = call.check_overlaps()?;
    let slices: Vec<&mut [T]> = arrays.iter_mut().map(|a| a.slice(&ok)).collect();
    let total_len = slices.iter().map(|s| s.len()).sum();
    run(py, total_len, move || {
        let views: Vec<&[T]> = slices.iter().map(|s| &s[..]).collect();
        let total = total_norm(&views, order);
        nonfinite_check(func, norm_type, error_if_nonfinite, total)?;
        clip_to_norm(slices, max_norm, total);
        Ok(total)
    })
}

/// The refusal of a NaN or infinite global norm that `error_if_nonfinite=True` asks for.
fn nonfinite_check(func: &str, norm_type: f64, error_if_nonfinite: bool, total: f64) -> Result<()> {
    if error_if_nonfinite && !total.is_finite() {
        return Err(Error::Value(format!(
            "{func}: gradients must have a finite total norm of order {norm_type} when \
             error_if_nonfinite=True, got {total}"
        )));
    }
    Ok(())
}

/// Clips a dict of gradients to a global norm of at most `max_norm`; returns the norm.
#[pyfunction]
#[pyo3(signature = (func, gradients, hyper))]
pub fn clip_grad_norm(
    py: Python<'_>,
    func: &str,
    gradients: &Bound<'_, PyAny>,
    hyper: &Bound<'_, ClipGradNormHyper>,
) -> PyResult<f64> {
    guard(func, || {
        let (grads, dtype) = split::read_gradients(func, gradients)?;
        let Some(dtype) = dtype else { return Ok(0.0) };
        Ok(dispatch!(dtype => clip_grad_norm_typed(py, func, &grads, hyper.get()))?)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ClipGradNormHyper>()?;
    m.add_function(wrap_pyfunction!(clip_grad_norm, m)?)?;
    adaptive_grad_clip::register(m)?;
    split::register(m)?;
    adaptive_clipper::register(m)
}
