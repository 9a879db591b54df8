//! Weight initialization: fills one new layer array from the counter-based stream.

use gradfast_kernels::init::{fill, Dist};
use pyo3::prelude::*;

use super::{guard, run};
use crate::arrays::{float_dtype, Call, Float, Name};
use crate::dispatch;
use crate::error::Result;

fn fill_typed<T: Float>(
    py: Python<'_>,
    func: &str,
    w: &Bound<'_, PyAny>,
    seed: u64,
    stream: u64,
    dist: Dist,
    scale: f64,
) -> Result<()> {
    let mut call = Call::new(func);
    let mut out = call.output::<T>(Name::Arg("w"), w)?;
    let ok = call.check_overlaps()?;
    let ws = out.slice(&ok);
    run(py, ws.len(), || fill(ws, seed, stream, dist, scale));
    Ok(())
}

/// Fills `w` in C order from stream `stream` of `seed`: standard normals (`normal=True`) or
/// `2u - 1` for uniforms `u`, times `scale`.
#[pyfunction]
#[pyo3(signature = (func, w, seed, stream, normal, scale))]
pub fn init_fill(
    py: Python<'_>,
    func: &str,
    w: &Bound<'_, PyAny>,
    seed: u64,
    stream: u64,
    normal: bool,
    scale: f64,
) -> PyResult<()> {
    guard(func, || {
        let dist = if normal { Dist::Normal } else { Dist::Uniform };
        let dtype = float_dtype(func, &Name::Arg("w"), w)?;
        Ok(dispatch!(dtype => fill_typed(py, func, w, seed, stream, dist, scale))?)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(init_fill, m)?)
}
