//! The one error type of the bindings, raised in Python as `TypeError` or `ValueError`; a
//! Python exception raised while reading an argument (a failing `__hash__` of a dict key,
//! say) passes through as it is.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::PyErr;

#[derive(Debug)]
pub enum Error {
    /// A wrong type or dtype.
    Type(String),
    /// A wrong shape, layout, aliasing, key or hyper-parameter.
    Value(String),
    /// An exception Python raised.
    Python(PyErr),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Type(msg) => PyTypeError::new_err(msg),
            Error::Value(msg) => PyValueError::new_err(msg),
            Error::Python(e) => e,
        }
    }
}
