//! Backpropagation through time: loss and the three weight gradients in one call.
//!
//! The Python layer has already brought the arguments to `inputs (T, I, B)`,
//! `targets (T, O, B)`, `hidden_state (H, B)` (the reference's own checks); the binding
//! checks every array again (dtype, layout, shapes, no overlap with the outputs) so that the
//! kernel can only ever read in bounds.

use gradfast_kernels::rnn::{bptt as bptt_kernel, Dims, Grads, Tanh, Weights};
use gradfast_kernels::runtime::matmul::Gemm;
use pyo3::prelude::*;

use super::{guard, run};
use crate::arrays::{float_dtype, same_shape, Call, Float, Name};
use crate::error::{Error, Result};
use crate::{dispatch, hyper_class};

hyper_class! {
    /// `gradfast.bptt`'s hyper-parameter.
    BpttHyper {
        sequence_length: usize,
    }
}

/// Three arrays in the order of `weights`' keys: `Wx`, `Wh`, `Wy`.
type Three<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>);

/// The arrays of a call, in the order of the Python function.
struct Arrays<'a, 'py> {
    inputs: &'a Bound<'py, PyAny>,
    targets: &'a Bound<'py, PyAny>,
    hidden_state: &'a Bound<'py, PyAny>,
    weights: [&'a Bound<'py, PyAny>; 3],
    grads: [&'a Bound<'py, PyAny>; 3],
}

fn dims3(func: &str, name: &str, shape: &[usize]) -> Result<[usize; 3]> {
    match *shape {
        [a, b, c] => Ok([a, b, c]),
        _ => Err(Error::Value(format!(
            "{func}: {name} must be a 3-D array, got {} dimensions",
            shape.len()
        ))),
    }
}

fn bptt_typed<T: Float + Tanh + Gemm>(
    py: Python<'_>,
    func: &str,
    a: &Arrays,
    sequence_length: usize,
) -> Result<f64> {
    let mut call = Call::new(func);
    let x = call.input::<T>(Name::Arg("inputs"), a.inputs)?;
    let y = call.input::<T>(Name::Arg("targets"), a.targets)?;
    let h0 = call.input::<T>(Name::Arg("hidden_state"), a.hidden_state)?;
    let [wx, wh, wy] = a.weights;
    let wx = call.input::<T>(Name::Arg("weights['Wx']"), wx)?;
    let wh = call.input::<T>(Name::Arg("weights['Wh']"), wh)?;
    let wy = call.input::<T>(Name::Arg("weights['Wy']"), wy)?;
    let [gx, gh, gy] = a.grads;
    let mut gx = call.output::<T>(Name::Arg("grads['Wx']"), gx)?;
    let mut gh = call.output::<T>(Name::Arg("grads['Wh']"), gh)?;
    let mut gy = call.output::<T>(Name::Arg("grads['Wy']"), gy)?;

    let [t, i, b] = dims3(func, "inputs", x.shape())?;
    let (h, o) = match (wx.shape(), wy.shape()) {
        ([h, _], [o, _]) => (*h, *o),
        _ => {
            return Err(Error::Value(format!(
                "{func}: weights['Wx'] and weights['Wy'] must be 2-D arrays"
            )))
        }
    };
    let arg = Name::Arg;
    same_shape(func, &arg("weights['Wx']"), wx.shape(), &[h, i])?;
    same_shape(func, &arg("weights['Wh']"), wh.shape(), &[h, h])?;
    same_shape(func, &arg("weights['Wy']"), wy.shape(), &[o, h])?;
    same_shape(func, &arg("targets"), y.shape(), &[t, o, b])?;
    same_shape(func, &arg("hidden_state"), h0.shape(), &[h, b])?;
    same_shape(func, &arg("grads['Wx']"), gx.shape(), &[h, i])?;
    same_shape(func, &arg("grads['Wh']"), gh.shape(), &[h, h])?;
    same_shape(func, &arg("grads['Wy']"), gy.shape(), &[o, h])?;
    if !(1..=t).contains(&sequence_length) || b == 0 || o == 0 {
        return Err(Error::Value(format!(
            "{func}: sequence_length must be an int in [1, {t}] with B >= 1 and O >= 1, \
             got {sequence_length} (B = {b}, O = {o})"
        )));
    }

    let ok = call.check_overlaps()?;
    let d = Dims {
        s: sequence_length,
        b,
        i,
        h,
        o,
    };
    let (x, y, h0) = (x.slice(&ok), y.slice(&ok), h0.slice(&ok));
    let w = Weights {
        wx: wx.slice(&ok),
        wh: wh.slice(&ok),
        wy: wy.slice(&ok),
    };
    let g = Grads {
        wx: gx.slice(&ok),
        wh: gh.slice(&ok),
        wy: gy.slice(&ok),
    };
    let work = (sequence_length * b)
        .saturating_mul(h)
        .saturating_mul(i + h + o);
    Ok(run(py, work, move || bptt_kernel(d, x, y, h0, w, g)))
}

/// Loss and gradients of a vanilla RNN; writes `grads` (`Wx`, `Wh`, `Wy`, as `weights`).
#[pyfunction]
#[pyo3(signature = (func, inputs, targets, hidden_state, weights, grads, hyper))]
#[allow(clippy::too_many_arguments)] // the arrays of the Python call, each by its name
pub fn bptt<'py>(
    py: Python<'py>,
    func: &str,
    inputs: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    hidden_state: &Bound<'py, PyAny>,
    weights: Three<'py>,
    grads: Three<'py>,
    hyper: &Bound<'py, BpttHyper>,
) -> PyResult<f64> {
    guard(func, || {
        let a = Arrays {
            inputs,
            targets,
            hidden_state,
            weights: [&weights.0, &weights.1, &weights.2],
            grads: [&grads.0, &grads.1, &grads.2],
        };
        let dtype = float_dtype(func, &Name::Arg("weights['Wx']"), &weights.0)?;
        let sequence_length = hyper.get().sequence_length;
        Ok(dispatch!(dtype => bptt_typed(py, func, &a, sequence_length))?)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BpttHyper>()?;
    m.add_function(wrap_pyfunction!(bptt, m)?)
}
