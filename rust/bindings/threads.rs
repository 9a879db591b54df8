//! `set_num_threads` and `get_num_threads`.

use gradfast_kernels::runtime::pool::{self, MAX_THREADS};
use pyo3::prelude::*;

use crate::error::Error;

/// Sets the number of threads gradfast kernels use, from 1 to `MAX_THREADS`.
#[pyfunction]
pub fn set_num_threads(n: &Bound<'_, PyAny>) -> PyResult<()> {
    let bad = || {
        Error::Value(format!(
            "set_num_threads: n must be an int in [1, {MAX_THREADS}], got {}",
            crate::arrays::repr(n)
        ))
    };
    if n.is_instance_of::<pyo3::types::PyBool>() {
        return Err(Error::Type(format!(
            "set_num_threads: n must be an int, got {}",
            crate::arrays::type_name(n)
        ))
        .into());
    }
    let n: i128 = n.extract().map_err(|_| {
        if n.is_instance_of::<pyo3::types::PyInt>() {
            bad()
        } else {
            Error::Type(format!(
                "set_num_threads: n must be an int, got {}",
                crate::arrays::type_name(n)
            ))
        }
    })?;
    match usize::try_from(n) {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => {
            pool::set_num_threads(n);
            Ok(())
        }
        _ => Err(bad().into()),
    }
}

/// Sets the memory traffic (bytes) from which a call uses the thread pool. Private: the tests
/// lower it to run the threaded paths on small inputs.
#[pyfunction]
pub fn _set_parallel_min_bytes(bytes: usize) {
    pool::set_parallel_min_bytes(bytes);
}

/// The number of threads gradfast kernels use.
#[pyfunction]
pub fn get_num_threads() -> usize {
    pool::num_threads()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MAX_THREADS", MAX_THREADS)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_set_parallel_min_bytes, m)?)?;
    m.add("PARALLEL_MIN_BYTES", pool::PARALLEL_MIN_BYTES)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)
}
