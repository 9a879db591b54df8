//! `gradfast._core`: the compiled half of gradfast. Registration only, one line per
//! family; the functions live in `bindings/`, validation in `arrays/`, the kernels in the
//! `gradfast-kernels` crate.

mod arrays;
mod bindings;
mod error;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // rust-numpy loads NumPy's C API on first use, running Python code; done here, at import,
    // so that a KeyboardInterrupt during a later call cannot land in it (it would panic).
    numpy::dtype::<f64>(m.py());
    bindings::lock::register(m)?;
    bindings::steps::register(m)?;
    bindings::optim::register(m)?;
    bindings::clip::register(m)?;
    bindings::average::register(m)?;
    bindings::distributed::register(m)?;
    bindings::nn::register(m)?;
    bindings::init::register(m)?;
    bindings::regularization::register(m)?;
    bindings::prune::register(m)?;
    bindings::rnn::register(m)?;
    bindings::linear::register(m)?;
    bindings::threads::register(m)?;
    bindings::probe::register(m)?;
    Ok(())
}
