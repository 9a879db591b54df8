//! The exponential moving average of a dict of weights, in place on the average's arrays
//! (created and kept by the Python class, passed here explicitly).

use gradfast_kernels::average::lerp;
use pyo3::prelude::*;

use super::{guard, run};
use crate::arrays::{float_dtype, same_shape, Call, Float, In, Items, Mapping, Name, Out};
use crate::error::Result;
use crate::{dispatch, hyper_class};

fn lerp_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    averaged: &Items,
    params: &[Bound<'_, PyAny>],
    weight: f64,
) -> Result<()> {
    let mut call = Call::new(func);
    let mut arrays: Vec<(Out<T>, In<T>)> = Vec::with_capacity(averaged.len());
    for ((key, a), p) in averaged.items.iter().zip(params) {
        let a = call.output::<T>(Name::Item("averaged", key.clone()), a)?;
        let p_name = Name::Item("params", key.clone());
        let p = call.input::<T>(p_name.clone(), p)?;
        same_shape(func, &p_name, p.shape(), a.shape())?;
        arrays.push((a, p));
    }
    let ok = call.check_overlaps()?;
    let pairs: Vec<(&mut [T], &[T])> = arrays
        .iter_mut()
        .map(|(a, p)| (a.slice(&ok), p.slice(&ok)))
        .collect();
    let len = pairs.iter().map(|(a, _)| a.len()).sum();
    run(py, len, move || lerp(pairs, weight));
    Ok(())
}

hyper_class! {
    /// One `EMA.update`: the weight of the new values (`1 - decay`, or 1 for the first).
    EmaHyper {
        weight: f64,
    }
}

/// `averaged[k] += weight * (params[k] - averaged[k])` for every key of `averaged`.
#[pyfunction]
#[pyo3(signature = (func, averaged, params, hyper))]
pub fn ema_update(
    py: Python<'_>,
    func: &str,
    averaged: &Bound<'_, PyAny>,
    params: &Bound<'_, PyAny>,
    hyper: &Bound<'_, EmaHyper>,
) -> PyResult<()> {
    let weight = hyper.get().weight;
    guard(func, || {
        let avg = Items::read(func, "averaged", "numpy arrays", averaged)?;
        let p = Mapping::new(func, "params", "numpy arrays", params)?;
        let p = p.values_for(func, "params", "the averaged weights", &avg)?;
        if let Some((key, a)) = avg.items.first() {
            let dtype = float_dtype(func, &Name::Item("averaged", key.clone()), a)?;
            dispatch!(dtype => lerp_typed(py, func, &avg, &p, weight))?;
        }
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<EmaHyper>()?;
    m.add_function(wrap_pyfunction!(ema_update, m)?)
}
