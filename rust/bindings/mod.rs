//! The Python-facing functions, one file per kernel family.
//!
//! Every binding has the same shape: read the arguments (dicts through the mapping protocol
//! into owned lists), register every array with an [`arrays::Call`](crate::arrays::Call) and
//! check them all, then release the GIL and run the kernel; its body runs inside [`guard`],
//! so that no panic reaches Python as a `BaseException`.

pub mod average;
pub mod clip;
pub mod distributed;
pub mod init;
pub mod linear;
pub mod lock;
pub mod nn;
pub mod optim;
pub mod probe;
pub mod prune;
pub mod regularization;
pub mod rnn;
pub mod steps;
pub mod threads;

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// Calls shorter than this many elements keep the GIL: releasing it costs more than they do.
const GIL_RELEASE_MIN: usize = 1 << 14;

/// Runs a kernel over `total` elements, without the GIL when it is worth it.
pub fn run<R: Send>(py: Python<'_>, total: usize, kernel: impl FnOnce() -> R + Send) -> R {
    if total >= GIL_RELEASE_MIN {
        py.detach(kernel)
    } else {
        kernel()
    }
}

/// Runs a binding's body, turning a panic (a bug) into a `RuntimeError` that names the
/// function, instead of PyO3's `PanicException`, which `except Exception` does not catch.
pub fn guard<R>(func: &str, body: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(PyRuntimeError::new_err(format!(
            "{func}: internal error in gradfast ({what}); please report it"
        )))
    })
}

/// Declares a frozen Python class holding a kernel's hyper-parameters by name: the Python
/// API builds one, with keyword arguments named as its own attributes, whenever a value
/// changes, and the binding reads the fields by name.
#[macro_export]
macro_rules! hyper_class {
    ($(#[$m:meta])* $name:ident { $($field:ident: $ty:ty),+ $(,)? }) => {
        $(#[$m])*
        #[pyo3::pyclass(frozen, module = "gradfast._core")]
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            $(#[pyo3(get)] pub $field: $ty),+
        }

        #[pyo3::pymethods]
        impl $name {
            #[new]
            #[pyo3(signature = (*, $($field),+))]
            #[allow(clippy::too_many_arguments)] // keyword-only: each named at the call
            fn new($($field: $ty),+) -> Self {
                $name { $($field),+ }
            }

            fn __repr__(&self) -> String {
                let fields: Vec<String> = vec![$(format!("{}={:?}", stringify!($field), self.$field)),+];
                format!("{}({})", stringify!($name), fields.join(", "))
            }
        }
    };
}
