//! The Python-facing functions, one file per kernel family.

pub mod clip;
pub mod optim;
pub mod probe;
pub mod threads;

use pyo3::Python;

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
