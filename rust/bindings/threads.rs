//! `set_num_threads` and `get_num_threads`.

use gradfast_kernels::threads;
use pyo3::prelude::*;

use crate::error::Error;

/// Sets the number of threads gradfast kernels use (at least 1).
#[pyfunction]
pub fn set_num_threads(n: i64) -> PyResult<()> {
    if n < 1 {
        return Err(
            Error::Value(format!("set_num_threads: n must be an int >= 1, got {n}")).into(),
        );
    }
    threads::set_num_threads(usize::try_from(n).unwrap_or(usize::MAX));
    Ok(())
}

/// The number of threads gradfast kernels use.
#[pyfunction]
pub fn get_num_threads() -> usize {
    threads::num_threads()
}
