//! The bandwidth probe used by `gradfast bench` for its roofline.

use gradfast_kernels::stream::{stream, Streams};
use numpy::{PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::run;
use crate::arrays::{input, output, same_shape, slices_mut, Input, Name};
use crate::error::Result;

/// Reads every array of `read` and reads and writes every array of `written` (float32, all
/// of one shape) in one pass: the memory traffic of a fused kernel with no arithmetic.
#[pyfunction]
pub fn bandwidth_probe(
    py: Python<'_>,
    written: Vec<Bound<'_, PyAny>>,
    read: Vec<Bound<'_, PyAny>>,
) -> PyResult<()> {
    Ok(probe(py, &written, &read)?)
}

fn probe(py: Python<'_>, written: &[Bound<'_, PyAny>], read: &[Bound<'_, PyAny>]) -> Result<()> {
    const F: &str = "bandwidth_probe";
    let mut w: Vec<PyReadwriteArrayDyn<f32>> = Vec::new();
    for a in written {
        w.push(output::<f32>(F, &Name::Arg("written"), a)?);
    }
    let r: Vec<Input<f32>> = read
        .iter()
        .map(|a| input::<f32>(F, &Name::Arg("read"), a))
        .collect::<Result<_>>()?;
    let shape = match (w.first(), r.first()) {
        (Some(a), _) => a.shape().to_vec(),
        (None, Some(a)) => a.shape().to_vec(),
        (None, None) => Vec::new(),
    };
    for a in &w {
        same_shape(F, &Name::Arg("written"), a.shape(), &shape)?;
    }
    for a in &r {
        same_shape(F, &Name::Arg("read"), a.shape(), &shape)?;
    }
    let read: Vec<&[f32]> = r.iter().map(Input::slice).collect::<Result<_>>()?;
    let written = slices_mut(&mut w)?;
    let n = shape.iter().product();
    run(py, n, || stream(Streams { written, read }));
    Ok(())
}
