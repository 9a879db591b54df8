//! `StepState`: what an optimizer's step commits, and the lock that serializes its steps.
//!
//! It holds the per-key state dicts, the count of steps taken and one more object an
//! optimizer may commit with them (`LayerAdaptiveLR`'s per-layer counts). A step binding takes
//! the lock, reads the state and count, runs the kernel and sets the new state and count before
//! releasing it: no Python code runs between the kernel and the commit, so a
//! `KeyboardInterrupt` cannot separate the arrays from the counter, and two threads cannot take
//! the same step. Python reads and sets the same values through its properties, holding the
//! lock with `with`.

use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::lock::{Held, StepLock};

/// The largest step count a state may hold (far beyond any run; `beta**step` is 0 long before).
pub const MAX_STEP: u64 = 1 << 62;

struct Committed {
    state: Py<PyAny>,
    step: u64,
    extra: Py<PyAny>,
}

#[pyclass(frozen, module = "gradfast._core")]
pub struct StepState {
    lock: StepLock,
    committed: Mutex<Committed>,
}

/// The values of a [`StepState`] read under its lock, to be committed by [`Taking::commit`].
pub struct Taking<'l, 'py> {
    owner: &'l StepState,
    pub state: Bound<'py, PyAny>,
    pub step: u64,
    pub extra: Bound<'py, PyAny>,
    _held: Held<'l>,
}

impl StepState {
    fn values(&self) -> MutexGuard<'_, Committed> {
        self.committed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the lock (waiting without the GIL) and reads the committed values.
    pub fn take<'l, 'py>(&'l self, py: Python<'py>) -> Taking<'l, 'py> {
        let held = self.lock.hold(py);
        let c = self.values();
        Taking {
            owner: self,
            state: c.state.bind(py).clone(),
            step: c.step,
            extra: c.extra.bind(py).clone(),
            _held: held,
        }
    }
}

impl Taking<'_, '_> {
    /// Sets the state, step count and extra object, then releases the lock.
    pub fn commit(self) {
        let mut c = self.owner.values();
        c.state = self.state.clone().unbind();
        c.step = self.step;
        c.extra = self.extra.clone().unbind();
    }
}

impl StepState {
    /// Commits a step whose caller holds the lock (taken from Python with `with`): the state,
    /// the step count when the call counts one, and the extra object.
    pub fn commit_held(&self, state: &Bound<PyAny>, step: Option<u64>, extra: &Bound<PyAny>) {
        let mut c = self.values();
        c.state = state.clone().unbind();
        if let Some(step) = step {
            c.step = step;
        }
        c.extra = extra.clone().unbind();
    }
}

fn checked_step(step: u64) -> PyResult<u64> {
    if step > MAX_STEP {
        return Err(PyValueError::new_err(format!(
            "StepState: step must be an int in [0, 2**62], got {step}"
        )));
    }
    Ok(step)
}

#[pymethods]
impl StepState {
    #[new]
    #[pyo3(signature = (state, step, extra=None))]
    fn new(
        py: Python<'_>,
        state: Py<PyAny>,
        step: u64,
        extra: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        Ok(StepState {
            lock: StepLock::default(),
            committed: Mutex::new(Committed {
                state,
                step: checked_step(step)?,
                extra: extra.unwrap_or_else(|| py.None()),
            }),
        })
    }

    /// The per-key state dicts.
    #[getter]
    fn state(&self, py: Python<'_>) -> Py<PyAny> {
        self.values().state.clone_ref(py)
    }

    #[setter]
    fn set_state(&self, state: Py<PyAny>) {
        self.values().state = state;
    }

    /// The number of steps taken.
    #[getter]
    fn step(&self) -> u64 {
        self.values().step
    }

    #[setter]
    fn set_step(&self, step: u64) -> PyResult<()> {
        self.values().step = checked_step(step)?;
        Ok(())
    }

    /// One more object committed with every step (None unless the optimizer uses it).
    #[getter]
    fn extra(&self, py: Python<'_>) -> Py<PyAny> {
        self.values().extra.clone_ref(py)
    }

    #[setter]
    fn set_extra(&self, extra: Py<PyAny>) {
        self.values().extra = extra;
    }

    fn __enter__(&self, py: Python<'_>) {
        std::mem::forget(self.lock.hold(py));
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        self.lock.release();
    }

    /// Whether some thread holds the lock.
    fn locked(&self) -> bool {
        self.lock.is_held()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<StepState>()
}
