//! The optimizers' steps over a whole dict of parameters in one call, one file each.
//!
//! Every stateful step has one shape, declared with [`step_binding!`]: the binding takes the
//! optimizer's [`StepState`], its parameters and gradients, the fresh state Python made for a
//! first step (or `None`), and its hyper-parameters. Under the state's lock it reads the state
//! and the step count, checks every array ([`Dicts::run`]), runs the kernel and commits the
//! state and the count before returning (see [`StepState`]). An optimizer file supplies the
//! hyper-parameter class, the storage layouts it takes and a typed function that maps the
//! checked slices onto its kernel's tensors.
//!
//! Parameter groups: a step may take, besides the optimizer's own hyper-parameters, one
//! hyper-parameter object per group and a dict of the keys each group claims ([`Hypers`]).
//! Every array is still checked before any is written, and the kernel runs once per group
//! present in the call, all within the same release of the GIL: a group changes no pass count.

use std::sync::Mutex;

use gradfast_kernels::runtime::store::Draws;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

mod adadelta;
mod adafactor;
mod adagrad;
mod adam;
mod adamax;
mod asgd;
mod lamb;
mod lars;
mod layer_adaptive_lr;
mod lion;
mod momentum;
mod muon;
mod nadam;
mod quantized;
mod radam;
mod rmsprop;
mod rprop;
mod schedule_free;
mod sgd;

use super::run;
use super::steps::{StepState, MAX_STEP};
use crate::arrays::{
    float_dtype, same_shape, storage_dtype, Call, Dtype, Elem, Items, Layout, Mapping, Name,
    Storage,
};
use crate::error::{Error, Result};

/// The checked slices of one parameter: itself and its gradient stored as `P`, its `N`
/// state slots as `S` (empty for a slot the parameter does not keep), its shape, and where
/// its elements start in the concatenation of the call's parameters (in the order of `params`).
pub struct Arrays<'a, P, S, const N: usize> {
    pub p: &'a mut [P],
    pub g: &'a [P],
    pub slots: [&'a mut [S]; N],
    pub shape: &'a [usize],
    pub at: u64,
}

impl<P, S, const N: usize> Arrays<'_, P, S, N> {
    /// How the state of step `step` is rounded: stochastically from `seed` when there is one.
    pub fn draws(&self, seed: Option<u64>, step: u64) -> Draws {
        seed.map_or(Draws::NEAREST, |seed| {
            Draws::stochastic(seed, step, self.at)
        })
    }
}

/// The hyper-parameters of a step: the optimizer's own, and those of its parameter groups
/// (empty without groups). Dereferences to the optimizer's own, which decide what is the same
/// for every group (the state slots, the storage layout).
pub struct Hypers<'h, H> {
    own: &'h H,
    groups: Vec<&'h H>,
}

impl<'h, H> Hypers<'h, H> {
    pub fn new(own: &'h H, groups: Vec<&'h H>) -> Self {
        Hypers { own, groups }
    }

    /// The hyper-parameters of group number `g` (0: the optimizer's own, `i + 1`: group `i`).
    pub fn of(&self, g: usize) -> &'h H {
        if g == 0 {
            self.own
        } else {
            self.groups[g - 1]
        }
    }
}

impl<H> std::ops::Deref for Hypers<'_, H> {
    type Target = H;
    fn deref(&self) -> &H {
        self.own
    }
}

/// The shapes of a parameter's state slots (`None`: a slot it does not keep), or the error
/// refusing the parameter's shape; given the parameter's name and shape.
pub type SlotShapes<'f, 'py, const N: usize> =
    &'f dyn Fn(&Name<'py>, &[usize]) -> Result<[Option<Vec<usize>>; N]>;

/// The dict arguments of an optimizer step: `params` read into a list, `gradients` and
/// `state` looked up by its keys, and each parameter's group (0: the optimizer's own
/// hyper-parameters, `i + 1`: group `i`; see [`Dicts::group_indices`]).
pub struct Dicts<'a, 'py> {
    func: &'a str,
    params: Items<'py>,
    grads: Mapping<'py>,
    state: Mapping<'py>,
    /// each parameter's group, in the order of `params`; empty for a step without groups
    group: Vec<usize>,
    groups: usize,
}

impl<'a, 'py> Dicts<'a, 'py> {
    fn new(
        func: &'a str,
        params: &Bound<'py, PyAny>,
        grads: &Bound<'py, PyAny>,
        state: &Bound<'py, PyAny>,
        groups: Option<(&Bound<'py, PyDict>, usize)>,
    ) -> Result<Self> {
        let params = Items::read(func, "params", "numpy arrays", params)?;
        let grads = Mapping::new(func, "gradients", "numpy arrays", grads)?;
        let state = Mapping::new(func, "the optimizer state", "state dicts", state)?;
        let mut group = Vec::new();
        let mut count = 0;
        if let Some((claimed, n)) = groups {
            count = n;
            group = vec![0; params.len()];
            for ((key, _), g) in params.items.iter().zip(&mut group) {
                if let Some(i) = claimed.get_item(key).map_err(Error::Python)? {
                    let i: usize = i.extract().map_err(Error::Python)?;
                    if i >= n {
                        return Err(Error::Value(format!(
                            "{func}: the group of params[{key}] must be < {n}, got {i}"
                        )));
                    }
                    *g = i + 1;
                }
            }
        }
        let dicts = Dicts {
            func,
            params,
            grads,
            state,
            group,
            groups: count,
        };
        // With equal lengths, finding every key of `params` (in `run`) proves equal keys.
        if dicts.grads.len()? != dicts.params.len() {
            return Err(dicts.grads_key_error());
        }
        if dicts.state.len()? != dicts.params.len() {
            return Err(dicts.state_key_error());
        }
        Ok(dicts)
    }

    /// Each parameter's group, in the order of `params` (all 0 without groups).
    fn group_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.group.iter().copied().chain(std::iter::repeat(0))
    }

    fn grads_key_error(&self) -> Error {
        self.grads
            .key_error(self.func, "gradients", "params", &self.params)
    }

    /// Keys of the state unlike those of `params` are named as `params` missing or having
    /// keys: the state is the optimizer's, the params are the caller's.
    fn state_key_error(&self) -> Error {
        match self.state.items() {
            Ok(items) => {
                let state = Items {
                    map: self.state.clone(),
                    items,
                };
                self.params
                    .map
                    .key_error(self.func, "params", "the optimizer state", &state)
            }
            Err(e) => e,
        }
    }

    /// The storage layout of the step, from the dtype of the first parameter and whether the
    /// optimizer keeps bfloat16 state; `None` for an empty dict.
    pub fn layout(&self, bf16_state: bool) -> Result<Option<Layout>> {
        let Some((key, p)) = self.params.items.first() else {
            return Ok(None);
        };
        let name = Name::Item("params", key.clone());
        Ok(Some(
            match (storage_dtype(self.func, &name, p)?, bf16_state) {
                (Storage::F32, false) => Layout::F32,
                (Storage::F64, false) => Layout::F64,
                (Storage::F32, true) => Layout::F32Bf16,
                (Storage::Bf16, true) => Layout::Bf16,
                (Storage::Bf16, false) => Layout::Bf16F32,
                (Storage::F64, true) => {
                    return Err(Error::Type(format!(
                    "{}: {name} must have dtype float32 or bfloat16 with state_dtype='bfloat16', \
                     got float64 (bfloat16 state is computed in float32)",
                    self.func
                )))
                }
            },
        ))
    }

    /// The dtype of the first parameter, for optimizers of float32/float64 only; `None` for
    /// an empty dict.
    pub fn dtype(&self) -> Result<Option<Dtype>> {
        match self.params.items.first() {
            None => Ok(None),
            Some((key, p)) => {
                float_dtype(self.func, &Name::Item("params", key.clone()), p).map(Some)
            }
        }
    }

    /// Checks every array of the step (the state slots named `slots`, each shaped as its
    /// parameter), then runs `kernel(tensors, hyper)` on their slices, once per group present
    /// (each with that group's hyper-parameters), all without the GIL when the step is large.
    pub fn run<P: Elem, S: Elem, const N: usize, H: Sync>(
        &self,
        py: Python<'py>,
        slots: [&'static str; N],
        hypers: &Hypers<'_, H>,
        kernel: impl FnMut(Vec<Arrays<'_, P, S, N>>, &H) + Send,
    ) -> Result<()> {
        let like_p = |_: &Name<'py>, shape: &[usize]| Ok([(); N].map(|_| Some(shape.to_vec())));
        self.run_shaped(py, slots, &like_p, hypers, kernel)
    }

    /// [`Dicts::run`] for an optimizer whose slots are shaped otherwise than its parameters
    /// (Adafactor's factors) or that takes only some shapes (Muon's matrices): `shapes` gives
    /// each parameter's slot shapes, or refuses it.
    pub fn run_shaped<P: Elem, S: Elem, const N: usize, H: Sync>(
        &self,
        py: Python<'py>,
        slots: [&'static str; N],
        shapes: SlotShapes<'_, 'py, N>,
        hypers: &Hypers<'_, H>,
        mut kernel: impl FnMut(Vec<Arrays<'_, P, S, N>>, &H) + Send,
    ) -> Result<()> {
        let func = self.func;
        let slot_keys = slots.map(|s| slot_key(py, s));
        let mut call = Call::new(func);
        let mut checked = Vec::with_capacity(self.params.len());
        for (key, p) in &self.params.items {
            let p_name = Name::Item("params", key.clone());
            let p = call.output::<P>(p_name.clone(), p)?;
            let slot_shapes = shapes(&p_name, p.shape())?;
            let g = self.grads.get(key)?.ok_or_else(|| self.grads_key_error())?;
            let g_name = Name::Item("gradients", key.clone());
            let g = call.input::<P>(g_name.clone(), &g)?;
            same_shape(func, &g_name, g.shape(), p.shape())?;
            let s = self.state.get(key)?.ok_or_else(|| self.state_key_error())?;
            let s = Mapping::new(func, "each optimizer state entry", "state arrays", &s)?;
            let mut arrays = [(); N].map(|_| None);
            let wanted = slot_keys.iter().zip(&slots).zip(slot_shapes);
            for (((slot, &slot_name), want), array) in wanted.zip(&mut arrays) {
                let Some(want) = want else {
                    continue;
                };
                let name = Name::Slot("state", key.clone(), slot_name);
                let Some(a) = s.get(slot.as_any())? else {
                    return Err(Error::Value(format!(
                        "{func}: {name} must be a state array, got it missing"
                    )));
                };
                let a = call.output::<S>(name.clone(), &a)?;
                same_shape(func, &name, a.shape(), &want)?;
                *array = Some(a);
            }
            checked.push((p, g, arrays));
        }
        let ok = call.check_overlaps()?;
        let mut total = 0;
        let tensors: Vec<Arrays<'_, P, S, N>> = checked
            .iter_mut()
            .map(|(p, g, slots)| {
                let (shape, p) = p.shape_and_slice(&ok);
                let at = total as u64;
                total += p.len();
                Arrays {
                    p,
                    g: g.slice(&ok),
                    slots: slots
                        .each_mut()
                        .map(|a| a.as_mut().map_or(&mut [][..], |a| a.slice(&ok))),
                    shape,
                    at,
                }
            })
            .collect();
        if tensors.is_empty() {
            return Ok(());
        }
        let (groups, group) = (self.groups, &self.group);
        run(py, total, || {
            if groups == 0 {
                return kernel(tensors, hypers.of(0));
            }
            let mut by_group: Vec<Vec<_>> = (0..=groups).map(|_| Vec::new()).collect();
            for (t, &g) in tensors.into_iter().zip(group) {
                by_group[g].push(t);
            }
            for (g, tensors) in by_group.into_iter().enumerate() {
                if !tensors.is_empty() {
                    kernel(tensors, hypers.of(g))
                }
            }
        });
        Ok(())
    }
}

/// The Python string of a state slot's name, made once (interned, as Python's own literal
/// names are): a step looks its slots up without building strings, and a state dict made in
/// Python finds the very key object.
fn slot_key<'py>(py: Python<'py>, name: &'static str) -> Bound<'py, PyString> {
    static KEYS: Mutex<Vec<(&str, Py<PyString>)>> = Mutex::new(Vec::new());
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, key)) = keys.iter().find(|(n, _)| *n == name) {
        return key.bind(py).clone();
    }
    let key = PyString::intern(py, name);
    keys.push((name, key.clone().unbind()));
    key
}

/// The body of every step binding: under the lock of `steps`, its state (or `fresh` when it
/// has none) and the next step number; the dicts read; `step(dicts, step_number)` run; then
/// the state and the count committed.
pub fn take_step<'py>(
    func: &str,
    steps: &Bound<'py, StepState>,
    params: &Bound<'py, PyAny>,
    gradients: &Bound<'py, PyAny>,
    fresh: Option<Bound<'py, PyAny>>,
    groups: Option<(&Bound<'py, PyDict>, usize)>,
    step: impl FnOnce(&Dicts<'_, 'py>, u64) -> Result<()>,
) -> PyResult<()> {
    take_step_with_extra(
        func,
        steps,
        params,
        gradients,
        fresh,
        groups,
        |dicts, n, _| step(dicts, n),
    )
}

/// [`take_step`] for an optimizer that commits an `extra` object with every step (NAdam's
/// `mu_product`): `step(dicts, step_number, extra)` may replace it.
pub fn take_step_with_extra<'py>(
    func: &str,
    steps: &Bound<'py, StepState>,
    params: &Bound<'py, PyAny>,
    gradients: &Bound<'py, PyAny>,
    fresh: Option<Bound<'py, PyAny>>,
    groups: Option<(&Bound<'py, PyDict>, usize)>,
    step: impl FnOnce(&Dicts<'_, 'py>, u64, &mut Bound<'py, PyAny>) -> Result<()>,
) -> PyResult<()> {
    super::guard(func, || {
        let mut taking = steps.get().take(steps.py());
        if !taking.state.is_truthy()? {
            if let Some(fresh) = fresh {
                taking.state = fresh;
            }
        }
        if taking.step >= MAX_STEP {
            return Err(Error::Value(format!(
                "{func}: step must be an int < 2**62 to take another step, got {}",
                taking.step
            ))
            .into());
        }
        taking.step += 1;
        let dicts = Dicts::new(func, params, gradients, &taking.state, groups)?;
        step(&dicts, taking.step, &mut taking.extra)?;
        taking.commit();
        Ok(())
    })
}

/// The parameter groups a step binding takes: one hyper-parameter object per group and the
/// dict `{key: group index}` of the keys they claim (keys not in it take the optimizer's own).
pub type Groups<'py, H> = Option<(Vec<Bound<'py, H>>, Bound<'py, PyDict>)>;

/// The [`Hypers`] of a step, and the claimed keys for [`Dicts::new`].
#[allow(clippy::type_complexity)]
pub fn hypers<'a, 'py, H>(
    own: &'a Bound<'py, H>,
    groups: &'a Groups<'py, H>,
) -> (Hypers<'a, H>, Option<(&'a Bound<'py, PyDict>, usize)>)
where
    H: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync,
{
    match groups {
        None => (Hypers::new(own.get(), Vec::new()), None),
        Some((hs, claimed)) => (
            Hypers::new(own.get(), hs.iter().map(|h| h.get()).collect()),
            Some((claimed, hs.len())),
        ),
    }
}

/// Declares the `#[pyfunction]` of one optimizer's step: its name, its hyper-parameter
/// class and the typed function it dispatches to. `typed::<T>(py, dicts, hypers, step)` serves
/// float32 and float64; with `bf16_state: field`, `typed::<C, P, S>` serves every storage
/// layout (bfloat16 params and state too) and the class's `field` says whether the state is
/// bfloat16. `hypers` are the step's [`Hypers`] (the optimizer's own and its groups').
#[macro_export]
macro_rules! step_binding {
    (@fn $(#[$m:meta])* $name:ident($hyper:ty) |$py:ident, $dicts:ident, $h:ident, $step:ident| $body:expr) => {
        $(#[$m])*
        #[pyo3::pyfunction]
        #[pyo3(signature = (func, steps, params, gradients, fresh, hyper, groups=None))]
        #[allow(clippy::too_many_arguments)]
        pub fn $name<'py>(
            $py: pyo3::Python<'py>,
            func: &str,
            steps: &pyo3::Bound<'py, $crate::bindings::steps::StepState>,
            params: &pyo3::Bound<'py, pyo3::PyAny>,
            gradients: &pyo3::Bound<'py, pyo3::PyAny>,
            fresh: Option<pyo3::Bound<'py, pyo3::PyAny>>,
            hyper: &pyo3::Bound<'py, $hyper>,
            groups: $crate::bindings::optim::Groups<'py, $hyper>,
        ) -> pyo3::PyResult<()> {
            let ($h, claimed) = $crate::bindings::optim::hypers(hyper, &groups);
            let $h = &$h;
            $crate::bindings::optim::take_step(func, steps, params, gradients, fresh, claimed, |$dicts, $step| $body)
        }
    };
    ($(#[$m:meta])* $name:ident($hyper:ty, bf16_state: $field:ident) => $typed:ident) => {
        $crate::step_binding!(@fn $(#[$m])* $name($hyper) |py, dicts, h, step| {
            if let Some(layout) = dicts.layout(h.$field)? {
                $crate::dispatch!(storage layout => $typed(py, dicts, h, step))?;
            }
            Ok(())
        });
    };
    ($(#[$m:meta])* $name:ident($hyper:ty) => $typed:ident) => {
        $crate::step_binding!(@fn $(#[$m])* $name($hyper) |py, dicts, h, step| {
            if let Some(dtype) = dicts.dtype()? {
                $crate::dispatch!(dtype => $typed(py, dicts, h, step))?;
            }
            Ok(())
        });
    };
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    adam::register(m)?;
    adagrad::register(m)?;
    adamax::register(m)?;
    nadam::register(m)?;
    rmsprop::register(m)?;
    momentum::register(m)?;
    muon::register(m)?;
    lamb::register(m)?;
    lars::register(m)?;
    layer_adaptive_lr::register(m)?;
    lion::register(m)?;
    adadelta::register(m)?;
    adafactor::register(m)?;
    asgd::register(m)?;
    radam::register(m)?;
    rprop::register(m)?;
    schedule_free::register(m)?;
    sgd::register(m)
}
