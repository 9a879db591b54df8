//! `gradfast._core`: the compiled half of gradfast. Registration only; the functions live in
//! `bindings/`, validation in `arrays.rs`, the kernels in the `gradfast-kernels` crate.

mod arrays;
mod bindings;
mod error;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    use bindings::*;
    m.add_function(wrap_pyfunction!(optim::adam, m)?)?;
    m.add_function(wrap_pyfunction!(optim::adam_array, m)?)?;
    m.add_function(wrap_pyfunction!(optim::momentum, m)?)?;
    m.add_function(wrap_pyfunction!(clip::clip_grad_norm, m)?)?;
    m.add_function(wrap_pyfunction!(threads::set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(threads::get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(probe::bandwidth_probe, m)?)?;
    Ok(())
}
