//! Weight initialization: fills one new layer array from the counter-based stream.

use gradfast_kernels::init::{fill, Dist, InitArgs};
use pyo3::prelude::*;

use super::{guard, run};
use crate::arrays::{float_dtype, Call, Float, Name};
use crate::error::Result;
use crate::{dispatch, hyper_class};

hyper_class! {
    /// One layer of `gradfast.initialize_weights`: its `seed`, the layer index `layer` (the
    /// stream), whether the draws are normal (else uniform) and their std or limit `scale`.
    InitHyper {
        seed: u64,
        layer: u64,
        normal: bool,
        scale: f64,
    }
}

fn fill_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    w: &Bound<'_, PyAny>,
    args: &InitArgs,
) -> Result<()> {
    let mut call = Call::new(func);
    let mut out = call.output::<T>(Name::Arg("w"), w)?;
    let ok = call.check_overlaps()?;
    let ws = out.slice(&ok);
    run(py, ws.len(), || fill(ws, args));
    Ok(())
}

/// Fills `w` in C order from stream `hyper.layer` of `hyper.seed`: standard normals
/// (`hyper.normal`) or `2u - 1` for uniforms `u`, times `hyper.scale`.
#[pyfunction]
#[pyo3(signature = (func, w, hyper))]
pub fn init_fill(
    py: Python<'_>,
    func: &str,
    w: &Bound<'_, PyAny>,
    hyper: &Bound<'_, InitHyper>,
) -> PyResult<()> {
    guard(func, || {
        let h = hyper.get();
        let args = InitArgs {
            seed: h.seed,
            layer: h.layer,
            distribution: if h.normal {
                Dist::Normal
            } else {
                Dist::Uniform
            },
            scale: h.scale,
        };
        let dtype = float_dtype(func, &Name::Arg("w"), w)?;
        Ok(dispatch!(dtype => fill_typed(py, func, w, &args))?)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<InitHyper>()?;
    m.add_function(wrap_pyfunction!(init_fill, m)?)
}
