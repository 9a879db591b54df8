//! Linear least squares: gradient descent and mini-batch SGD, the whole loop in one call,
//! `weights` updated in place.

use gradfast_kernels::linear::{
    gradient_descent as gd_kernel, sgd as sgd_kernel, GradientDescentArgs, Problem, SgdArgs,
};
use gradfast_kernels::runtime::matmul::Gemm;
use pyo3::prelude::*;
use std::time::{Duration, Instant};

use super::{guard, run};
use crate::arrays::checks::shape_str;
use crate::arrays::{float_dtype, Call, Float, Name};
use crate::error::{Error, Result};
use crate::{dispatch, hyper_class};

hyper_class! {
    /// `gradfast.gradient_descent`'s hyper-parameters.
    GradientDescentHyper {
        learning_rate: f64,
        epochs: u64,
    }
}

hyper_class! {
    /// `gradfast.sgd_optimizer`'s hyper-parameters (`seed` already drawn when it was None).
    SgdHyper {
        learning_rate: f64,
        batch_size: usize,
        momentum: f64,
        epochs: u64,
        seed: u64,
    }
}

/// How often a running loop takes the GIL to ask Python whether a signal (Ctrl-C) came:
/// often enough to feel immediate, rarely enough to cost nothing.
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// The `go_on` of a training loop: between epochs, at most every [`SIGNAL_CHECK_INTERVAL`],
/// runs Python's signal handlers; the first error they raise (`KeyboardInterrupt`) stops the
/// loop and is kept for the call to raise.
struct Signals {
    last: Instant,
    raised: Option<PyErr>,
}

impl Signals {
    fn go_on(&mut self) -> bool {
        if self.last.elapsed() < SIGNAL_CHECK_INTERVAL {
            return true;
        }
        self.last = Instant::now();
        match Python::attach(|py| py.check_signals()) {
            Ok(()) => true,
            Err(e) => {
                self.raised = Some(e);
                false
            }
        }
    }
}

/// Checks `X (n, d)`, `y (n,) or (n, k)`, `weights (d,) or (d, k)` and runs `kernel` on them
/// (with the GIL released on large problems); a signal handler's error between epochs stops
/// it, `weights` holding whole epochs, and is raised.
fn with_problem<T: Float + Gemm>(
    py: Python<'_>,
    func: &str,
    [x, y, w]: [&Bound<'_, PyAny>; 3],
    epochs: u64,
    kernel: impl FnOnce(Problem<T>, &mut [T], &mut dyn FnMut() -> bool) + Send,
) -> Result<()> {
    let mut call = Call::new(func);
    let x = call.input::<T>(Name::Arg("X"), x)?;
    let y = call.input::<T>(Name::Arg("y"), y)?;
    let mut w = call.output::<T>(Name::Arg("weights"), w)?;
    let (n, d) = match *x.shape() {
        [n, d] if n > 0 => (n, d),
        _ => {
            return Err(Error::Value(format!(
                "{func}: X must be 2-D (n, d) with n >= 1, got shape {}",
                shape_str(x.shape())
            )))
        }
    };
    let k = match *w.shape() {
        [wd] if wd == d => 1,
        [wd, k] if wd == d => k,
        _ => {
            return Err(Error::Value(format!(
                "{func}: weights must be (d,) or (d, k) with d = {d} (X's columns), got shape {}",
                shape_str(w.shape())
            )))
        }
    };
    let mut want_y = vec![n];
    want_y.extend_from_slice(&w.shape()[1..]);
    crate::arrays::same_shape(func, &Name::Arg("y"), y.shape(), &want_y)?;
    let ok = call.check_overlaps()?;
    let p = Problem {
        x: x.slice(&ok),
        y: y.slice(&ok),
        n,
        d,
        k,
    };
    let w = w.slice(&ok);
    let work = (n * d)
        .saturating_mul(k)
        .saturating_mul(usize::try_from(epochs).unwrap_or(usize::MAX));
    let mut signals = Signals {
        last: Instant::now(),
        raised: None,
    };
    run(py, work, || kernel(p, w, &mut || signals.go_on()));
    signals.raised.map_or(Ok(()), |e| Err(Error::Python(e)))
}

/// `hyper.epochs` steps of full-batch gradient descent on `weights`, in place.
#[pyfunction]
#[pyo3(signature = (func, x, y, weights, hyper))]
pub fn gradient_descent(
    py: Python<'_>,
    func: &str,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    weights: &Bound<'_, PyAny>,
    hyper: &Bound<'_, GradientDescentHyper>,
) -> PyResult<()> {
    guard(func, || {
        let h = *hyper.get();
        fn typed<T: Float + Gemm>(
            py: Python<'_>,
            func: &str,
            a: [&Bound<'_, PyAny>; 3],
            h: GradientDescentHyper,
        ) -> Result<()> {
            let args = GradientDescentArgs {
                learning_rate: h.learning_rate,
                epochs: h.epochs,
            };
            with_problem::<T>(py, func, a, h.epochs, |p, w, mut go_on| {
                gd_kernel(p, w, &args, &mut go_on)
            })
        }
        let dtype = float_dtype(func, &Name::Arg("weights"), weights)?;
        Ok(dispatch!(dtype => typed(py, func, [x, y, weights], h))?)
    })
}

/// Mini-batch SGD with momentum on `weights`, in place.
#[pyfunction]
#[pyo3(signature = (func, x, y, weights, hyper))]
pub fn sgd_optimizer(
    py: Python<'_>,
    func: &str,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    weights: &Bound<'_, PyAny>,
    hyper: &Bound<'_, SgdHyper>,
) -> PyResult<()> {
    guard(func, || {
        let h = *hyper.get();
        if h.batch_size == 0 || !(0.0..1.0).contains(&h.momentum) {
            return Err(Error::Value(format!(
                "{func}: hyper-parameters must have batch_size >= 1 and momentum in [0, 1), got {h:?}"
            ))
            .into());
        }
        fn typed<T: Float + Gemm>(
            py: Python<'_>,
            func: &str,
            a: [&Bound<'_, PyAny>; 3],
            h: SgdHyper,
        ) -> Result<()> {
            let args = SgdArgs {
                learning_rate: h.learning_rate,
                batch_size: h.batch_size,
                momentum: h.momentum,
                epochs: h.epochs,
                seed: h.seed,
            };
            with_problem::<T>(py, func, a, h.epochs, |p, w, mut go_on| {
                sgd_kernel(p, w, &args, &mut go_on)
            })
        }
        let dtype = float_dtype(func, &Name::Arg("weights"), weights)?;
        Ok(dispatch!(dtype => typed(py, func, [x, y, weights], h))?)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<GradientDescentHyper>()?;
    m.add_class::<SgdHyper>()?;
    m.add_function(wrap_pyfunction!(gradient_descent, m)?)?;
    m.add_function(wrap_pyfunction!(sgd_optimizer, m)?)
}
