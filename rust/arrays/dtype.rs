//! The arrays kernels take: NumPy ndarrays of float32 or float64 in native byte order, and
//! for the optimizers that store them, of `ml_dtypes.bfloat16` (borrowed as its bits, `u16`).
//!
//! Subclasses: an ndarray subclass whose arithmetic is ndarray's (`np.memmap`, a plain
//! subclass) is used as the buffer it is. `np.ma.MaskedArray` (its mask would be written
//! through) and `np.matrix` (its `*` is a matrix product in the reference) are refused, in
//! both implementations, with the way out in the message.

use numpy::npyffi::{PyArray_CheckExact, NPY_TYPES};
use numpy::{
    dtype, Element, PyArrayDescr, PyArrayDescrMethods, PyArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::{type_name, Name};
use crate::error::{Error, Result};

/// The element types of the kernels.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dtype {
    F32,
    F64,
}

/// A `numpy.dtype` of float32 or float64, as hyper-parameter classes take it (`dtype=`).
impl<'a, 'py> FromPyObject<'a, 'py> for Dtype {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let d = obj.cast::<PyArrayDescr>().map_err(PyErr::from)?;
        if d.is_native_byteorder() != Some(false) {
            if d.num() == NPY_TYPES::NPY_FLOAT as i32 {
                return Ok(Dtype::F32);
            }
            if d.num() == NPY_TYPES::NPY_DOUBLE as i32 {
                return Ok(Dtype::F64);
            }
        }
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "dtype must be float32 or float64, got {}",
            d.to_owned()
        )))
    }
}

impl<'py> IntoPyObject<'py> for Dtype {
    type Target = PyArrayDescr;
    type Output = Bound<'py, PyArrayDescr>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> std::result::Result<Self::Output, Self::Error> {
        Ok(match self {
            Dtype::F32 => dtype::<f32>(py),
            Dtype::F64 => dtype::<f64>(py),
        })
    }
}

/// An element type the kernels take, with its dtype.
pub trait Float: Element + Copy + gradfast_kernels::Real {
    const DTYPE: Dtype;
}

impl Float for f32 {
    const DTYPE: Dtype = Dtype::F32;
}

impl Float for f64 {
    const DTYPE: Dtype = Dtype::F64;
}

/// An element type a binding borrows: a kernel float, or a byte of a bool mask.
pub trait Elem: Element + Copy + 'static {
    /// Whether `arr` holds elements of this type, in native byte order.
    fn holds(arr: &Bound<PyUntypedArray>) -> bool;
    /// The error for an array that does not.
    fn wrong(func: &str, name: &Name, arr: &Bound<PyUntypedArray>) -> Error;
}

impl<T: Float> Elem for T {
    fn holds(arr: &Bound<PyUntypedArray>) -> bool {
        element_dtype(arr) == Some(T::DTYPE)
    }
    fn wrong(func: &str, name: &Name, arr: &Bound<PyUntypedArray>) -> Error {
        if element_dtype(arr).is_some() || is_bf16(arr) {
            Error::Type(format!(
                "{func}: {name} must have dtype {} like the other arrays of the call, got {}",
                dtype::<T>(arr.py()),
                arr.dtype()
            ))
        } else {
            Error::Type(format!(
                "{func}: {name} must have dtype float32 or float64, got {}",
                arr.dtype()
            ))
        }
    }
}

/// uint8: the codes of 8-bit optimizer state.
impl Elem for u8 {
    fn holds(arr: &Bound<PyUntypedArray>) -> bool {
        arr.dtype().num() == NPY_TYPES::NPY_UBYTE as i32
    }
    fn wrong(func: &str, name: &Name, arr: &Bound<PyUntypedArray>) -> Error {
        Error::Type(format!(
            "{func}: {name} must have dtype uint8 (8-bit state codes), got {}",
            arr.dtype()
        ))
    }
}

/// `ml_dtypes.bfloat16`, borrowed as its bits.
impl Elem for u16 {
    fn holds(arr: &Bound<PyUntypedArray>) -> bool {
        is_bf16(arr)
    }
    fn wrong(func: &str, name: &Name, arr: &Bound<PyUntypedArray>) -> Error {
        Error::Type(format!(
            "{func}: {name} must have dtype bfloat16 like the other arrays of the call, got {}",
            arr.dtype()
        ))
    }
}

/// The storage types of optimizer arrays.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Storage {
    F32,
    F64,
    Bf16,
}

static BF16_NUM: PyOnceLock<Option<i32>> = PyOnceLock::new();

/// Whether `arr` holds `ml_dtypes.bfloat16`. Its type number is given when ml_dtypes
/// registers it; ml_dtypes is imported only once an array of a user-defined dtype is seen.
fn is_bf16(arr: &Bound<PyUntypedArray>) -> bool {
    let dt = arr.dtype();
    let num = dt.num();
    if num < NPY_TYPES::NPY_USERDEF as i32 || dt.is_native_byteorder() == Some(false) {
        return false;
    }
    let py = arr.py();
    let bf16 = BF16_NUM.get_or_init(py, || {
        let dt = py
            .import("ml_dtypes")
            .and_then(|m| m.getattr("bfloat16"))
            .and_then(|t| PyArrayDescr::new(py, &t));
        dt.ok().map(|d| d.num())
    });
    *bf16 == Some(num)
}

/// The storage type of an optimizer array: float32, float64 or bfloat16.
pub fn storage_dtype(func: &str, name: &Name, obj: &Bound<PyAny>) -> Result<Storage> {
    let arr = ndarray(func, name, obj)?;
    match element_dtype(arr) {
        Some(Dtype::F32) => Ok(Storage::F32),
        Some(Dtype::F64) => Ok(Storage::F64),
        None if is_bf16(arr) => Ok(Storage::Bf16),
        None => Err(Error::Type(format!(
            "{func}: {name} must have dtype float32, float64 or bfloat16, got {}",
            arr.dtype()
        ))),
    }
}

/// One element of a NumPy bool array, read as its byte. NumPy writes True as 1, but a bool
/// view of other memory may hold any byte, which a Rust `bool` must never: nonzero is True,
/// as NumPy's logical operations read it.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct MaskByte(pub u8);

// SAFETY: one plain byte, laid out as NumPy's bool, trivially copyable.
unsafe impl Element for MaskByte {
    const IS_COPY: bool = true;
    fn get_dtype(py: Python<'_>) -> Bound<'_, PyArrayDescr> {
        dtype::<bool>(py)
    }
    fn clone_ref(&self, _py: Python<'_>) -> Self {
        *self
    }
}

impl Elem for MaskByte {
    fn holds(arr: &Bound<PyUntypedArray>) -> bool {
        arr.dtype().num() == NPY_TYPES::NPY_BOOL as i32
    }
    fn wrong(func: &str, name: &Name, arr: &Bound<PyUntypedArray>) -> Error {
        Error::Type(format!(
            "{func}: {name} must have dtype bool, got {}",
            arr.dtype()
        ))
    }
}

impl MaskByte {
    pub fn bytes(s: &[MaskByte]) -> &[u8] {
        // SAFETY: MaskByte is a transparent u8.
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), s.len()) }
    }
    pub fn bytes_mut(s: &mut [MaskByte]) -> &mut [u8] {
        // SAFETY: MaskByte is a transparent u8, and any byte is a valid MaskByte.
        unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
    }
}

/// Calls a function generic over the element type with the type `dtype` names:
/// `dispatch!(dtype => f(args))` is `f::<f32>(args)` or `f::<f64>(args)`;
/// `dispatch!(storage layout => f(args))` is `f::<C, P, S>(args)` with the layout's arithmetic,
/// params and state types (bfloat16 as its `u16` bits).
#[macro_export]
macro_rules! dispatch {
    ($dtype:expr => $f:ident($($arg:expr),* $(,)?)) => {
        match $dtype {
            $crate::arrays::Dtype::F32 => $f::<f32>($($arg),*),
            $crate::arrays::Dtype::F64 => $f::<f64>($($arg),*),
        }
    };
    (storage $layout:expr => $f:ident($($arg:expr),* $(,)?)) => {
        match $layout {
            $crate::arrays::Layout::F32 => $f::<f32, f32, f32>($($arg),*),
            $crate::arrays::Layout::F64 => $f::<f64, f64, f64>($($arg),*),
            $crate::arrays::Layout::F32Bf16 => $f::<f32, f32, u16>($($arg),*),
            $crate::arrays::Layout::Bf16 => $f::<f32, u16, u16>($($arg),*),
            $crate::arrays::Layout::Bf16F32 => $f::<f32, u16, f32>($($arg),*),
        }
    };
}

/// The storage of a step whose params, gradients and state may be bfloat16: params and
/// gradients, then state. The arithmetic is float64 for float64 params, float32 otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    F32,
    F64,
    /// float32 params, bfloat16 state
    F32Bf16,
    /// bfloat16 params and state
    Bf16,
    /// bfloat16 params, float32 state
    Bf16F32,
}

static MASKED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MATRIX: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The subclass policy, checked only for arrays that are not exactly `numpy.ndarray`.
fn refused_subclass(func: &str, name: &Name, obj: &Bound<PyAny>) -> Result<()> {
    let py = obj.py();
    let masked = MASKED
        .import(py, "numpy.ma", "MaskedArray")
        .map_err(Error::Python)?;
    if obj.is_instance(masked).map_err(Error::Python)? {
        return Err(Error::Type(format!(
            "{func}: {name} must be a numpy.ndarray, got a numpy.ma.MaskedArray, whose mask \
             gradfast does not follow (pass its data, e.g. np.ma.getdata(a), and re-apply the mask)"
        )));
    }
    let matrix = MATRIX
        .import(py, "numpy", "matrix")
        .map_err(Error::Python)?;
    if obj.is_instance(matrix).map_err(Error::Python)? {
        return Err(Error::Type(format!(
            "{func}: {name} must be a numpy.ndarray, got a numpy.matrix (pass np.asarray(m))"
        )));
    }
    Ok(())
}

/// `obj` as an ndarray, under the subclass policy.
pub(super) fn ndarray<'a, 'py>(
    func: &str,
    name: &Name,
    obj: &'a Bound<'py, PyAny>,
) -> Result<&'a Bound<'py, PyUntypedArray>> {
    let py = obj.py();
    // SAFETY: a type check on a live object.
    let exact = unsafe { PyArray_CheckExact(py, obj.as_ptr()) } != 0;
    let arr = obj.cast::<PyUntypedArray>().map_err(|_| {
        Error::Type(format!(
            "{func}: {name} must be a numpy.ndarray, got {}",
            type_name(obj)
        ))
    })?;
    if !exact {
        refused_subclass(func, name, obj)?;
    }
    Ok(arr)
}

/// float32 or float64 in native byte order. Read off the descriptor: cheaper than
/// comparing with freshly made dtypes, which rust-numpy's typed cast does for every array.
pub(super) fn element_dtype(arr: &Bound<PyUntypedArray>) -> Option<Dtype> {
    let dt = arr.dtype();
    if dt.is_native_byteorder() == Some(false) {
        return None;
    }
    match dt.num() {
        n if n == NPY_TYPES::NPY_FLOAT as i32 => Some(Dtype::F32),
        n if n == NPY_TYPES::NPY_DOUBLE as i32 => Some(Dtype::F64),
        _ => None,
    }
}

/// The dtype of a float32 or float64 array.
pub fn float_dtype(func: &str, name: &Name, obj: &Bound<PyAny>) -> Result<Dtype> {
    let arr = ndarray(func, name, obj)?;
    element_dtype(arr).ok_or_else(|| {
        Error::Type(format!(
            "{func}: {name} must have dtype float32 or float64, got {}",
            arr.dtype()
        ))
    })
}

/// `obj` as an array of `T`, or the error naming what it is.
pub(super) fn typed<'py, T: Elem>(
    func: &str,
    name: &Name,
    obj: &Bound<'py, PyAny>,
) -> Result<Bound<'py, PyArrayDyn<T>>> {
    let arr = ndarray(func, name, obj)?;
    if T::holds(arr) {
        // SAFETY: an ndarray whose dtype is T's, in native byte order, is a PyArrayDyn<T>.
        Ok(unsafe { arr.cast_unchecked::<PyArrayDyn<T>>() }.clone())
    } else {
        Err(T::wrong(func, name, arr))
    }
}
