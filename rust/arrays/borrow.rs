//! Registering the arrays of a call and borrowing them as slices.
//!
//! A call registers every array with a [`Call`] (dtype, layout, writeability, alignment are
//! checked then), and only after [`Call::check_overlaps`] has found no output sharing memory
//! with another array of the call can it take slices: the returned [`Checked`] token is the
//! proof the slice accessors ask for. The overlap test is the reference's (`np.byte_bounds`
//! intervals, as `np.may_share_memory`), done by a sort and sweep, so both implementations
//! accept and refuse the same calls. It replaces rust-numpy's process-wide borrow registry,
//! which cost a quarter of a small update and only knows of other rust-numpy borrows; like
//! NumPy's own ufuncs, gradfast does not lock arrays against writes from other threads.

use numpy::npyffi::{_PyArray_GET_ITEM_DATA, NPY_ARRAY_ALIGNED, NPY_ARRAY_WRITEABLE, NPY_TYPES};
use numpy::{
    Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use std::cell::OnceCell;
use std::rc::Rc;

use super::dtype::{ndarray, typed, Elem};
use super::fresh;
use super::Name;
use crate::error::{Error, Result};

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
pub struct Out<'py, T: Elem> {
    array: Bound<'py, PyArrayDyn<T>>,
}

impl<'py, T: Elem> Out<'py, T> {
    /// A new, uninitialized C-ordered array for the kernel to fill: no other array of a
    /// call can overlap it, so it needs no registering.
    pub fn new(py: Python<'py>, shape: &[usize]) -> Result<Self> {
        // SAFETY: the kernel writes every element before the array reaches Python.
        let array = unsafe { fresh::empty::<T>(py, shape) }?;
        Ok(Out { array })
    }

    pub fn array(&self) -> &Bound<'py, PyArrayDyn<T>> {
        &self.array
    }

    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    pub fn slice(&mut self, ok: &Checked) -> &mut [T] {
        self.shape_and_slice(ok).1
    }

    /// The shape (held by the array object) with the slice of the data.
    pub fn shape_and_slice(&mut self, _: &Checked) -> (&[usize], &mut [T]) {
        let len = self.array.len();
        let data = if len == 0 {
            &mut []
        } else {
            // SAFETY: the array is C-contiguous, aligned and writeable (checked at
            // registration), kept alive by `self.array`, and `Checked` proves that no other
            // array of the call overlaps it; `&mut self` gives one slice at a time.
            unsafe { std::slice::from_raw_parts_mut(self.array.data(), len) }
        };
        (self.array.shape(), data)
    }
}

/// A read-only input: the argument itself when C-contiguous and aligned, else NumPy's
/// C-ordered copy of it, made by [`Call::check_overlaps`], once every shape has been checked
/// on the argument itself (a broadcast view of the wrong shape is a `ValueError`, not a copy
/// of a TiB).
pub struct In<'py, T: Elem> {
    arg: Bound<'py, PyArrayDyn<T>>,
    copy: Option<Rc<OnceCell<Bound<'py, PyArrayDyn<T>>>>>,
}

impl<'py, T: Elem> In<'py, T> {
    /// The array the kernel reads: the argument, or its copy (once the call is checked).
    pub fn array(&self) -> &Bound<'py, PyArrayDyn<T>> {
        self.copy
            .as_ref()
            .and_then(|c| c.get())
            .unwrap_or(&self.arg)
    }

    pub fn shape(&self) -> &[usize] {
        self.arg.shape()
    }

    pub fn slice(&self, _: &Checked) -> &[T] {
        let array = self.array();
        if array.len() == 0 {
            return &[];
        }
        // SAFETY: contiguous and aligned (checked, or copied so before `Checked` was made),
        // alive through `self`, and `Checked` proves that no output overlaps it.
        unsafe { std::slice::from_raw_parts(array.data(), array.len()) }
    }
}

/// An input whose copy [`Call::check_overlaps`] makes: the argument and where the copy goes.
/// Type-erased, so that one call can hold inputs of several element types.
trait Pending<'py> {
    fn copy(&self, func: &str) -> Result<()>;
}

struct PendingCopy<'py, T: Elem> {
    arg: Bound<'py, PyArrayDyn<T>>,
    name: Name<'py>,
    into: Rc<OnceCell<Bound<'py, PyArrayDyn<T>>>>,
}

impl<'py, T: Elem> Pending<'py> for PendingCopy<'py, T> {
    fn copy(&self, func: &str) -> Result<()> {
        let c = c_copy(func, &self.name, &self.arg)?;
        // the cell is filled once, here: `set` cannot fail
        let _ = self.into.set(c);
        Ok(())
    }
}

/// A C-contiguous, aligned uint16 array: raw 16-bit words such as bfloat16 bits.
pub struct Words<'py> {
    array: Bound<'py, PyArrayDyn<u16>>,
}

impl Words<'_> {
    pub fn len(&self) -> usize {
        self.array.len()
    }

    pub fn slice(&self, _: &Checked) -> &[u16] {
        if self.array.len() == 0 {
            return &[];
        }
        // SAFETY: contiguous and aligned (checked at registration), alive through
        // `self.array`, and `Checked` proves that no output overlaps it.
        unsafe { std::slice::from_raw_parts(self.array.data(), self.array.len()) }
    }

    pub fn slice_mut(&mut self, _: &Checked) -> &mut [u16] {
        if self.array.len() == 0 {
            return &mut [];
        }
        // SAFETY: as for `slice`, and writeable (checked at registration when `writes`);
        // `&mut self` gives one slice at a time.
        unsafe { std::slice::from_raw_parts_mut(self.array.data(), self.array.len()) }
    }
}

fn usable(arr: &Bound<PyUntypedArray>) -> bool {
    arr.is_c_contiguous() && flags(arr) & NPY_ARRAY_ALIGNED != 0
}

/// The arrays of one call, registered for validation before any is written.
pub struct Call<'a, 'py> {
    pub func: &'a str,
    spans: Vec<Span<'py>>,
    copies: Vec<Box<dyn Pending<'py> + 'py>>,
}

impl<'a, 'py> Call<'a, 'py> {
    pub fn new(func: &'a str) -> Self {
        Call {
            func,
            spans: Vec::new(),
            copies: Vec::new(),
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
    pub fn output<T: Elem>(
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
    /// as in the reference, even when the kernel reads a copy; the copy, if one is needed,
    /// is made only once the whole call has been checked.
    pub fn input<T: Elem>(
        &mut self,
        name: Name<'py>,
        obj: &Bound<'py, PyAny>,
    ) -> Result<In<'py, T>> {
        let arg = typed::<T>(self.func, &name, obj)?;
        self.register(&arg, false, name.clone());
        if usable(arg.as_untyped()) {
            return Ok(In { arg, copy: None });
        }
        let into = Rc::new(OnceCell::new());
        self.copies.push(Box::new(PendingCopy {
            arg: arg.clone(),
            name,
            into: into.clone(),
        }));
        Ok(In {
            arg,
            copy: Some(into),
        })
    }

    /// A uint16 array, written when `writes`: C-contiguous and aligned (never copied).
    pub fn words(
        &mut self,
        name: Name<'py>,
        obj: &Bound<'py, PyAny>,
        writes: bool,
    ) -> Result<Words<'py>> {
        let func = self.func;
        let arr = ndarray(func, &name, obj)?;
        let dt = arr.dtype();
        if dt.num() != NPY_TYPES::NPY_USHORT as i32 || dt.is_native_byteorder() == Some(false) {
            return Err(Error::Type(format!(
                "{func}: {name} must have dtype uint16, got {dt}"
            )));
        }
        if !usable(arr) {
            return Err(Error::Value(format!(
                "{func}: {name} must be C-contiguous and aligned (use np.ascontiguousarray)"
            )));
        }
        if writes && flags(arr) & NPY_ARRAY_WRITEABLE == 0 {
            return Err(Error::Value(format!(
                "{func}: {name} must be writeable, got a read-only array"
            )));
        }
        // SAFETY: an ndarray of native uint16 is a PyArrayDyn<u16>.
        let array = unsafe { arr.cast_unchecked::<PyArrayDyn<u16>>() }.clone();
        self.register(&array, writes, name);
        Ok(Words { array })
    }

    /// Refuses the call if an output shares memory with any other array of it; else makes
    /// the copies of the inputs that need one (every shape has been checked by now).
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
        for pending in &self.copies {
            pending.copy(self.func)?;
        }
        Ok(Checked(()))
    }
}

static NP_ARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// NumPy's own C-ordered, aligned copy of `array` as a plain ndarray (`np.array(a,
/// order="C", copy=True)`, which reads the buffer, never the object's methods), checked
/// before its memory is trusted.
pub fn c_copy<'py, T: Elem>(
    func: &str,
    name: &Name,
    array: &Bound<'py, PyArrayDyn<T>>,
) -> Result<Bound<'py, PyArrayDyn<T>>> {
    let py = array.py();
    let np_array = NP_ARRAY
        .get_or_try_init(py, || {
            py.import("numpy")?.getattr("array").map(Bound::unbind)
        })
        .map_err(Error::Python)?
        .bind(py);
    let kwargs = PyDict::new(py);
    let set = |k: &Bound<'py, pyo3::types::PyString>, v: Bound<'py, PyAny>| kwargs.set_item(k, v);
    set(intern!(py, "dtype"), array.dtype().into_any()).map_err(Error::Python)?;
    set(intern!(py, "order"), intern!(py, "C").clone().into_any()).map_err(Error::Python)?;
    set(
        intern!(py, "copy"),
        pyo3::types::PyBool::new(py, true).to_owned().into_any(),
    )
    .map_err(Error::Python)?;
    let copy = np_array
        .call((array,), Some(&kwargs))
        .map_err(Error::Python)?;
    let bad = || {
        Error::Value(format!(
            "{func}: {name} must copy to a C-ordered array of its own shape, got an array type \
             whose copy is not (pass np.asarray(a))"
        ))
    };
    let c = copy.cast::<PyUntypedArray>().map_err(|_| bad())?;
    if !T::holds(c) || !usable(c) || c.shape() != array.shape() {
        return Err(bad());
    }
    // SAFETY: checked just above: an ndarray of T's dtype in native order.
    Ok(unsafe { c.cast_unchecked::<PyArrayDyn<T>>() }.clone())
}
