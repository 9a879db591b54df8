//! Validation and borrowing of the arrays of a call, with gradfast's own messages:
//! `"{function}: {argument} must be {expected}, got {actual}"`.
//!
//! - [`dtype`]: which arrays a kernel takes (float32/float64 ndarrays, the subclass policy)
//!   and the one dispatch of the bindings onto typed code (`dispatch!`: a float dtype, or a
//!   storage layout with bfloat16);
//! - [`borrow`]: registering the arrays of a call, copying inputs that need it (by NumPy),
//!   the overlap sweep, and slices only after it;
//! - [`checks`]: shapes, and dict arguments read through the mapping protocol;
//! - [`fresh`]: new arrays for results, large ones on recycled memory.

pub mod borrow;
pub mod checks;
pub mod dtype;
pub mod fresh;

use std::fmt;

use pyo3::prelude::*;

pub use borrow::{c_copy, Call, In, Out};
pub use checks::{same_shape, Items, Mapping};
pub use dtype::{float_dtype, storage_dtype, Dtype, Elem, Float, Layout, MaskByte, Storage};

/// The name of an argument in a message: `params`, `params['w']` or `state['w']['exp_avg']`.
/// Formatted only when a message needs it.
#[derive(Clone)]
pub enum Name<'py> {
    Arg(&'static str),
    Item(&'static str, Bound<'py, PyAny>),
    Slot(&'static str, Bound<'py, PyAny>, &'static str),
}

pub(crate) fn repr(key: &Bound<PyAny>) -> String {
    key.repr()
        .map_or_else(|_| "?".to_string(), |r| r.to_string())
}

pub(crate) fn type_name(obj: &Bound<PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string())
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
