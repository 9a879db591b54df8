//! Validation and borrowing of the arrays of a call, with gradfast's own messages:
//! `"{function}: {argument} must be {expected}, got {actual}"`.
//!
//! A call registers every array with a [`Call`] (dtype, layout, writeability, alignment are
//! checked then), and only after [`Call::check_overlaps`] has found no output sharing memory
//! with another array of the call can it take slices: the returned [`Checked`] token is the
//! proof the slice accessors ask for. The overlap test is the reference's (`np.byte_bounds`
//! intervals, as `np.may_share_memory`), done by a sort and sweep, so both implementations
//! accept and refuse the same calls. It replaces rust-numpy's process-wide borrow registry,
//! which cost a quarter of a small update and only knows of other rust-numpy borrows; like
//! NumPy's own ufuncs, gradfast does not lock arrays against writes from other threads.

use std::fmt;

use numpy::npyffi::{_PyArray_GET_ITEM_DATA, NPY_ARRAY_ALIGNED, NPY_ARRAY_WRITEABLE, NPY_TYPES};
use numpy::{
    dtype, Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{python, Error, Result};

/// The name of an argument in a message: `params`, `params['w']` or `state['w']['exp_avg']`.
/// Formatted only when a message needs it.
#[derive(Clone)]
pub enum Name<'py> {
    Arg(&'static str),
    Item(&'static str, Bound<'py, PyAny>),
    Slot(&'static str, Bound<'py, PyAny>, &'static str),
}

fn repr(key: &Bound<PyAny>) -> String {
    key.repr()
        .map_or_else(|_| "?".to_string(), |r| r.to_string())
}

impl fmt::Display for Name<'_> {
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

/// An element type the kernels take, with its dtype.
pub trait Float: Element + Copy {
    const DTYPE: Dtype;
}

impl Float for f32 {
    const DTYPE: Dtype = Dtype::F32;
}

impl Float for f64 {
    const DTYPE: Dtype = Dtype::F64;
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

/// float32 or float64 in native byte order. Read off the descriptor: cheaper than
/// comparing with freshly made dtypes, which rust-numpy's typed cast does for every array.
fn element_dtype(arr: &Bound<PyUntypedArray>) -> Option<Dtype> {
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

fn typed<'py, T: Float>(
    func: &str,
    name: &Name,
    obj: &Bound<'py, PyAny>,
) -> Result<Bound<'py, PyArrayDyn<T>>> {
    let arr = ndarray(func, name, obj)?;
    match element_dtype(arr) {
        // SAFETY: an ndarray whose dtype is T's, in native byte order, is a PyArrayDyn<T>.
        Some(d) if d == T::DTYPE => Ok(unsafe { arr.cast_unchecked::<PyArrayDyn<T>>() }.clone()),
        Some(_) => Err(Error::Type(format!(
            "{func}: {name} must have dtype {} like the other arrays of the call, got {}",
            dtype::<T>(obj.py()),
            arr.dtype()
        ))),
        None => Err(Error::Type(format!(
            "{func}: {name} must have dtype float32 or float64, got {}",
            arr.dtype()
        ))),
    }
}

fn flags(arr: &Bound<PyUntypedArray>) -> i32 {
    // SAFETY: `arr` is a live ndarray; its flags field is plain data read under the GIL.
    unsafe { (*_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).flags }
}

/// The bytes an array may touch, as `np.byte_bounds` gives them.
fn byte_bounds<T: Element>(arr: &Bound<PyArrayDyn<T>>) -> (usize, usize) {
    let start = arr.data() as usize;
    let (mut lo, mut hi) = (start, start + std::mem::size_of::<T>());
    for (&n, &s) in arr.shape().iter().zip(arr.strides()) {
        let reach = s.unsigned_abs() * (n - 1);
        if s < 0 {
            lo -= reach;
        } else {
            hi += reach;
        }
    }
    (lo, hi)
}

/// The memory of one registered array, for the overlap check.
struct Span<'py> {
    lo: usize,
    hi: usize,
    writes: bool,
    name: Name<'py>,
}

/// Proof that the arrays of a call do not overlap where one of them is written.
pub struct Checked(());

/// An output array: C-contiguous, writeable, aligned.
pub struct Out<'py, T: Float> {
    array: Bound<'py, PyArrayDyn<T>>,
}

impl<T: Float> Out<'_, T> {
    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    pub fn slice(&mut self, _: &Checked) -> &mut [T] {
        if self.array.len() == 0 {
            return &mut [];
        }
        // SAFETY: the array is C-contiguous, aligned and writeable (checked at registration),
        // kept alive by `self.array`, and `Checked` proves that no other array of the call
        // overlaps it; `&mut self` gives one slice at a time.
        unsafe { std::slice::from_raw_parts_mut(self.array.data(), self.array.len()) }
    }
}

/// A read-only input: the argument itself when C-contiguous and aligned, else NumPy's
/// C-ordered copy of it.
pub struct In<'py, T: Float> {
    array: Bound<'py, PyArrayDyn<T>>,
}

impl<T: Float> In<'_, T> {
    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    pub fn slice(&self, _: &Checked) -> &[T] {
        if self.array.len() == 0 {
            return &[];
        }
        // SAFETY: contiguous and aligned (checked or copied so), alive through `self.array`,
        // and `Checked` proves that no output overlaps it.
        unsafe { std::slice::from_raw_parts(self.array.data(), self.array.len()) }
    }
}

fn usable(arr: &Bound<PyUntypedArray>) -> bool {
    arr.is_c_contiguous() && flags(arr) & NPY_ARRAY_ALIGNED != 0
}

/// The arrays of one call, registered for validation before any is written.
pub struct Call<'a, 'py> {
    pub func: &'a str,
    spans: Vec<Span<'py>>,
}

impl<'a, 'py> Call<'a, 'py> {
    pub fn new(func: &'a str) -> Self {
        Call {
            func,
            spans: Vec::new(),
        }
    }

    fn register<T: Element>(
        &mut self,
        arr: &Bound<'py, PyArrayDyn<T>>,
        writes: bool,
        name: Name<'py>,
    ) {
        if arr.len() > 0 {
            let (lo, hi) = byte_bounds(arr);
            self.spans.push(Span {
                lo,
                hi,
                writes,
                name,
            });
        }
    }

    /// An output of element type `T`.
    pub fn output<T: Float>(
        &mut self,
        name: Name<'py>,
        obj: &Bound<'py, PyAny>,
    ) -> Result<Out<'py, T>> {
        let func = self.func;
        let array = typed::<T>(func, &name, obj)?;
        let untyped = array.as_untyped();
        if !untyped.is_c_contiguous() {
            return Err(Error::Value(format!(
                "{func}: {name} must be C-contiguous, got a non-contiguous array (use np.ascontiguousarray)"
            )));
        }
        let f = flags(untyped);
        if f & NPY_ARRAY_WRITEABLE == 0 {
            return Err(Error::Value(format!(
                "{func}: {name} must be writeable, got a read-only array"
            )));
        }
        if f & NPY_ARRAY_ALIGNED == 0 {
            return Err(Error::Value(format!(
                "{func}: {name} must be aligned, got an unaligned array (use np.require(a, requirements='A'))"
            )));
        }
        self.register(&array, true, name);
        Ok(Out { array })
    }

    /// A read-only input of element type `T`. Its own memory counts for the overlap check,
    /// as in the reference, even when the kernel reads a copy.
    pub fn input<T: Float>(
        &mut self,
        name: Name<'py>,
        obj: &Bound<'py, PyAny>,
    ) -> Result<In<'py, T>> {
        let array = typed::<T>(self.func, &name, obj)?;
        self.register(&array, false, name);
        if usable(array.as_untyped()) {
            return Ok(In { array });
        }
        let copy = array
            .call_method0(intern!(obj.py(), "copy"))
            .map_err(python)?;
        // SAFETY: `ndarray.copy()` of an array of dtype T is a C-ordered, aligned array of T.
        Ok(In {
            array: unsafe { copy.cast_unchecked::<PyArrayDyn<T>>() }.clone(),
        })
    }

    /// Refuses the call if an output shares memory with any other array of it.
    pub fn check_overlaps(mut self) -> Result<Checked> {
        self.spans.sort_unstable_by_key(|s| s.lo);
        let mut active: Vec<usize> = Vec::new();
        for i in 0..self.spans.len() {
            let s = &self.spans[i];
            active.retain(|&j| self.spans[j].hi > s.lo);
            if let Some(&j) = active.iter().find(|&&j| s.writes || self.spans[j].writes) {
                let (w, o) = if s.writes {
                    (s, &self.spans[j])
                } else {
                    (&self.spans[j], s)
                };
                return Err(Error::Value(format!(
                    "{}: {} must not share memory with {}, got overlapping arrays",
                    self.func, w.name, o.name
                )));
            }
            active.push(i);
        }
        Ok(Checked(()))
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
    // Iterating the dict itself: `keys()` would build a list on every call.
    for (key, _) in reference.iter() {
        if !d.contains(&key).map_err(python)? {
            return Err(Error::Value(format!(
                "{func}: {name} must have key {} like {ref_name}, got it missing",
                repr(&key)
            )));
        }
    }
    if d.len() != reference.len() {
        for (key, _) in d.iter() {
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
