//! The memory-bandwidth measure used by `gradfast bench` for its roofline.

use gradfast_kernels::runtime::probe::memory_bandwidth;
use pyo3::prelude::*;

/// `(copy, triad)` in bytes per second: the best of `repeat` passes of each over arrays of
/// `elements` float64 values, write-allocate traffic counted.
#[pyfunction]
pub fn _memory_bandwidth(py: Python<'_>, elements: usize, repeat: usize) -> (f64, f64) {
    let bw = py.detach(|| memory_bandwidth(elements, repeat));
    (bw.copy, bw.triad)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_memory_bandwidth, m)?)
}
