//! Elastic-net regularization over a whole dict of weights in one call.

use gradfast_kernels::regularization::{regularization, RegTensor};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::{guard, run};
use crate::arrays::{float_dtype, Call, Float, In, Items, Name, Out};
use crate::error::{Error, Result};
use crate::{dispatch, hyper_class};

fn reg_typed<'py, T: Float>(
    py: Python<'py>,
    func: &str,
    weights: &Items<'py>,
    l1: f64,
    l2: f64,
) -> Result<(f64, Bound<'py, PyDict>)> {
    let mut call = Call::new(func);
    let mut arrays: Vec<(In<T>, Out<T>)> = Vec::with_capacity(weights.len());
    for (key, w) in &weights.items {
        let w = call.input::<T>(Name::Item("weights", key.clone()), w)?;
        let g = Out::<T>::new(py, w.shape())?;
        arrays.push((w, g));
    }
    let ok = call.check_overlaps()?;
    let mut total = 0;
    let tensors: Vec<RegTensor<T>> = arrays
        .iter_mut()
        .map(|(w, g)| {
            total += w.shape().iter().product::<usize>();
            RegTensor {
                w: w.slice(&ok),
                g: g.slice(&ok),
            }
        })
        .collect();
    let penalty = run(py, total, || regularization(tensors, l1, l2));
    let grads = PyDict::new(py);
    for ((key, _), (_, g)) in weights.items.iter().zip(&arrays) {
        grads.set_item(key, g.array()).map_err(Error::Python)?;
    }
    Ok((penalty, grads))
}

hyper_class! {
    /// `gradfast.compute_regularization`'s coefficients (checked by the caller).
    RegularizationHyper {
        lambda_l1: f64,
        lambda_l2: f64,
    }
}

/// `(penalty, reg_gradients)` of `compute_regularization`.
#[pyfunction]
#[pyo3(signature = (func, weights, hyper))]
pub fn compute_regularization<'py>(
    py: Python<'py>,
    func: &str,
    weights: &Bound<'py, PyAny>,
    hyper: &Bound<'py, RegularizationHyper>,
) -> PyResult<(f64, Bound<'py, PyDict>)> {
    let RegularizationHyper {
        lambda_l1,
        lambda_l2,
    } = *hyper.get();
    guard(func, || {
        let weights = Items::read(func, "weights", "numpy arrays", weights)?;
        let Some((key, w)) = weights.items.first() else {
            return Ok((0.0, PyDict::new(py)));
        };
        let dtype = float_dtype(func, &Name::Item("weights", key.clone()), w)?;
        Ok(dispatch!(dtype => reg_typed(py, func, &weights, lambda_l1, lambda_l2))?)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RegularizationHyper>()?;
    m.add_function(wrap_pyfunction!(compute_regularization, m)?)
}
