//! `set_num_threads` and `get_num_threads`.

use gradfast_kernels::pool;
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
    pool::set_num_threads(usize::try_from(n).unwrap_or(usize::MAX));
    Ok(())
}

/// The number of threads gradfast kernels use.
#[pyfunction]
pub fn get_num_threads() -> usize {
    pool::num_threads()
}
