//! Magnitude pruning over a dict: pruned copies, masks, masks applied in place, and the
//! in-place step of gradual pruning. Each returns the thresholds it used (`None` for an
//! empty array), which the Python API logs.

use gradfast_kernels::prune::{
    apply_masks as apply_kernel, layer_thresholds, mask_into, prune_in_place, prune_into,
    threshold, Magnitude, MaskInto, Masked, PruneInPlace, PruneInto,
};
use gradfast_kernels::runtime::bundle::Each;
use numpy::PyArrayDyn;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PySlice, PyTuple};

use super::{guard, run};
use crate::arrays::{
    float_dtype, fresh, same_shape, Call, Dtype, Elem, Float, In, Items, Mapping, MaskByte, Name,
    Out,
};
use crate::error::{Error, Result};
use crate::{dispatch, hyper_class};

type Thresholds = Vec<Option<f64>>;
/// New arrays, and the same registered as outputs of a call.
type Fresh<'py, E> = (Vec<Bound<'py, PyArrayDyn<E>>>, Vec<Out<'py, E>>);

/// The threshold of each array: its own, or one over all of them.
fn thresholds<T: Magnitude>(views: &[&[T]], ratio: f64, is_global: bool) -> Thresholds {
    if !is_global {
        return layer_thresholds(views, ratio);
    }
    let t = threshold(views, ratio);
    views
        .iter()
        .map(|v| if v.is_empty() { None } else { t })
        .collect()
}

/// The dtype of the first array of a dict, `None` for an empty dict.
fn first_dtype(func: &str, arg: &'static str, items: &Items) -> Result<Option<Dtype>> {
    items
        .items
        .first()
        .map(|(key, a)| float_dtype(func, &Name::Item(arg, key.clone()), a))
        .transpose()
}

/// New C-contiguous arrays shaped as `inputs`, registered as outputs of `call`: views into
/// one buffer (from the cache of [`fresh`](crate::arrays::fresh) when large), left
/// uninitialized: the kernels write every element. One allocation instead of one per array,
/// which for many small arrays cost more than the pruning itself.
fn result_views<'py, E: Elem, T: Float>(
    py: Python<'py>,
    call: &mut Call<'_, 'py>,
    inputs: &[In<'py, T>],
) -> Result<Fresh<'py, E>> {
    let sizes: Vec<usize> = inputs.iter().map(|i| i.shape().iter().product()).collect();
    // SAFETY: every element of every view is written by the kernel before the arrays reach
    // Python (the views cover the buffer; nothing reads it before).
    let buffer = unsafe { fresh::empty::<E>(py, &[sizes.iter().sum::<usize>()]) }?;
    let mut start = 0;
    let mut arrays = Vec::with_capacity(inputs.len());
    for (i, &n) in inputs.iter().zip(&sizes) {
        let part = PySlice::new(py, start as isize, (start + n) as isize, 1);
        let view = buffer
            .get_item(part)
            .and_then(|v| v.call_method1(intern!(py, "reshape"), (PyTuple::new(py, i.shape())?,)))
            .and_then(|v| v.cast_into::<PyArrayDyn<E>>().map_err(Into::into))
            .map_err(Error::Python)?;
        arrays.push(view);
        start += n;
    }
    let outs = arrays
        .iter()
        .map(|a| call.output::<E>(Name::Arg("result"), a.as_any()))
        .collect::<Result<_>>()?;
    Ok((arrays, outs))
}

fn weights_in<'py, T: Float>(
    call: &mut Call<'_, 'py>,
    items: &Items<'py>,
) -> Result<Vec<In<'py, T>>> {
    items
        .items
        .iter()
        .map(|(key, w)| call.input::<T>(Name::Item("weights", key.clone()), w))
        .collect()
}

fn as_dict<'py, E: Elem>(
    py: Python<'py>,
    items: &Items<'py>,
    arrays: Vec<Bound<'py, PyArrayDyn<E>>>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for ((key, _), a) in items.items.iter().zip(arrays) {
        d.set_item(key, a)?;
    }
    Ok(d)
}

/// New arrays of `E` shaped as the weights of `items`, filled by `fill` with each array's
/// weights, its `E` elements seen as `S` (by `slice`) and its threshold (NaN for an empty
/// array); returns them as a dict, and the thresholds.
fn by_threshold<'py, T, E, S>(
    py: Python<'py>,
    func: &str,
    items: &Items<'py>,
    ratio: f64,
    is_global: bool,
    slice: impl Fn(&mut [E]) -> &mut [S],
    fill: impl for<'a> FnOnce(Vec<(&'a [T], &'a mut [S], f64)>) + Send,
) -> PyResult<(Bound<'py, PyDict>, Thresholds)>
where
    T: Float + Magnitude,
    E: Elem,
    S: Send,
{
    let mut call = Call::new(func);
    let ins = weights_in::<T>(&mut call, items)?;
    let (arrays, mut outs) = result_views::<E, T>(py, &mut call, &ins)?;
    let ok = call.check_overlaps()?;
    let views: Vec<&[T]> = ins.iter().map(|i| i.slice(&ok)).collect();
    let slices: Vec<&mut [S]> = outs.iter_mut().map(|o| slice(o.slice(&ok))).collect();
    let total = views.iter().map(|v| v.len()).sum();
    let ts = run(py, total, move || {
        let ts = thresholds(&views, ratio, is_global);
        let layers = views.iter().zip(slices).zip(&ts);
        fill(
            layers
                .map(|((w, out), t)| (*w, out, t.unwrap_or(f64::NAN)))
                .collect(),
        );
        ts
    });
    Ok((as_dict(py, items, arrays)?, ts))
}

/// Pruned copies (`masks` false) or masks of the arrays of `items`, and the thresholds.
fn select_typed<'py, T: Float + Magnitude>(
    py: Python<'py>,
    func: &str,
    items: &Items<'py>,
    ratio: f64,
    is_global: bool,
    masks: bool,
) -> PyResult<(Bound<'py, PyDict>, Thresholds)> {
    if masks {
        let bytes = MaskByte::bytes_mut;
        by_threshold::<T, MaskByte, u8>(py, func, items, ratio, is_global, bytes, |layers| {
            let layers = layers.into_iter();
            mask_into(
                layers
                    .map(|(w, mask, t)| MaskInto {
                        w,
                        mask,
                        threshold: Each(t),
                    })
                    .collect(),
            )
        })
    } else {
        by_threshold::<T, T, T>(
            py,
            func,
            items,
            ratio,
            is_global,
            |s| s,
            |layers| {
                let layers = layers.into_iter();
                prune_into(
                    layers
                        .map(|(w, out, t)| PruneInto {
                            w,
                            out,
                            threshold: Each(t),
                        })
                        .collect(),
                )
            },
        )
    }
}

/// [`select_typed`] on a dict argument `weights` of any float dtype.
fn select<'py>(
    py: Python<'py>,
    func: &str,
    weights: &Bound<'py, PyAny>,
    ratio: f64,
    is_global: bool,
    masks: bool,
) -> PyResult<(Bound<'py, PyDict>, Thresholds)> {
    guard(func, || {
        let items = Items::read(func, "weights", "numpy arrays", weights)?;
        match first_dtype(func, "weights", &items)? {
            None => Ok((PyDict::new(py), vec![])),
            Some(dtype) => {
                dispatch!(dtype => select_typed(py, func, &items, ratio, is_global, masks))
            }
        }
    })
}

hyper_class! {
    /// The pruning of `prune_network`, `magnitude_masks` and `GradualPruning.update`: the
    /// fraction pruned (`prune_ratio`, or the sparsity reached) and whether one threshold
    /// serves all layers (`scope='global'`).
    PruneHyper {
        sparsity: f64,
        global_scope: bool,
    }
}

/// Pruned copies of a dict of arrays, and the thresholds.
#[pyfunction]
#[pyo3(signature = (func, weights, hyper))]
pub fn prune_network<'py>(
    py: Python<'py>,
    func: &str,
    weights: &Bound<'py, PyAny>,
    hyper: &Bound<'py, PruneHyper>,
) -> PyResult<(Bound<'py, PyDict>, Thresholds)> {
    let h = hyper.get();
    select(py, func, weights, h.sparsity, h.global_scope, false)
}

/// The masks of what `prune_network` keeps, and the thresholds.
#[pyfunction]
#[pyo3(signature = (func, weights, hyper))]
pub fn magnitude_masks<'py>(
    py: Python<'py>,
    func: &str,
    weights: &Bound<'py, PyAny>,
    hyper: &Bound<'py, PruneHyper>,
) -> PyResult<(Bound<'py, PyDict>, Thresholds)> {
    let h = hyper.get();
    select(py, func, weights, h.sparsity, h.global_scope, true)
}

/// Params (written) and, under the same keys and of the same shapes, masks (borrowed as
/// `borrow` does: read, or written), validated in the reference's order.
struct Pairs<'py, T: Float, M> {
    params: Vec<Out<'py, T>>,
    masks: Vec<M>,
}

fn pairs<'py, T: Float, M>(
    call: &mut Call<'_, 'py>,
    params: &Items<'py>,
    masks: &Bound<'py, PyAny>,
    borrow: impl Fn(&mut Call<'_, 'py>, Name<'py>, &Bound<'py, PyAny>) -> Result<(M, Vec<usize>)>,
) -> Result<Pairs<'py, T, M>> {
    let func = call.func;
    let outs = params
        .items
        .iter()
        .map(|(key, p)| call.output::<T>(Name::Item("params", key.clone()), p))
        .collect::<Result<Vec<_>>>()?;
    let masks = Mapping::new(func, "masks", "numpy arrays", masks)?;
    masks.check_keys(func, "masks", "params", params)?;
    let mut borrowed = Vec::with_capacity(outs.len());
    for ((key, _), out) in params.items.iter().zip(&outs) {
        let m = masks
            .get(key)?
            .ok_or_else(|| masks.key_error(func, "masks", "params", params))?;
        let name = Name::Item("masks", key.clone());
        let (b, shape) = borrow(call, name.clone(), &m)?;
        same_shape(func, &name, &shape, out.shape())?;
        borrowed.push(b);
    }
    Ok(Pairs {
        params: outs,
        masks: borrowed,
    })
}

fn apply_typed<'py, T: Float>(
    py: Python<'py>,
    func: &str,
    params: &Items<'py>,
    masks: &Bound<'py, PyAny>,
) -> Result<()> {
    let mut call = Call::new(func);
    let mut p = pairs::<T, _>(&mut call, params, masks, |c, name, m| {
        let m = c.input::<MaskByte>(name, m)?;
        let shape = m.shape().to_vec();
        Ok((m, shape))
    })?;
    let ok = call.check_overlaps()?;
    let layers: Vec<Masked<T>> = p
        .params
        .iter_mut()
        .zip(&p.masks)
        .map(|(o, m)| Masked {
            p: o.slice(&ok),
            mask: MaskByte::bytes(m.slice(&ok)),
        })
        .collect();
    let total = layers.iter().map(|l| l.p.len()).sum();
    run(py, total, move || apply_kernel(layers));
    Ok(())
}

/// Sets params to +0.0 where the masks are False, in place.
#[pyfunction]
#[pyo3(signature = (func, params, masks))]
pub fn apply_masks(
    py: Python<'_>,
    func: &str,
    params: &Bound<'_, PyAny>,
    masks: &Bound<'_, PyAny>,
) -> PyResult<()> {
    guard(func, || {
        let items = Items::read(func, "params", "numpy arrays", params)?;
        match first_dtype(func, "params", &items)? {
            None => {
                // nothing to write, but the masks must still be a dict of no keys
                Mapping::new(func, "masks", "numpy arrays", masks)?
                    .check_keys(func, "masks", "params", &items)?;
                Ok(())
            }
            Some(dtype) => Ok(dispatch!(dtype => apply_typed(py, func, &items, masks))?),
        }
    })
}

fn gradual_typed<'py, T: Float + Magnitude>(
    py: Python<'py>,
    func: &str,
    params: &Items<'py>,
    masks: &Bound<'py, PyAny>,
    sparsity: f64,
    is_global: bool,
) -> Result<Thresholds> {
    let mut call = Call::new(func);
    let mut p = pairs::<T, _>(&mut call, params, masks, |c, name, m| {
        let m = c.output::<MaskByte>(name, m)?;
        let shape = m.shape().to_vec();
        Ok((m, shape))
    })?;
    let ok = call.check_overlaps()?;
    let mut slices: Vec<(&mut [T], &mut [u8])> = p
        .params
        .iter_mut()
        .zip(p.masks.iter_mut())
        .map(|(o, m)| (o.slice(&ok), MaskByte::bytes_mut(m.slice(&ok))))
        .collect();
    let total = slices.iter().map(|s| s.0.len()).sum();
    Ok(run(py, total, move || {
        // Pruned weights are zeroed first, so the threshold sees them as pruned.
        apply_kernel(
            slices
                .iter_mut()
                .map(|(p, mask)| Masked { p, mask })
                .collect(),
        );
        let views: Vec<&[T]> = slices.iter().map(|s| &s.0[..]).collect();
        let ts = thresholds(&views, sparsity, is_global);
        prune_in_place(
            slices
                .into_iter()
                .zip(&ts)
                .map(|((p, mask), t)| PruneInPlace {
                    p,
                    mask,
                    threshold: Each(t.unwrap_or(f64::NAN)),
                })
                .collect(),
        );
        ts
    }))
}

/// One step of gradual pruning, in place: params zeroed where the masks are False, pruned to
/// `sparsity`, the masks narrowed to what is kept. Returns the thresholds.
#[pyfunction]
#[pyo3(signature = (func, params, masks, hyper))]
pub fn gradual_prune(
    py: Python<'_>,
    func: &str,
    params: &Bound<'_, PyAny>,
    masks: &Bound<'_, PyAny>,
    hyper: &Bound<'_, PruneHyper>,
) -> PyResult<Thresholds> {
    let PruneHyper {
        sparsity,
        global_scope: is_global,
    } = *hyper.get();
    guard(func, || {
        let items = Items::read(func, "params", "numpy arrays", params)?;
        match first_dtype(func, "params", &items)? {
            None => {
                Mapping::new(func, "masks", "numpy arrays", masks)?
                    .check_keys(func, "masks", "params", &items)?;
                Ok(vec![])
            }
            Some(dtype) => {
                Ok(dispatch!(dtype => gradual_typed(py, func, &items, masks, sparsity, is_global))?)
            }
        }
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PruneHyper>()?;
    m.add_function(wrap_pyfunction!(prune_network, m)?)?;
    m.add_function(wrap_pyfunction!(magnitude_masks, m)?)?;
    m.add_function(wrap_pyfunction!(apply_masks, m)?)?;
    m.add_function(wrap_pyfunction!(gradual_prune, m)?)
}
