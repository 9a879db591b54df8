//! Unit-wise adaptive gradient clipping over a dict, in place on the gradients.

use gradfast_kernels::clip::{
    adaptive_grad_clip as kernel, AdaptiveGradClipArgs, AdaptiveGradClipTensor,
};
use pyo3::prelude::*;

use crate::arrays::{float_dtype, same_shape, Call, Float, In, Items, Mapping, Name, Out};
use crate::bindings::{guard, run};
use crate::error::Result;
use crate::{dispatch, hyper_class};

hyper_class! {
    /// `gradfast.adaptive_grad_clip`'s hyper-parameters.
    AdaptiveGradClipHyper {
        clipping: f64,
        eps: f64,
    }
}

fn adaptive_grad_clip_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    grads: &Items,
    params: &[Bound<'_, PyAny>],
    args: &AdaptiveGradClipArgs,
) -> Result<()> {
    let mut call = Call::new(func);
    let mut arrays: Vec<(Out<T>, In<T>)> = Vec::with_capacity(grads.len());
    for ((key, g), p) in grads.items.iter().zip(params) {
        let g = call.output::<T>(Name::Item("gradients", key.clone()), g)?;
        let p_name = Name::Item("params", key.clone());
        let p = call.input::<T>(p_name.clone(), p)?;
        same_shape(func, &p_name, p.shape(), g.shape())?;
        arrays.push((g, p));
    }
    let ok = call.check_overlaps()?;
    let mut total = 0;
    let tensors: Vec<AdaptiveGradClipTensor<T>> = arrays
        .iter_mut()
        .map(|(g, p)| {
            // a unit is a row along axis 0 when ndim > 1, else the whole array
            let shape = g.shape();
            let rows = if shape.len() > 1 { shape[0] } else { 1 };
            let g = g.slice(&ok);
            total += g.len();
            AdaptiveGradClipTensor {
                unit: g.len().checked_div(rows).unwrap_or(0),
                g,
                p: p.slice(&ok),
            }
        })
        .collect();
    run(py, total, || kernel(tensors, args));
    Ok(())
}

/// Clips every unit of every gradient against its parameters' norm, in place.
#[pyfunction]
#[pyo3(signature = (func, gradients, params, hyper))]
pub fn adaptive_grad_clip(
    py: Python<'_>,
    func: &str,
    gradients: &Bound<'_, PyAny>,
    params: &Bound<'_, PyAny>,
    hyper: &Bound<'_, AdaptiveGradClipHyper>,
) -> PyResult<()> {
    guard(func, || {
        let h = hyper.get();
        let args = AdaptiveGradClipArgs {
            clipping: h.clipping,
            eps: h.eps,
        };
        let grads = Items::read(func, "gradients", "numpy arrays", gradients)?;
        let p = Mapping::new(func, "params", "numpy arrays", params)?;
        let p = p.values_for(func, "params", "gradients", &grads)?;
        if let Some((key, g)) = grads.items.first() {
            let dtype = float_dtype(func, &Name::Item("gradients", key.clone()), g)?;
            dispatch!(dtype => adaptive_grad_clip_typed(py, func, &grads, &p, &args))?;
        }
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AdaptiveGradClipHyper>()?;
    m.add_function(wrap_pyfunction!(adaptive_grad_clip, m)?)
}
