//! BatchNorm and Dropout: one call per forward or backward, which holds the layer's lock,
//! reads the layer's arrays, validates everything, runs the kernel without the GIL and
//! commits what the layer keeps (BatchNorm's cache and running statistics, Dropout's mask
//! and call count) before returning, so that an interrupt cannot leave the layer half
//! updated and two threads using one layer get the result of two calls in turn.

use gradfast_kernels::nn::batchnorm::{self, BatchNormHyper as Hyper, Layout, Params, Saved};
use gradfast_kernels::nn::dropout;
use numpy::{
    PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyString, PyTuple};

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
        float64: bool,
    }
}

hyper_class! {
    /// `gradfast.Dropout`'s hyper-parameter.
    DropoutHyper {
        drop_rate: f64,
    }
}

/// What BatchNorm's backward needs of the last forward, kept on the layer as `_cache`.
#[pyclass(frozen, module = "gradfast._core")]
pub struct BatchNormCache {
    saved: Saved,
    layout: Layout,
    /// The `x` the forward read (the caller's array, or NumPy's C-ordered copy of it).
    x: Py<PyAny>,
    float64: bool,
}

fn dtype_of(float64: bool) -> Dtype {
    if float64 {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

fn attr<'py>(obj: &Bound<'py, PyAny>, name: &Bound<'py, PyString>) -> Result<Bound<'py, PyAny>> {
    obj.getattr(name).map_err(Error::Python)
}

fn set<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
    v: impl IntoPyObject<'py>,
) -> Result<()> {
    obj.setattr(name, v).map_err(Error::Python)
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

/// One of the layer's `(C,)` arrays, read (or, for the running statistics in training, written).
fn channel_input<'py, T: Float>(
    call: &mut Call<'_, 'py>,
    layer: &Bound<'py, PyAny>,
    attr_name: &Bound<'py, PyString>,
    name: &'static str,
    c: usize,
) -> Result<In<'py, T>> {
    let a = call.input::<T>(Name::Arg(name), &attr(layer, attr_name)?)?;
    same_shape(call.func, &Name::Arg(name), a.shape(), &[c])?;
    Ok(a)
}

/// What the last forward left in `layer.<name>`, or the error of a backward before any forward.
fn last_forward<'py>(
    func: &str,
    layer: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> Result<Bound<'py, PyAny>> {
    let last = attr(layer, name)?;
    if last.is_none() {
        return Err(Error::Value(format!(
            "{func}: forward must be called before backward, got no forward call yet"
        )));
    }
    Ok(last)
}

fn channel_output<'py, T: Float>(
    call: &mut Call<'_, 'py>,
    layer: &Bound<'py, PyAny>,
    attr_name: &Bound<'py, PyString>,
    name: &'static str,
    c: usize,
) -> Result<Out<'py, T>> {
    let a = call.output::<T>(Name::Arg(name), &attr(layer, attr_name)?)?;
    same_shape(call.func, &Name::Arg(name), a.shape(), &[c])?;
    Ok(a)
}

fn bn_forward<'py, T: Float>(
    py: Python<'py>,
    layer: &Bound<'py, PyAny>,
    x_obj: &Bound<'py, PyAny>,
    training: bool,
    h: &BatchNormHyper,
) -> Result<Bound<'py, PyAny>> {
    let func = "BatchNorm.forward";
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
    let gamma = channel_input::<T>(&mut call, layer, intern!(py, "gamma"), "self.gamma", c)?;
    let beta = channel_input::<T>(&mut call, layer, intern!(py, "beta"), "self.beta", c)?;
    let (rm, rv) = (intern!(py, "running_mean"), intern!(py, "running_var"));
    let (mut rm_out, mut rv_out, mut rm_in, mut rv_in) = (None, None, None, None);
    if training {
        rm_out = Some(channel_output::<T>(
            &mut call,
            layer,
            rm,
            "self.running_mean",
            c,
        )?);
        rv_out = Some(channel_output::<T>(
            &mut call,
            layer,
            rv,
            "self.running_var",
            c,
        )?);
        if layout.count() < 2 {
            return Err(Error::Value(format!(
                "{func}: x must have more than 1 value per channel when training, got shape {}",
                shape_str(&shape)
            )));
        }
    } else {
        rm_in = Some(channel_input::<T>(
            &mut call,
            layer,
            rm,
            "self.running_mean",
            c,
        )?);
        rv_in = Some(channel_input::<T>(
            &mut call,
            layer,
            rv,
            "self.running_var",
            c,
        )?);
    }
    let ok = call.check_overlaps()?;
    let mut out = Out::<T>::new(py, &shape)?;
    let (xs, os) = (x.slice(&ok), out.slice(&ok));
    let (g, b) = (gamma.slice(&ok), beta.slice(&ok));
    let hyper = Hyper {
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
                batchnorm::forward_training(xs, os, layout, p, hyper)
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
                batchnorm::forward_eval(xs, os, layout, p, h.eps)
            })
        }
        (None, None) => unreachable!("running statistics are read in one mode or the other"),
    };
    let cache = BatchNormCache {
        saved,
        layout,
        x: x.array().clone().into_any().unbind(),
        float64: h.float64,
    };
    let cache = Bound::new(py, cache).map_err(Error::Python)?;
    set(layer, intern!(py, "_cache"), cache)?;
    Ok(out.array().clone().into_any())
}

/// `BatchNorm.forward`: the output; sets `layer._cache` and, in training, updates the running
/// statistics in place.
#[pyfunction]
#[pyo3(signature = (layer, lock, x, training, hyper))]
pub fn batchnorm_forward<'py>(
    py: Python<'py>,
    layer: &Bound<'py, PyAny>,
    lock: &Bound<'py, StepLock>,
    x: &Bound<'py, PyAny>,
    training: bool,
    hyper: &Bound<'py, BatchNormHyper>,
) -> PyResult<Bound<'py, PyAny>> {
    guard("BatchNorm.forward", || {
        let _held = lock.get().hold(py);
        let h = hyper.get();
        Ok(dispatch!(dtype_of(h.float64) => bn_forward(py, layer, x, training, h))?)
    })
}

fn bn_backward<'py, T: Float>(
    py: Python<'py>,
    layer: &Bound<'py, PyAny>,
    g_obj: &Bound<'py, PyAny>,
    cache: &BatchNormCache,
) -> Result<Bound<'py, PyAny>> {
    let func = "BatchNorm.backward";
    layer_dtype::<T>(func, "grad_output", g_obj, "the layer")?;
    let mut call = Call::new(func);
    let g = call.input::<T>(Name::Arg("grad_output"), g_obj)?;
    let x = call.input::<T>(Name::Arg("the last forward's x"), cache.x.bind(py))?;
    if g.shape() != x.shape() {
        return Err(Error::Value(format!(
            "{func}: grad_output must have shape {} like the last forward's x, got {}",
            shape_str(x.shape()),
            shape_str(g.shape())
        )));
    }
    let ok = call.check_overlaps()?;
    let c = cache.layout.c;
    let (mut gx, mut gg, mut gb) = (
        Out::<T>::new(py, x.shape())?,
        Out::<T>::new(py, &[c])?,
        Out::<T>::new(py, &[c])?,
    );
    let (gs, xs) = (g.slice(&ok), x.slice(&ok));
    let (gxs, ggs, gbs) = (gx.slice(&ok), gg.slice(&ok), gb.slice(&ok));
    run(py, gs.len(), || {
        batchnorm::backward(gs, xs, gxs, cache.layout, &cache.saved, ggs, gbs)
    });
    set(layer, intern!(py, "grad_gamma"), gg.array())?;
    set(layer, intern!(py, "grad_beta"), gb.array())?;
    Ok(gx.array().clone().into_any())
}

/// `BatchNorm.backward`: `grad_x`; sets `layer.grad_gamma` and `layer.grad_beta`.
#[pyfunction]
pub fn batchnorm_backward<'py>(
    py: Python<'py>,
    layer: &Bound<'py, PyAny>,
    lock: &Bound<'py, StepLock>,
    grad_output: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let func = "BatchNorm.backward";
    guard(func, || {
        let _held = lock.get().hold(py);
        let cache = last_forward(func, layer, intern!(py, "_cache"))?;
        let cache = cache.cast::<BatchNormCache>().map_err(|_| {
            Error::Type(format!(
                "{func}: self._cache must be what forward left there, got another object"
            ))
        })?;
        let c = cache.get();
        Ok(dispatch!(dtype_of(c.float64) => bn_backward(py, layer, grad_output, c))?)
    })
}

/// Records a forward on the dropout layer: the mask (or None) and what backward checks.
fn dropout_commit<'py>(
    layer: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    kept: Option<Bound<'py, PyAny>>,
    p: f64,
) -> Result<()> {
    let py = layer.py();
    let last = PyTuple::new(
        py,
        [
            attr(x, intern!(py, "shape"))?,
            attr(x, intern!(py, "dtype"))?,
            PyFloat::new(py, p).into_any(),
        ],
    )
    .map_err(Error::Python)?;
    set(layer, intern!(py, "kept"), kept)?;
    set(layer, intern!(py, "_last"), last)
}

fn u64_attr(func: &str, layer: &Bound<PyAny>, name: &Bound<PyString>, what: &str) -> Result<u64> {
    attr(layer, name)?.extract::<u64>().map_err(|_| {
        Error::Value(format!(
            "{func}: self.{name} must be an int in [0, 2**64) ({what}), got another value"
        ))
    })
}

fn dropout_train<'py, T: Float>(
    py: Python<'py>,
    layer: &Bound<'py, PyAny>,
    x_obj: &Bound<'py, PyAny>,
    p: f64,
) -> Result<Bound<'py, PyAny>> {
    let func = "Dropout.forward";
    let seed = u64_attr(func, layer, intern!(py, "seed"), "the seed")?;
    let k = u64_attr(
        func,
        layer,
        intern!(py, "num_training_calls"),
        "the stream of the next mask",
    )?;
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
    run(py, xs.len(), || {
        dropout::forward(xs, os, kept_bytes, seed, k, p)
    });
    set(layer, intern!(py, "num_training_calls"), u128::from(k) + 1)?;
    dropout_commit(layer, x_obj, Some(kept.into_any()), p)?;
    Ok(out.array().clone().into_any())
}

/// `Dropout.forward`: the output; in training draws the mask of stream
/// `layer.num_training_calls`, keeps it in `layer.kept` and advances the count.
#[pyfunction]
#[pyo3(signature = (layer, lock, x, training, hyper))]
pub fn dropout_forward<'py>(
    py: Python<'py>,
    layer: &Bound<'py, PyAny>,
    lock: &Bound<'py, StepLock>,
    x: &Bound<'py, PyAny>,
    training: bool,
    hyper: &Bound<'py, DropoutHyper>,
) -> PyResult<Bound<'py, PyAny>> {
    let func = "Dropout.forward";
    guard(func, || {
        let _held = lock.get().hold(py);
        let p = hyper.get().drop_rate;
        let dtype = float_dtype(func, &Name::Arg("x"), x)?;
        if training {
            return Ok(dispatch!(dtype => dropout_train(py, layer, x, p))?);
        }
        let copy = dispatch!(dtype => copy_any(func, "x", x))?;
        dropout_commit(layer, x, None, p)?;
        Ok(copy)
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
    g_obj: &Bound<'py, PyAny>,
    kept: &Bound<'py, PyAny>,
    p: f64,
) -> Result<Bound<'py, PyAny>> {
    let func = "Dropout.backward";
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
    run(py, gs.len(), || dropout::backward(gs, kept_bytes, os, p));
    Ok(out.array().clone().into_any())
}

/// `Dropout.backward`: `grad_output` times the mask of the last forward (a copy after an
/// eval forward).
#[pyfunction]
pub fn dropout_backward<'py>(
    py: Python<'py>,
    layer: &Bound<'py, PyAny>,
    lock: &Bound<'py, StepLock>,
    grad_output: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let func = "Dropout.backward";
    guard(func, || {
        let _held = lock.get().hold(py);
        let last = last_forward(func, layer, intern!(py, "_last"))?;
        let (shape, dtype, p): (Bound<PyAny>, Bound<PyAny>, f64) =
            last.extract().map_err(|_| {
                Error::Type(format!(
                    "{func}: self._last must be what forward left there, got another object"
                ))
            })?;
        let gd = float_dtype(func, &Name::Arg("grad_output"), grad_output)?;
        let g_dtype = attr(grad_output, intern!(py, "dtype"))?;
        if !g_dtype.eq(&dtype).map_err(Error::Python)? {
            return Err(Error::Type(format!(
                "{func}: grad_output must have dtype {dtype} like the last forward's x, got {g_dtype}"
            ))
            .into());
        }
        let g_shape = attr(grad_output, intern!(py, "shape"))?;
        if !g_shape.eq(&shape).map_err(Error::Python)? {
            return Err(Error::Value(format!(
                "{func}: grad_output must have shape {shape} like the last forward's x, got {g_shape}"
            ))
            .into());
        }
        let kept = attr(layer, intern!(py, "kept"))?;
        if kept.is_none() {
            return Ok(dispatch!(gd => copy_any(func, "grad_output", grad_output))?);
        }
        Ok(dispatch!(gd => dropout_grad(py, grad_output, &kept, p))?)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BatchNormHyper>()?;
    m.add_class::<BatchNormCache>()?;
    m.add_class::<DropoutHyper>()?;
    m.add_function(wrap_pyfunction!(batchnorm_forward, m)?)?;
    m.add_function(wrap_pyfunction!(batchnorm_backward, m)?)?;
    m.add_function(wrap_pyfunction!(dropout_forward, m)?)?;
    m.add_function(wrap_pyfunction!(dropout_backward, m)?)
}
