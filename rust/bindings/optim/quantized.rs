//! The steps of optimizers with 8-bit state (`state_dtype='8bit'`): float32 params, and per
//! parameter either float32 state (arrays of fewer than `MIN_ELEMENTS` elements) or, for each
//! state slot, its `uint8` codes under the slot's name and its float32 block maxima under
//! `<slot>_absmax`.

use gradfast_kernels::runtime::quant8::{blocks, Maxima, Tensor8, MIN_ELEMENTS};
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::{slot_key, Arrays, Dicts, Hypers};
use crate::arrays::{same_shape, Call, Dtype, Mapping, Name};
use crate::bindings::run;
use crate::error::{Error, Result};

/// The checked slices of one parameter with 8-bit state: its codes and block maxima per slot.
pub struct Arrays8<'a, const N: usize> {
    pub p: &'a mut [f32],
    pub g: &'a [f32],
    pub codes: [&'a mut [u8]; N],
    pub maxima: [&'a mut [f32]; N],
}

impl<'a> Arrays8<'a, 1> {
    /// The kernel's tensor of a one-slot state.
    pub fn tensor(self) -> Tensor8<'a, f32> {
        let ([first], [first_max]) = (self.codes, self.maxima);
        Tensor8 {
            p: self.p,
            g: self.g,
            first,
            first_max: Maxima(first_max),
            second: None,
            second_max: None,
        }
    }
}

impl<'a> Arrays8<'a, 2> {
    /// The kernel's tensor of a two-slot state.
    pub fn tensor(self) -> Tensor8<'a, f32> {
        let ([first, second], [first_max, second_max]) = (self.codes, self.maxima);
        Tensor8 {
            p: self.p,
            g: self.g,
            first,
            first_max: Maxima(first_max),
            second: Some(second),
            second_max: Some(Maxima(second_max)),
        }
    }
}

impl<'py> Dicts<'_, 'py> {
    /// Checks every array of an 8-bit step (slots `slots`, maxima `maxima`), then runs
    /// `kernel` on the parameters with float32 state and those with 8-bit state, once per
    /// group present (with that group's hyper-parameters), without the GIL when the step is
    /// large.
    pub fn run_8bit<const N: usize, H: Sync>(
        &self,
        py: Python<'py>,
        slots: [&'static str; N],
        maxima: [&'static str; N],
        hypers: &Hypers<'_, H>,
        mut kernel: impl FnMut(Vec<Arrays<'_, f32, f32, N>>, Vec<Arrays8<'_, N>>, &H) + Send,
    ) -> Result<()> {
        let func = self.func;
        if let Some((key, _)) = self.params.items.first() {
            if self.dtype()? == Some(Dtype::F64) {
                return Err(Error::Type(format!(
                    "{func}: {} must have dtype float32 with state_dtype='8bit', got float64",
                    Name::Item("params", key.clone())
                )));
            }
        }
        let slot_keys = slots.map(|s| slot_key(py, s));
        let max_keys = maxima.map(|s| slot_key(py, s));
        let mut call = Call::new(func);
        let (mut full, mut quant) = (vec![], vec![]);
        let (mut full_group, mut quant_group) = (vec![], vec![]);
        for ((key, p), group) in self.params.items.iter().zip(self.group_indices()) {
            let p = call.output::<f32>(Name::Item("params", key.clone()), p)?;
            let g = self.grads.get(key)?.ok_or_else(|| self.grads_key_error())?;
            let g_name = Name::Item("gradients", key.clone());
            let g = call.input::<f32>(g_name.clone(), &g)?;
            same_shape(func, &g_name, g.shape(), p.shape())?;
            let s = self.state.get(key)?.ok_or_else(|| self.state_key_error())?;
            let s = Mapping::new(func, "each optimizer state entry", "state arrays", &s)?;
            let get = |k: &Bound<'py, PyString>, name: &Name| {
                s.get(k.as_any())?.ok_or_else(|| {
                    Error::Value(format!(
                        "{func}: {name} must be a state array, got it missing"
                    ))
                })
            };
            let n: usize = p.shape().iter().product();
            if n < MIN_ELEMENTS {
                let mut arrays = Vec::with_capacity(N);
                for (k, &slot) in slot_keys.iter().zip(&slots) {
                    let name = Name::Slot("state", key.clone(), slot);
                    let a = call.output::<f32>(name.clone(), &get(k, &name)?)?;
                    same_shape(func, &name, a.shape(), p.shape())?;
                    arrays.push(a);
                }
                full.push((p, g, arrays));
                full_group.push(group);
            } else {
                let (mut codes, mut maxes) = (Vec::with_capacity(N), Vec::with_capacity(N));
                for i in 0..N {
                    let name = Name::Slot("state", key.clone(), slots[i]);
                    let c = call.output::<u8>(name.clone(), &get(&slot_keys[i], &name)?)?;
                    same_shape(func, &name, c.shape(), p.shape())?;
                    let name = Name::Slot("state", key.clone(), maxima[i]);
                    let m = call.output::<f32>(name.clone(), &get(&max_keys[i], &name)?)?;
                    same_shape(func, &name, m.shape(), &[blocks(n)])?;
                    codes.push(c);
                    maxes.push(m);
                }
                quant.push((p, g, codes, maxes));
                quant_group.push(group);
            }
        }
        let ok = call.check_overlaps()?;
        let mut total = 0;
        let mut full_by: Vec<Vec<Arrays<'_, f32, f32, N>>> =
            (0..=self.groups).map(|_| Vec::new()).collect();
        let mut quant_by: Vec<Vec<Arrays8<'_, N>>> =
            (0..=self.groups).map(|_| Vec::new()).collect();
        for ((p, g, slots), &group) in full.iter_mut().zip(&full_group) {
            let (shape, p) = p.shape_and_slice(&ok);
            total += p.len();
            let mut slots = slots.iter_mut().map(|a| a.slice(&ok));
            full_by[group].push(Arrays {
                p,
                g: g.slice(&ok),
                slots: std::array::from_fn(|_| slots.next().unwrap_or_default()),
                shape,
                at: 0, // the float32 state of an 8-bit step draws nothing
            });
        }
        for ((p, g, codes, maxes), &group) in quant.iter_mut().zip(&quant_group) {
            let p = p.slice(&ok);
            total += p.len();
            let mut codes = codes.iter_mut().map(|a| a.slice(&ok));
            let mut maxes = maxes.iter_mut().map(|a| a.slice(&ok));
            quant_by[group].push(Arrays8 {
                p,
                g: g.slice(&ok),
                codes: std::array::from_fn(|_| codes.next().unwrap_or_default()),
                maxima: std::array::from_fn(|_| maxes.next().unwrap_or_default()),
            });
        }
        let hypers: Vec<&H> = (0..full_by.len()).map(|g| hypers.of(g)).collect();
        run(py, total, || {
            for ((full, quant), h) in full_by.into_iter().zip(quant_by).zip(hypers) {
                if !full.is_empty() || !quant.is_empty() {
                    kernel(full, quant, h)
                }
            }
        });
        Ok(())
    }
}
