//! The one error type of the bindings, raised in Python as `TypeError` or `ValueError`.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::PyErr;

#[derive(Debug)]
pub enum Error {
    /// A wrong type or dtype.
    Type(String),
    /// A wrong shape, layout, aliasing, key or hyper-parameter.
    Value(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Type(msg) => PyTypeError::new_err(msg),
            Error::Value(msg) => PyValueError::new_err(msg),
        }
    }
}

/// Propagates a Python exception raised while reading an argument (a failing `__hash__` of
/// a dict key, say) as it is.
pub fn python(e: PyErr) -> Error {
    Error::Value(e.to_string())
}
