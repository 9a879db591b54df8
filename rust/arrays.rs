//! Validation and borrowing of the arrays of a call, with gradfast's own messages:
//! `"{function}: {argument} must be {expected}, got {actual}"`.
//!
//! Every array of a call is checked and borrowed before any is written. rust-numpy's borrow
//! tracking rejects two overlapping borrows when one is writeable, which is how outputs that
//! share memory with another array of the call are caught.

use std::fmt;

use numpy::{
    dtype, BorrowError, Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods,
    PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{python, Error, Result};

/// The name of an argument in a message: `params`, `params['w']` or `state['w']['exp_avg']`.
/// Formatted only when a message needs it.
pub enum Name<'a, 'py> {
    Arg(&'a str),
    Item(&'a str, &'a Bound<'py, PyAny>),
    Slot(&'a str, &'a Bound<'py, PyAny>, &'a str),
}

fn repr(key: &Bound<PyAny>) -> String {
    key.repr()
        .map_or_else(|_| "?".to_string(), |r| r.to_string())
}

impl fmt::Display for Name<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Arg(a) => write!(f, "{a}"),
            Name::Item(a, k) => write!(f, "{a}[{}]", repr(k)),
            Name::Slot(a, k, s) => write!(f, "{a}[{}]['{s}']", repr(k)),
        }
    }
}

/// The element types of the kernels.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

fn type_name(obj: &Bound<PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string())
}

fn ndarray<'a, 'py>(
    func: &str,
    name: &Name,
    obj: &'a Bound<'py, PyAny>,
) -> Result<&'a Bound<'py, PyUntypedArray>> {
    obj.cast::<PyUntypedArray>().map_err(|_| {
        Error::Type(format!(
            "{func}: {name} must be a numpy.ndarray, got {}",
            type_name(obj)
        ))
    })
}

/// The dtype of a float32 or float64 array.
pub fn float_dtype(func: &str, name: &Name, obj: &Bound<PyAny>) -> Result<Dtype> {
    let arr = ndarray(func, name, obj)?;
    let py = obj.py();
    let dt = arr.dtype();
    if dt.is_equiv_to(&dtype::<f32>(py)) {
        Ok(Dtype::F32)
    } else if dt.is_equiv_to(&dtype::<f64>(py)) {
        Ok(Dtype::F64)
    } else {
        Err(Error::Type(format!(
            "{func}: {name} must have dtype float32 or float64, got {dt}"
        )))
    }
}

fn typed<'a, 'py, T: Element>(
    func: &str,
    name: &Name,
    obj: &'a Bound<'py, PyAny>,
) -> Result<&'a Bound<'py, PyArrayDyn<T>>> {
    let arr = ndarray(func, name, obj)?;
    arr.cast::<PyArrayDyn<T>>().map_err(|_| {
        let want = dtype::<T>(obj.py());
        match float_dtype(func, name, obj) {
            Err(e) => e,
            Ok(_) => Error::Type(format!(
                "{func}: {name} must have dtype {want} like the other arrays of the call, got {}",
                arr.dtype()
            )),
        }
    })
}

fn shared(func: &str, name: &Name) -> Error {
    Error::Value(format!(
        "{func}: {name} must not share memory with another array of the call, got overlapping arrays"
    ))
}

/// An output: C-contiguous, writeable, not overlapping any other array borrowed in this call.
pub fn output<'py, T: Element>(
    func: &str,
    name: &Name,
    obj: &Bound<'py, PyAny>,
) -> Result<PyReadwriteArrayDyn<'py, T>> {
    let arr = typed::<T>(func, name, obj)?;
    if !arr.is_c_contiguous() {
        return Err(Error::Value(format!(
            "{func}: {name} must be C-contiguous, got a non-contiguous array (use np.ascontiguousarray)"
        )));
    }
    arr.try_readwrite().map_err(|e| match e {
        BorrowError::NotWriteable => Error::Value(format!(
            "{func}: {name} must be writeable, got a read-only array"
        )),
        _ => shared(func, name),
    })
}

/// A read-only input, borrowed in place when C-contiguous and copied once otherwise.
pub enum Input<'py, T: Element> {
    View(PyReadonlyArrayDyn<'py, T>),
    Copy(Vec<T>, Vec<usize>),
}

impl<T: Element + Copy> Input<'_, T> {
    pub fn shape(&self) -> &[usize] {
        match self {
            Input::View(a) => a.shape(),
            Input::Copy(_, s) => s,
        }
    }

    pub fn slice(&self) -> Result<&[T]> {
        match self {
            Input::View(a) => a.as_slice().map_err(|e| Error::Value(e.to_string())),
            Input::Copy(v, _) => Ok(v),
        }
    }
}

pub fn input<'py, T: Element + Copy>(
    func: &str,
    name: &Name,
    obj: &Bound<'py, PyAny>,
) -> Result<Input<'py, T>> {
    let arr = typed::<T>(func, name, obj)?;
    let view = arr.try_readonly().map_err(|_| shared(func, name))?;
    if arr.is_c_contiguous() {
        Ok(Input::View(view))
    } else {
        let a = view.as_array();
        Ok(Input::Copy(a.iter().copied().collect(), a.shape().to_vec()))
    }
}

/// `(3,)`, `(2, 3)` or `()`, as Python prints a shape.
pub fn shape_str(s: &[usize]) -> String {
    match s {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            s.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn same_shape(func: &str, name: &Name, got: &[usize], want: &[usize]) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Value(format!(
            "{func}: {name} must have shape {}, got {}",
            shape_str(want),
            shape_str(got)
        )))
    }
}

/// A dict argument.
pub fn dict<'a, 'py>(
    func: &str,
    name: &str,
    obj: &'a Bound<'py, PyAny>,
) -> Result<&'a Bound<'py, PyDict>> {
    obj.cast::<PyDict>().map_err(|_| {
        Error::Type(format!(
            "{func}: {name} must be a dict of numpy arrays, got {}",
            type_name(obj)
        ))
    })
}

/// `d` must have exactly the keys of `reference`.
pub fn same_keys(
    func: &str,
    name: &str,
    d: &Bound<PyDict>,
    ref_name: &str,
    reference: &Bound<PyDict>,
) -> Result<()> {
    for key in reference.keys() {
        if !d.contains(&key).map_err(python)? {
            return Err(Error::Value(format!(
                "{func}: {name} must have key {} like {ref_name}, got it missing",
                repr(&key)
            )));
        }
    }
    if d.len() != reference.len() {
        for key in d.keys() {
            if !reference.contains(&key).map_err(python)? {
                return Err(Error::Value(format!(
                    "{func}: {name} must have only the keys of {ref_name}, got extra key {}",
                    repr(&key)
                )));
            }
        }
    }
    Ok(())
}

/// Mutable slices of borrowed outputs.
pub fn slices_mut<'a, T: Element>(
    arrays: &'a mut [PyReadwriteArrayDyn<'_, T>],
) -> Result<Vec<&'a mut [T]>> {
    arrays
        .iter_mut()
        .map(|a| a.as_slice_mut().map_err(|e| Error::Value(e.to_string())))
        .collect()
}
