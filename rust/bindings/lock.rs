//! `StepLock`: the lock that serializes the updates of one optimizer object.
//!
//! A binding holds it from reading the optimizer's step to committing the next one, so two
//! threads updating one optimizer get the result of two serial updates. Taking it costs one
//! atomic operation when it is free, and releasing it wakes a thread only when one waits (a
//! condition variable's wake is a system call even with no waiter); a caller that must wait
//! does so without the GIL (the holder needs the GIL to finish). Python code uses it as a
//! context manager.

use std::sync::{Condvar, Mutex, MutexGuard};

use pyo3::prelude::*;

#[pyclass(frozen, module = "gradfast._core")]
#[derive(Default)]
pub struct StepLock {
    state: Mutex<LockState>,
    freed: Condvar,
}

#[derive(Default)]
struct LockState {
    held: bool,
    /// threads waiting on `freed` for the lock
    waiting: usize,
}

/// Proof of holding a [`StepLock`]; releases it when dropped.
pub struct Held<'a>(&'a StepLock);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl StepLock {
    fn state(&self) -> MutexGuard<'_, LockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the lock, waiting without the GIL while another thread holds it.
    pub fn hold(&self, py: Python<'_>) -> Held<'_> {
        {
            let mut state = self.state();
            if !state.held {
                state.held = true;
                return Held(self);
            }
        }
        py.detach(|| {
            let mut state = self.state();
            state.waiting += 1;
            while state.held {
                state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.waiting -= 1;
            state.held = true;
        });
        Held(self)
    }

    pub fn is_held(&self) -> bool {
        self.state().held
    }

    pub fn release(&self) {
        let mut state = self.state();
        state.held = false;
        if state.waiting > 0 {
            self.freed.notify_one();
        }
    }
}

#[pymethods]
impl StepLock {
    #[new]
    fn new() -> Self {
        StepLock::default()
    }

    fn __enter__(&self, py: Python<'_>) {
        std::mem::forget(self.hold(py));
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        self.release();
    }

    /// Whether some thread holds the lock.
    fn locked(&self) -> bool {
        self.is_held()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<StepLock>()
}
