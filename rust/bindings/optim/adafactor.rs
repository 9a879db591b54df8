//! `Adafactor` (the engine of its `update`). An array of 2 or more dims keeps `row_var` of
//! shape `(..., m, 1)` and `col_var` of shape `(..., 1, n)` over its last two dims; a vector or
//! scalar keeps `variance` of its own shape: the shapes are checked per slot.

use gradfast_kernels::optim::adafactor::{
    adafactor as kernel, AdafactorArgs, AdafactorTensor, SecondMoment,
};
use pyo3::prelude::*;

use super::{Dicts, Hypers};
use crate::arrays::{Float, Name};
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.Adafactor`'s hyper-parameters (`epsilon[0]` None: the dtype's machine epsilon).
    AdafactorHyper {
        learning_rate: f64,
        beta2_decay: f64,
        epsilon: (Option<f64>, f64),
        d: f64,
        weight_decay: f64,
        maximize: bool,
    }
}

/// The shapes of `row_var`, `col_var` and `variance` for a parameter of `shape`.
fn slot_shapes(_: &Name<'_>, shape: &[usize]) -> Result<[Option<Vec<usize>>; 3]> {
    Ok(match shape {
        [lead @ .., m, n] => {
            let row = [lead, &[*m, 1]].concat();
            let col = [lead, &[1, *n]].concat();
            [Some(row), Some(col), None]
        }
        _ => [None, None, Some(shape.to_vec())],
    })
}

fn adafactor_typed<T: Float>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<AdafactorHyper>,
    step: u64,
) -> Result<()> {
    let args = |h: &AdafactorHyper| AdafactorArgs {
        learning_rate: h.learning_rate,
        beta2_decay: h.beta2_decay,
        epsilon1: h.epsilon.0,
        epsilon2: h.epsilon.1,
        d: h.d,
        weight_decay: h.weight_decay,
        maximize: h.maximize,
        step,
    };
    let slots = ["row_var", "col_var", "variance"];
    dicts.run_shaped::<T, T, 3, _>(py, slots, &slot_shapes, h, |arrays, h| {
        let tensors = arrays.into_iter().map(|a| {
            let [row_var, col_var, variance] = a.slots;
            let v = match a.shape[..] {
                [.., rows, cols] => SecondMoment::Factored {
                    rows,
                    cols,
                    row_var,
                    col_var,
                },
                _ => SecondMoment::Full(variance),
            };
            AdafactorTensor { p: a.p, g: a.g, v }
        });
        kernel(tensors.collect(), &args(h))
    })
}

step_binding! {
    /// One Adafactor step over a dict of parameters, in place, committed to `steps`.
    adafactor(AdafactorHyper) => adafactor_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AdafactorHyper>()?;
    m.add_function(wrap_pyfunction!(adafactor, m)?)
}
