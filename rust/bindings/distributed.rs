//! The buckets of `gradfast.distributed`: many tensors packed into one flat array for a
//! collective call and copied back (divided by the number of contributions for a mean),
//! as floats or as bfloat16 bits, and the bfloat16 sum MPI applies to such buckets.

use gradfast_kernels::distributed as kernel;
use gradfast_kernels::runtime::bf16::Bf16;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::{guard, run};
use crate::arrays::{float_dtype, Call, Dtype, Float, Name};
use crate::dispatch;
use crate::error::{Error, Result};

fn list<'a, 'py>(func: &str, obj: &'a Bound<'py, PyAny>) -> Result<&'a Bound<'py, PyList>> {
    obj.cast::<PyList>().map_err(|_| {
        Error::Type(format!(
            "{func}: tensors must be a list of numpy arrays, got {}",
            obj.get_type()
                .name()
                .map_or_else(|_| "?".to_string(), |n| n.to_string())
        ))
    })
}

/// The dtype of the tensors: that of the first, or of the bucket when there is none.
fn dtype(func: &str, tensors: &Bound<PyList>, bucket: &Bound<PyAny>) -> Result<Option<Dtype>> {
    match tensors.iter().next() {
        Some(t) => float_dtype(func, &Name::Item("tensors", index(t.py(), 0)), &t).map(Some),
        None => Ok(float_dtype(func, &Name::Arg("bucket"), bucket).ok()),
    }
}

fn is_words(bucket: &Bound<PyAny>) -> bool {
    bucket
        .getattr("dtype")
        .and_then(|d| d.eq("uint16"))
        .unwrap_or(false)
}

fn length(func: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Value(format!(
            "{func}: bucket must have {want} elements (the tensors' total), got {got}"
        )))
    }
}

fn index<'py>(py: Python<'py>, i: usize) -> Bound<'py, PyAny> {
    match i.into_pyobject(py) {
        Ok(i) => i.into_any(),
        Err(never) => match never {},
    }
}

fn pack_typed<T: Float + Bf16>(
    py: Python<'_>,
    func: &str,
    tensors: &Bound<'_, PyList>,
    bucket: &Bound<'_, PyAny>,
) -> Result<()> {
    let mut call = Call::new(func);
    let mut ins = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        ins.push(call.input::<T>(Name::Item("tensors", index(py, i)), &t)?);
    }
    let total: usize = ins
        .iter()
        .map(|t| t.shape().iter().product::<usize>())
        .sum();
    if is_words(bucket) {
        let mut out = call.words(Name::Arg("bucket"), bucket, true)?;
        length(func, out.len(), total)?;
        let ok = call.check_overlaps()?;
        let srcs: Vec<&[T]> = ins.iter().map(|t| t.slice(&ok)).collect();
        let dst = out.slice_mut(&ok);
        run(py, total, move || kernel::pack_bf16(srcs, dst));
    } else {
        let mut out = call.output::<T>(Name::Arg("bucket"), bucket)?;
        length(func, out.shape().iter().product(), total)?;
        let ok = call.check_overlaps()?;
        let srcs: Vec<&[T]> = ins.iter().map(|t| t.slice(&ok)).collect();
        let dst = out.slice(&ok);
        run(py, total, move || kernel::pack(srcs, dst));
    }
    Ok(())
}

fn unpack_typed<T: Float + Bf16>(
    py: Python<'_>,
    func: &str,
    bucket: &Bound<'_, PyAny>,
    tensors: &Bound<'_, PyList>,
    divisor: Option<f64>,
) -> Result<()> {
    let mut call = Call::new(func);
    let mut outs = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        outs.push(call.output::<T>(Name::Item("tensors", index(py, i)), &t)?);
    }
    let total: usize = outs
        .iter()
        .map(|t| t.shape().iter().product::<usize>())
        .sum();
    let divisor = divisor.map(T::of);
    if is_words(bucket) {
        let src = call.words(Name::Arg("bucket"), bucket, false)?;
        length(func, src.len(), total)?;
        let ok = call.check_overlaps()?;
        let dsts: Vec<&mut [T]> = outs.iter_mut().map(|t| t.slice(&ok)).collect();
        let src = src.slice(&ok);
        run(py, total, move || kernel::unpack_bf16(src, dsts, divisor));
    } else {
        let src = call.input::<T>(Name::Arg("bucket"), bucket)?;
        length(func, src.shape().iter().product(), total)?;
        let ok = call.check_overlaps()?;
        let dsts: Vec<&mut [T]> = outs.iter_mut().map(|t| t.slice(&ok)).collect();
        let src = src.slice(&ok);
        run(py, total, move || kernel::unpack(src, dsts, divisor));
    }
    Ok(())
}

fn divide_typed<T: Float + Bf16>(
    py: Python<'_>,
    func: &str,
    tensors: &Bound<'_, PyList>,
    divisor: f64,
) -> Result<()> {
    let mut call = Call::new(func);
    let mut outs = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        outs.push(call.output::<T>(Name::Item("tensors", index(py, i)), &t)?);
    }
    let ok = call.check_overlaps()?;
    let dsts: Vec<&mut [T]> = outs.iter_mut().map(|t| t.slice(&ok)).collect();
    let total = dsts.iter().map(|d| d.len()).sum();
    run(py, total, move || kernel::divide(dsts, T::of(divisor)));
    Ok(())
}

fn divisor_ok(func: &str, divisor: f64) -> Result<()> {
    if divisor.is_finite() && divisor > 0.0 {
        Ok(())
    } else {
        Err(Error::Value(format!(
            "{func}: divisor must be a finite number > 0, got {divisor}"
        )))
    }
}

/// Copies `tensors` end to end into the flat `bucket`: of their dtype, or uint16 for
/// their bfloat16 bits (rounded to nearest even).
#[pyfunction]
pub fn pack(
    py: Python<'_>,
    func: &str,
    tensors: &Bound<'_, PyAny>,
    bucket: &Bound<'_, PyAny>,
) -> PyResult<()> {
    guard(func, || {
        let tensors = list(func, tensors)?;
        let dtype = dtype(func, tensors, bucket)?.unwrap_or(Dtype::F32);
        Ok(dispatch!(dtype => pack_typed(py, func, tensors, bucket))?)
    })
}

/// Copies the flat `bucket` back into `tensors` (the inverse of `pack`), each value divided
/// by `divisor` when it is not None.
#[pyfunction]
#[pyo3(signature = (func, bucket, tensors, divisor=None))]
pub fn unpack(
    py: Python<'_>,
    func: &str,
    bucket: &Bound<'_, PyAny>,
    tensors: &Bound<'_, PyAny>,
    divisor: Option<f64>,
) -> PyResult<()> {
    guard(func, || {
        let tensors = list(func, tensors)?;
        if let Some(d) = divisor {
            divisor_ok(func, d)?;
        }
        let dtype = dtype(func, tensors, bucket)?.unwrap_or(Dtype::F32);
        Ok(dispatch!(dtype => unpack_typed(py, func, bucket, tensors, divisor))?)
    })
}

/// Divides every element of `tensors` by `divisor`, in place.
#[pyfunction]
pub fn divide(
    py: Python<'_>,
    func: &str,
    tensors: &Bound<'_, PyAny>,
    divisor: f64,
) -> PyResult<()> {
    guard(func, || {
        let tensors = list(func, tensors)?;
        divisor_ok(func, divisor)?;
        let Some(first) = tensors.iter().next() else {
            return Ok(());
        };
        let dtype = float_dtype(func, &Name::Item("tensors", index(py, 0)), &first)?;
        Ok(dispatch!(dtype => divide_typed(py, func, tensors, divisor))?)
    })
}

/// `acc = bf16(f32(src) + f32(acc))` over two equally long buckets of bfloat16 bits: the
/// reduction MPI applies to compressed buckets.
#[pyfunction]
pub fn sum_bf16(py: Python<'_>, src: &Bound<'_, PyAny>, acc: &Bound<'_, PyAny>) -> PyResult<()> {
    let func = "sum_bf16";
    guard(func, || {
        let mut call = Call::new(func);
        let s = call.words(Name::Arg("src"), src, false)?;
        let mut a = call.words(Name::Arg("acc"), acc, true)?;
        if s.len() != a.len() {
            return Err(Error::Value(format!(
                "{func}: src must have the {} elements of acc, got {}",
                a.len(),
                s.len()
            ))
            .into());
        }
        let ok = call.check_overlaps()?;
        let (s, a) = (s.slice(&ok), a.slice_mut(&ok));
        run(py, a.len(), move || kernel::sum_bf16(s, a));
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pack, m)?)?;
    m.add_function(wrap_pyfunction!(unpack, m)?)?;
    m.add_function(wrap_pyfunction!(divide, m)?)?;
    m.add_function(wrap_pyfunction!(sum_bf16, m)?)
}
