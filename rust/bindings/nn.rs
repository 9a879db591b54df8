//! BatchNorm and Dropout: one call per forward or backward. What a layer keeps between calls
//! lives in a state object the layer owns (`BatchNormState`, `DropoutState`), with the lock
//! that serializes its calls: the binding takes the lock, validates everything, runs the
//! kernel without the GIL and commits into the state (BatchNorm's last forward and gradients,
//! Dropout's mask and call count) before returning, so that an interrupt cannot leave the
//! layer half updated and two threads using one layer get the result of two calls in turn.
//! The layer's arrays come in as arguments; Rust reads and sets no attribute of the layer.

use std::sync::{Arc, Mutex, MutexGuard};

use gradfast_kernels::nn::batchnorm::{self, BatchNormArgs, Grads, Layout, Params, Saved};
use gradfast_kernels::nn::dropout::{self, DropoutArgs};
use numpy::{
    PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::intern;
use pyo3::prelude::*;

use super::lock::StepLock;
use super::{guard, run};
use crate::arrays::checks::shape_str;
use crate::arrays::{c_copy, float_dtype, fresh, same_shape, Call, Dtype, Float, In, Name, Out};
use crate::error::{Error, Result};
use crate::{dispatch, hyper_class};

hyper_class! {
    /// `gradfast.BatchNorm`'s fixed size and dtype, and its hyper-parameters.
    BatchNormHyper {
        num_features: usize,
        eps: f64,
        momentum: f64,
        dtype: Dtype,
    }
}

hyper_class! {
    /// `gradfast.Dropout`'s hyper-parameter.
    DropoutHyper {
        drop_rate: f64,
    }
}

/// The values of a layer state, read and set under its mutex.
fn values<C>(m: &Mutex<C>) -> MutexGuard<'_, C> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What BatchNorm's backward needs of the last forward.
struct LastForward {
    saved: Saved,
    layout: Layout,
    /// The `x` the forward read (the caller's array, or NumPy's C-ordered copy of it).
    x: Py<PyAny>,
    dtype: Dtype,
}

struct BatchNormCommitted {
    /// Shared, so that a backward reads it without holding the mutex while the kernel runs.
    last: Option<Arc<LastForward>>,
    grad_gamma: Py<PyAny>,
    grad_beta: Py<PyAny>,
}

/// What a `gradfast.BatchNorm` keeps between calls: the last forward (for backward, not
/// visible from Python), the gradients of the last backward, and the lock of its calls.
#[pyclass(frozen, module = "gradfast._core")]
pub struct BatchNormState {
    lock: StepLock,
    committed: Mutex<BatchNormCommitted>,
}

#[pymethods]
impl BatchNormState {
    #[new]
    #[pyo3(signature = (grad_gamma=None, grad_beta=None))]
    fn new(py: Python<'_>, grad_gamma: Option<Py<PyAny>>, grad_beta: Option<Py<PyAny>>) -> Self {
        BatchNormState {
            lock: StepLock::default(),
            committed: Mutex::new(BatchNormCommitted {
                last: None,
                grad_gamma: grad_gamma.unwrap_or_else(|| py.None()),
                grad_beta: grad_beta.unwrap_or_else(|| py.None()),
            }),
        }
    }

    /// `sum(grad_output * xhat)` of the last backward, or None.
    #[getter]
    fn grad_gamma(&self, py: Python<'_>) -> Py<PyAny> {
        values(&self.committed).grad_gamma.clone_ref(py)
    }

    #[setter]
    fn set_grad_gamma(&self, v: Py<PyAny>) {
        values(&self.committed).grad_gamma = v;
    }

    /// `sum(grad_output)` of the last backward, or None.
    #[getter]
    fn grad_beta(&self, py: Python<'_>) -> Py<PyAny> {
        values(&self.committed).grad_beta.clone_ref(py)
    }

    #[setter]
    fn set_grad_beta(&self, v: Py<PyAny>) {
        values(&self.committed).grad_beta = v;
    }
}

/// `obj` must be an array of the layer's dtype `T`.
fn layer_dtype<T: Float>(
    func: &str,
    name: &'static str,
    obj: &Bound<PyAny>,
    like: &str,
) -> Result<()> {
    let d = float_dtype(func, &Name::Arg(name), obj)?;
    if d == T::DTYPE {
        return Ok(());
    }
    let (want, got) = match T::DTYPE {
        Dtype::F32 => ("float32", "float64"),
        Dtype::F64 => ("float64", "float32"),
    };
    Err(Error::Type(format!(
        "{func}: {name} must have dtype {want} like {like}, got {got}"
    )))
}

fn no_forward(func: &str) -> Error {
    Error::Value(format!(
        "{func}: forward must be called before backward, got no forward call yet"
    ))
}

/// BatchNorm's `(C,)` arrays: `gamma`, `beta`, `running_mean`, `running_var`.
type Channels<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

/// One of the layer's `(C,)` arrays, read.
fn channel_input<'py, T: Float>(
    call: &mut Call<'_, 'py>,
    obj: &Bound<'py, PyAny>,
    name: &'static str,
    c: usize,
) -> Result<In<'py, T>> {
    let a = call.input::<T>(Name::Arg(name), obj)?;
    same_shape(call.func, &Name::Arg(name), a.shape(), &[c])?;
    Ok(a)
}

/// One of the layer's `(C,)` arrays, written in place.
fn channel_output<'py, T: Float>(
    call: &mut Call<'_, 'py>,
    obj: &Bound<'py, PyAny>,
    name: &'static str,
    c: usize,
) -> Result<Out<'py, T>> {
    let a = call.output::<T>(Name::Arg(name), obj)?;
    same_shape(call.func, &Name::Arg(name), a.shape(), &[c])?;
    Ok(a)
}

fn bn_forward<'py, T: Float>(
    py: Python<'py>,
    func: &str,
    x_obj: &Bound<'py, PyAny>,
    training: bool,
    (gamma, beta, running_mean, running_var): &Channels<'py>,
    h: &BatchNormHyper,
) -> Result<(Bound<'py, PyAny>, LastForward)> {
    let c = h.num_features;
    layer_dtype::<T>(func, "x", x_obj, "the layer")?;
    let mut call = Call::new(func);
    let x = call.input::<T>(Name::Arg("x"), x_obj)?;
    let shape = x.shape().to_vec();
    if !matches!(shape.len(), 2 | 3) || shape[1] != c {
        return Err(Error::Value(format!(
            "{func}: x must have shape (N, {c}) or (N, {c}, L), got {}",
            shape_str(&shape)
        )));
    }
    let layout = Layout {
        n: shape[0],
        c,
        l: shape.get(2).copied().unwrap_or(1),
    };
    let gamma = channel_input::<T>(&mut call, gamma, "self.gamma", c)?;
    let beta = channel_input::<T>(&mut call, beta, "self.beta", c)?;
    let (rm, rv) = (running_mean, running_var);
    let (mut rm_out, mut rv_out, mut rm_in, mut rv_in) = (None, None, None, None);
    if training {
        rm_out = Some(channel_output::<T>(&mut call, rm, "self.running_mean", c)?);
        rv_out = Some(channel_output::<T>(&mut call, rv, "self.running_var", c)?);
        if layout.count() < 2 {
            return Err(Error::Value(format!(
                "{func}: x must have more than 1 value per channel when training, got shape {}",
                shape_str(&shape)
            )));
        }
    } else {
        rm_in = Some(channel_input::<T>(&mut call, rm, "self.running_mean", c)?);
        rv_in = Some(channel_input::<T>(&mut call, rv, "self.running_var", c)?);
    }
    let ok = call.check_overlaps()?;
    let mut out = Out::<T>::new(py, &shape)?;
    let (xs, os) = (x.slice(&ok), out.slice(&ok));
    let (g, b) = (gamma.slice(&ok), beta.slice(&ok));
    let args = BatchNormArgs {
        eps: h.eps,
        momentum: h.momentum,
    };
    let saved = match (
        rm_out.as_mut().zip(rv_out.as_mut()),
        rm_in.as_ref().zip(rv_in.as_ref()),
    ) {
        (Some((rm, rv)), _) => {
            let p = Params {
                gamma: g,
                beta: b,
                running_mean: rm.slice(&ok),
                running_var: rv.slice(&ok),
            };
            run(py, xs.len(), || {
                batchnorm::forward_training(xs, os, layout, p, &args)
            })
        }
        (None, Some((rm, rv))) => {
            let p = Params {
                gamma: g,
                beta: b,
                running_mean: rm.slice(&ok),
                running_var: rv.slice(&ok),
            };
            run(py, xs.len(), || {
                batchnorm::forward_eval(xs, os, layout, p, &args)
            })
        }
        (None, None) => unreachable!("running statistics are read in one mode or the other"),
    };
    let last = LastForward {
        saved,
        layout,
        x: x.array().clone().into_any().unbind(),
        dtype: h.dtype,
    };
    Ok((out.array().clone().into_any(), last))
}

/// `BatchNorm.forward`: the output; commits the forward to `state` for backward and, in
/// training, updates `running_mean` and `running_var` in place.
#[pyfunction]
#[pyo3(signature = (func, state, x, training, channels, hyper))]
pub fn batchnorm_forward<'py>(
    py: Python<'py>,
    func: &str,
    state: &Bound<'py, BatchNormState>,
    x: &Bound<'py, PyAny>,
    training: bool,
    channels: Channels<'py>,
    hyper: &Bound<'py, BatchNormHyper>,
) -> PyResult<Bound<'py, PyAny>> {
    guard(func, || {
        let state = state.get();
        let _held = state.lock.hold(py);
        let h = hyper.get();
        let (out, last) = dispatch!(h.dtype => bn_forward(py, func, x, training, &channels, h))?;
        values(&state.committed).last = Some(Arc::new(last));
        Ok(out)
    })
}

fn bn_backward<'py, T: Float>(
    py: Python<'py>,
    func: &str,
    g_obj: &Bound<'py, PyAny>,
    last: &LastForward,
) -> Result<[Bound<'py, PyAny>; 3]> {
    layer_dtype::<T>(func, "grad_output", g_obj, "the layer")?;
    let mut call = Call::new(func);
    let g = call.input::<T>(Name::Arg("grad_output"), g_obj)?;
    let x = call.input::<T>(Name::Arg("the last forward's x"), last.x.bind(py))?;
    if g.shape() != x.shape() {
        return Err(Error::Value(format!(
            "{func}: grad_output must have shape {} like the last forward's x, got {}",
            shape_str(x.shape()),
            shape_str(g.shape())
        )));
    }
    let ok = call.check_overlaps()?;
    let c = last.layout.c;
    let (mut gx, mut gg, mut gb) = (
        Out::<T>::new(py, x.shape())?,
        Out::<T>::new(py, &[c])?,
        Out::<T>::new(py, &[c])?,
    );
    let (gs, xs) = (g.slice(&ok), x.slice(&ok));
    let grads = Grads {
        grad_x: gx.slice(&ok),
        grad_gamma: gg.slice(&ok),
        grad_beta: gb.slice(&ok),
    };
    run(py, gs.len(), || {
        batchnorm::backward(gs, xs, last.layout, &last.saved, grads)
    });
    let arrays = [gx.array(), gg.array(), gb.array()];
    Ok(arrays.map(|a| a.clone().into_any()))
}

/// `BatchNorm.backward`: `grad_x`; commits `grad_gamma` and `grad_beta` to `state`.
#[pyfunction]
pub fn batchnorm_backward<'py>(
    py: Python<'py>,
    func: &str,
    state: &Bound<'py, BatchNormState>,
    grad_output: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guard(func, || {
        let state = state.get();
        let _held = state.lock.hold(py);
        let last = values(&state.committed).last.clone();
        let last = last.ok_or_else(|| no_forward(func))?;
        let [gx, gg, gb] = dispatch!(last.dtype => bn_backward(py, func, grad_output, &last))?;
        let mut c = values(&state.committed);
        c.grad_gamma = gg.unbind();
        c.grad_beta = gb.unbind();
        Ok(gx)
    })
}

/// The shape, dtype and drop rate of the last forward's `x`.
type LastShape = (Py<PyAny>, Py<PyAny>, f64);

struct DropoutCommitted {
    seed: u64,
    /// Up to 2**64: the count after a forward of stream 2**64 - 1, refused by the next one.
    num_training_calls: u128,
    /// The mask of the last training forward (a bool array), or None.
    kept: Py<PyAny>,
    last: Option<LastShape>,
}

/// What a `gradfast.Dropout` keeps between calls: its seed, the count of training forwards
/// (the stream of the next mask), the last mask and what backward checks of the last forward,
/// and the lock of its calls.
#[pyclass(frozen, module = "gradfast._core")]
pub struct DropoutState {
    lock: StepLock,
    committed: Mutex<DropoutCommitted>,
}

#[pymethods]
impl DropoutState {
    #[new]
    #[pyo3(signature = (seed, num_training_calls=0, kept=None, last=None))]
    fn new(
        py: Python<'_>,
        seed: u64,
        num_training_calls: u128,
        kept: Option<Py<PyAny>>,
        last: Option<LastShape>,
    ) -> Self {
        DropoutState {
            lock: StepLock::default(),
            committed: Mutex::new(DropoutCommitted {
                seed,
                num_training_calls,
                kept: kept.unwrap_or_else(|| py.None()),
                last,
            }),
        }
    }

    /// The seed of every mask.
    #[getter]
    fn seed(&self) -> u64 {
        values(&self.committed).seed
    }

    #[setter]
    fn set_seed(&self, seed: u64) {
        values(&self.committed).seed = seed;
    }

    /// The number of training-mode forward calls so far: the stream of the next mask.
    #[getter]
    fn num_training_calls(&self) -> u128 {
        values(&self.committed).num_training_calls
    }

    #[setter]
    fn set_num_training_calls(&self, n: u64) {
        values(&self.committed).num_training_calls = n.into();
    }

    /// The mask of the last training forward (a bool array), or None.
    #[getter]
    fn kept(&self, py: Python<'_>) -> Py<PyAny> {
        values(&self.committed).kept.clone_ref(py)
    }

    /// `(shape, dtype, drop_rate)` of the last forward, or None before any.
    #[getter]
    fn last(&self, py: Python<'_>) -> Option<LastShape> {
        let c = values(&self.committed);
        c.last
            .as_ref()
            .map(|(s, d, p)| (s.clone_ref(py), d.clone_ref(py), *p))
    }
}

/// What a forward of `x` records for backward.
fn last_shape(x: &Bound<PyAny>, drop_rate: f64) -> Result<LastShape> {
    let py = x.py();
    let get = |name| x.getattr(name).map(Bound::unbind).map_err(Error::Python);
    Ok((
        get(intern!(py, "shape"))?,
        get(intern!(py, "dtype"))?,
        drop_rate,
    ))
}

fn dropout_train<'py, T: Float>(
    py: Python<'py>,
    func: &str,
    x_obj: &Bound<'py, PyAny>,
    args: &DropoutArgs,
) -> Result<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let mut call = Call::new(func);
    let x = call.input::<T>(Name::Arg("x"), x_obj)?;
    let ok = call.check_overlaps()?;
    let shape = x.shape().to_vec();
    let mut out = Out::<T>::new(py, &shape)?;
    // SAFETY: filled with 0 and 1 bytes, valid bools, by the kernel before it is read.
    let kept = unsafe { fresh::empty::<bool>(py, &shape) }?;
    let len = kept.len();
    let kept_bytes: &mut [u8] = if len == 0 {
        &mut []
    } else {
        // SAFETY: a fresh C-ordered array of one-byte bools, not shared with anything.
        unsafe { std::slice::from_raw_parts_mut(kept.data().cast::<u8>(), len) }
    };
    let (xs, os) = (x.slice(&ok), out.slice(&ok));
    run(py, xs.len(), || dropout::forward(xs, os, kept_bytes, args));
    Ok((out.array().clone().into_any(), kept.into_any()))
}

/// `Dropout.forward`: the output; in training draws the mask of stream
/// `state.num_training_calls`; commits the mask (None in eval), the count and what backward
/// checks to `state`.
#[pyfunction]
#[pyo3(signature = (func, state, x, training, hyper))]
pub fn dropout_forward<'py>(
    py: Python<'py>,
    func: &str,
    state: &Bound<'py, DropoutState>,
    x: &Bound<'py, PyAny>,
    training: bool,
    hyper: &Bound<'py, DropoutHyper>,
) -> PyResult<Bound<'py, PyAny>> {
    guard(func, || {
        let state = state.get();
        let _held = state.lock.hold(py);
        let drop_rate = hyper.get().drop_rate;
        let dtype = float_dtype(func, &Name::Arg("x"), x)?;
        if !training {
            let copy = dispatch!(dtype => copy_any(func, "x", x))?;
            let last = last_shape(x, drop_rate)?;
            let mut c = values(&state.committed);
            c.kept = py.None();
            c.last = Some(last);
            return Ok(copy);
        }
        let (seed, count) = {
            let c = values(&state.committed);
            (c.seed, c.num_training_calls)
        };
        let num_training_calls = u64::try_from(count).map_err(|_| {
            Error::Value(format!(
                "{func}: self.num_training_calls must be an int in [0, 2**64) (the stream of \
                 the next mask), got {count}"
            ))
        })?;
        let args = DropoutArgs {
            drop_rate,
            seed,
            num_training_calls,
        };
        let (out, kept) = dispatch!(dtype => dropout_train(py, func, x, &args))?;
        let last = last_shape(x, drop_rate)?;
        let mut c = values(&state.committed);
        c.num_training_calls = count + 1;
        c.kept = kept.unbind();
        c.last = Some(last);
        Ok(out)
    })
}

/// NumPy's C-ordered copy of the array `obj` (of dtype `T`).
fn copy_any<'py, T: Float>(
    func: &str,
    name: &'static str,
    obj: &Bound<'py, PyAny>,
) -> Result<Bound<'py, PyAny>> {
    let a = obj
        .cast::<PyArrayDyn<T>>()
        .map_err(|e| Error::Python(e.into()))?;
    Ok(c_copy(func, &Name::Arg(name), a)?.into_any())
}

fn dropout_grad<'py, T: Float>(
    py: Python<'py>,
    func: &str,
    g_obj: &Bound<'py, PyAny>,
    kept: &Bound<'py, PyAny>,
    drop_rate: f64,
) -> Result<Bound<'py, PyAny>> {
    let mut call = Call::new(func);
    let g = call.input::<T>(Name::Arg("grad_output"), g_obj)?;
    let ok = call.check_overlaps()?;
    let bad = || {
        Error::Value(format!(
            "{func}: self.kept must be the C-ordered bool array forward left there, of shape {}, got another value",
            shape_str(g.shape())
        ))
    };
    let k = kept.cast::<PyUntypedArray>().map_err(|_| bad())?;
    let is_bool = k.dtype().is_equiv_to(&numpy::dtype::<bool>(py));
    if !is_bool || !k.is_c_contiguous() || k.shape() != g.shape() {
        return Err(bad());
    }
    let len = g.shape().iter().product::<usize>();
    let kept_bytes: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: a C-contiguous array of `len` one-byte bools (checked just above), kept alive
        // by `kept`; read as bytes, so any byte value is fine.
        unsafe {
            let arr = k.cast_unchecked::<PyArrayDyn<bool>>();
            std::slice::from_raw_parts(arr.data().cast::<u8>(), len)
        }
    };
    let mut out = Out::<T>::new(py, g.shape())?;
    let (gs, os) = (g.slice(&ok), out.slice(&ok));
    run(py, gs.len(), || {
        dropout::backward(gs, kept_bytes, os, drop_rate)
    });
    Ok(out.array().clone().into_any())
}

/// `Dropout.backward`: `grad_output` times the mask of the last forward (a copy after an
/// eval forward).
#[pyfunction]
pub fn dropout_backward<'py>(
    py: Python<'py>,
    func: &str,
    state: &Bound<'py, DropoutState>,
    grad_output: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guard(func, || {
        let state = state.get();
        let _held = state.lock.hold(py);
        let (last, kept) = {
            let c = values(&state.committed);
            let last = c.last.as_ref().ok_or_else(|| no_forward(func))?;
            let (s, d, p) = last;
            ((s.clone_ref(py), d.clone_ref(py), *p), c.kept.clone_ref(py))
        };
        let (shape, dtype, drop_rate) = (last.0.bind(py), last.1.bind(py), last.2);
        let gd = float_dtype(func, &Name::Arg("grad_output"), grad_output)?;
        let g_dtype = grad_output
            .getattr(intern!(py, "dtype"))
            .map_err(Error::Python)?;
        if !g_dtype.eq(dtype).map_err(Error::Python)? {
            return Err(Error::Type(format!(
                "{func}: grad_output must have dtype {dtype} like the last forward's x, got {g_dtype}"
            ))
            .into());
        }
        let g_shape = grad_output
            .getattr(intern!(py, "shape"))
            .map_err(Error::Python)?;
        if !g_shape.eq(shape).map_err(Error::Python)? {
            return Err(Error::Value(format!(
                "{func}: grad_output must have shape {shape} like the last forward's x, got {g_shape}"
            ))
            .into());
        }
        let kept = kept.bind(py);
        if kept.is_none() {
            return Ok(dispatch!(gd => copy_any(func, "grad_output", grad_output))?);
        }
        Ok(dispatch!(gd => dropout_grad(py, func, grad_output, kept, drop_rate))?)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BatchNormHyper>()?;
    m.add_class::<BatchNormState>()?;
    m.add_class::<DropoutHyper>()?;
    m.add_class::<DropoutState>()?;
    m.add_function(wrap_pyfunction!(batchnorm_forward, m)?)?;
    m.add_function(wrap_pyfunction!(batchnorm_backward, m)?)?;
    m.add_function(wrap_pyfunction!(dropout_forward, m)?)?;
    m.add_function(wrap_pyfunction!(dropout_backward, m)?)
}
