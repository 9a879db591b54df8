//! The bandwidth probe used by `gradfast bench` for its roofline.

use gradfast_kernels::runtime::probe::{stream, Streams};
use pyo3::prelude::*;

use super::run;
use crate::arrays::{same_shape, Call, In, Name, Out};
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

fn probe<'py>(
    py: Python<'py>,
    written: &[Bound<'py, PyAny>],
    read: &[Bound<'py, PyAny>],
) -> Result<()> {
    const F: &str = "bandwidth_probe";
    let mut call = Call::new(F);
    let mut w: Vec<Out<f32>> = written
        .iter()
        .map(|a| call.output::<f32>(Name::Arg("written"), a))
        .collect::<Result<_>>()?;
    let r: Vec<In<f32>> = read
        .iter()
        .map(|a| call.input::<f32>(Name::Arg("read"), a))
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
    let ok = call.check_overlaps()?;
    let read: Vec<&[f32]> = r.iter().map(|a| a.slice(&ok)).collect();
    let written: Vec<&mut [f32]> = w.iter_mut().map(|a| a.slice(&ok)).collect();
    let n = shape.iter().product();
    run(py, n, || stream(Streams { written, read }));
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bandwidth_probe, m)?)
}
