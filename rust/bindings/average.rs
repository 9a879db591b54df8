//! The exponential moving average of a dict of weights, and the sums of gradients over steps
//! (`Accumulate`, `DataParallel`), in place on arrays created and kept by the Python class,
//! passed here explicitly.

use gradfast_kernels::average::{accumulate as accumulate_kernel, lerp};
use pyo3::prelude::*;

use super::{guard, run};
use crate::arrays::{float_dtype, same_shape, Call, Float, In, Items, Mapping, Name, Out};
use crate::error::Result;
use crate::{dispatch, hyper_class};

/// Checks the arrays of `outs` (written, named `names.0`) and their inputs `ins` (named
/// `names.1`, of the same shapes), then runs `kernel` on the pairs of slices.
fn pairs_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    names: (&'static str, &'static str),
    outs: &Items,
    ins: &[Bound<'_, PyAny>],
    kernel: impl FnOnce(Vec<(&mut [T], &[T])>) + Send,
) -> Result<()> {
    let mut call = Call::new(func);
    let mut arrays: Vec<(Out<T>, In<T>)> = Vec::with_capacity(outs.len());
    for ((key, a), p) in outs.items.iter().zip(ins) {
        let a = call.output::<T>(Name::Item(names.0, key.clone()), a)?;
        let p_name = Name::Item(names.1, key.clone());
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
    run(py, len, move || kernel(pairs));
    Ok(())
}

fn lerp_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    averaged: &Items,
    params: &[Bound<'_, PyAny>],
    weight: f64,
) -> Result<()> {
    pairs_typed::<T>(
        py,
        func,
        ("averaged", "params"),
        averaged,
        params,
        |pairs| lerp(pairs, weight),
    )
}

fn accumulate_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    sums: &Items,
    gradients: &[Bound<'_, PyAny>],
    h: AccumulateHyper,
) -> Result<()> {
    pairs_typed::<T>(py, func, ("sums", "gradients"), sums, gradients, |pairs| {
        accumulate_kernel(pairs, h.first, h.divisor)
    })
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

hyper_class! {
    /// One accumulation: whether it starts a cycle (the sums are overwritten) and the divisor
    /// applied after it (1: none; the cycle's length on its last call, for the mean).
    AccumulateHyper {
        first: bool,
        divisor: f64,
    }
}

/// `sums[k] = (first ? gradients[k] : sums[k] + gradients[k]) / divisor` for every key of
/// `sums`, in one pass.
#[pyfunction]
#[pyo3(signature = (func, sums, gradients, hyper))]
pub fn accumulate(
    py: Python<'_>,
    func: &str,
    sums: &Bound<'_, PyAny>,
    gradients: &Bound<'_, PyAny>,
    hyper: &Bound<'_, AccumulateHyper>,
) -> PyResult<()> {
    let h = *hyper.get();
    guard(func, || {
        let sums = Items::read(func, "sums", "numpy arrays", sums)?;
        let g = Mapping::new(func, "gradients", "numpy arrays", gradients)?;
        let g = g.values_for(func, "gradients", "the sums", &sums)?;
        if let Some((key, s)) = sums.items.first() {
            let dtype = float_dtype(func, &Name::Item("sums", key.clone()), s)?;
            dispatch!(dtype => accumulate_typed(py, func, &sums, &g, h))?;
        }
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AccumulateHyper>()?;
    m.add_class::<EmaHyper>()?;
    m.add_function(wrap_pyfunction!(accumulate, m)?)?;
    m.add_function(wrap_pyfunction!(ema_update, m)?)
}
