//! torch's split of norm clipping (`get_total_norm`, then `clip_grads_with_norm`) and
//! `clip_grad_value`, over a dict, on the kernels `clip_grad_norm` runs: the same norm bits,
//! the same scaling.

use gradfast_kernels::clip::{clamp, clip_to_norm, total_norm};
use gradfast_kernels::runtime::reduce::Order;
use pyo3::prelude::*;

use super::nonfinite_check;
use crate::arrays::{float_dtype, Call, Dtype, Float, In, Items, Name};
use crate::bindings::{guard, run};
use crate::error::Result;
use crate::{dispatch, hyper_class};

/// A dict of gradients read, with the dtype of its first array (`None`: the dict is empty).
pub(super) fn read_gradients<'py>(
    func: &str,
    gradients: &Bound<'py, PyAny>,
) -> Result<(Items<'py>, Option<Dtype>)> {
    let grads = Items::read(func, "gradients", "numpy arrays", gradients)?;
    let dtype = match grads.items.first() {
        Some((key, g)) => Some(float_dtype(func, &Name::Item("gradients", key.clone()), g)?),
        None => None,
    };
    Ok((grads, dtype))
}

/// Runs `kernel` on every gradient, checked as an array written in place.
fn in_place<T: Float>(
    py: Python<'_>,
    func: &str,
    grads: &Items,
    kernel: impl FnOnce(Vec<&mut [T]>) + Send,
) -> Result<()> {
    let mut call = Call::new(func);
    let mut arrays = Vec::with_capacity(grads.len());
    for (key, g) in &grads.items {
        arrays.push(call.output::<T>(Name::Item("gradients", key.clone()), g)?);
    }
    let ok = call.check_overlaps()?;
    let slices: Vec<&mut [T]> = arrays.iter_mut().map(|a| a.slice(&ok)).collect();
    let len = slices.iter().map(|s| s.len()).sum();
    run(py, len, move || kernel(slices));
    Ok(())
}

fn total_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    grads: &Items,
    norm_type: f64,
    error_if_nonfinite: bool,
) -> Result<f64> {
    let mut call = Call::new(func);
    let mut arrays: Vec<In<T>> = Vec::with_capacity(grads.len());
    for (key, g) in &grads.items {
        arrays.push(call.input::<T>(Name::Item("gradients", key.clone()), g)?);
    }
    let ok = call.check_overlaps()?;
    let views: Vec<&[T]> = arrays.iter().map(|a| a.slice(&ok)).collect();
    let len = views.iter().map(|s| s.len()).sum();
    let total = run(py, len, || total_norm(&views, Order::new(norm_type)));
    nonfinite_check(func, norm_type, error_if_nonfinite, total)?;
    Ok(total)
}

hyper_class! {
    /// `gradfast.get_total_norm`'s arguments besides the gradients.
    TotalNormHyper {
        norm_type: f64,
        error_if_nonfinite: bool,
    }
}

hyper_class! {
    /// `gradfast.clip_grads_with_norm`'s arguments besides the gradients.
    ClipGradsWithNormHyper {
        max_norm: f64,
        total_norm: f64,
    }
}

hyper_class! {
    /// `gradfast.clip_grad_value`'s argument besides the gradients.
    ClipGradValueHyper {
        clip_value: f64,
    }
}

/// The global `norm_type`-norm of a dict of gradients (0 for an empty dict); only reads them.
#[pyfunction]
#[pyo3(signature = (func, gradients, hyper))]
pub fn get_total_norm(
    py: Python<'_>,
    func: &str,
    gradients: &Bound<'_, PyAny>,
    hyper: &Bound<'_, TotalNormHyper>,
) -> PyResult<f64> {
    let TotalNormHyper {
        norm_type,
        error_if_nonfinite,
    } = *hyper.get();
    guard(func, || {
        let (grads, dtype) = read_gradients(func, gradients)?;
        let Some(dtype) = dtype else { return Ok(0.0) };
        Ok(dispatch!(dtype => total_typed(py, func, &grads, norm_type, error_if_nonfinite))?)
    })
}

fn scale_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    grads: &Items,
    max_norm: f64,
    total: f64,
) -> Result<()> {
    in_place::<T>(py, func, grads, move |s| clip_to_norm(s, max_norm, total))
}

/// Scales a dict of gradients by torch's factor for the global norm `total_norm`, in place.
#[pyfunction]
#[pyo3(signature = (func, gradients, hyper))]
pub fn clip_grads_with_norm(
    py: Python<'_>,
    func: &str,
    gradients: &Bound<'_, PyAny>,
    hyper: &Bound<'_, ClipGradsWithNormHyper>,
) -> PyResult<()> {
    let ClipGradsWithNormHyper {
        max_norm,
        total_norm,
    } = *hyper.get();
    guard(func, || {
        let (grads, dtype) = read_gradients(func, gradients)?;
        let Some(dtype) = dtype else { return Ok(()) };
        Ok(dispatch!(dtype => scale_typed(py, func, &grads, max_norm, total_norm))?)
    })
}

fn clamp_typed<T: Float>(py: Python<'_>, func: &str, grads: &Items, clip_value: f64) -> Result<()> {
    in_place::<T>(py, func, grads, move |s| clamp(s, clip_value))
}

/// Clamps a dict of gradients into `[-clip_value, clip_value]`, in place.
#[pyfunction]
#[pyo3(signature = (func, gradients, hyper))]
pub fn clip_grad_value(
    py: Python<'_>,
    func: &str,
    gradients: &Bound<'_, PyAny>,
    hyper: &Bound<'_, ClipGradValueHyper>,
) -> PyResult<()> {
    let clip_value = hyper.get().clip_value;
    guard(func, || {
        let (grads, dtype) = read_gradients(func, gradients)?;
        let Some(dtype) = dtype else { return Ok(()) };
        Ok(dispatch!(dtype => clamp_typed(py, func, &grads, clip_value))?)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TotalNormHyper>()?;
    m.add_class::<ClipGradsWithNormHyper>()?;
    m.add_class::<ClipGradValueHyper>()?;
    m.add_function(wrap_pyfunction!(get_total_norm, m)?)?;
    m.add_function(wrap_pyfunction!(clip_grads_with_norm, m)?)?;
    m.add_function(wrap_pyfunction!(clip_grad_value, m)?)
}
