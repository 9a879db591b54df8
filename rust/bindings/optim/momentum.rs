//! `MomentumOptimizer` (the engine of its `update`).

use gradfast_kernels::optim::momentum::{
    momentum as kernel, momentum_8bit as kernel_8bit, MomentumArgs, MomentumTensor,
};
use gradfast_kernels::{Real, Store};
use pyo3::prelude::*;

use super::{Arrays, Dicts, Hypers};
use crate::arrays::Elem;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.MomentumOptimizer`'s hyper-parameters.
    MomentumHyper {
        learning_rate: f64,
        momentum: f64,
        nesterov: bool,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: Option<u64>,
    }
}

impl MomentumHyper {
    fn args(&self) -> MomentumArgs {
        MomentumArgs {
            learning_rate: self.learning_rate,
            momentum: self.momentum,
            nesterov: self.nesterov,
            maximize: self.maximize,
        }
    }
}

fn tensors<'a, P, S>(
    arrays: Vec<Arrays<'a, P, S, 1>>,
    seed: Option<u64>,
    step: u64,
) -> Vec<MomentumTensor<'a, P, S>> {
    let tensors = arrays.into_iter().map(|a| {
        let draws = a.draws(seed, step);
        let [v] = a.slots;
        MomentumTensor {
            p: a.p,
            g: a.g,
            v,
            draws,
        }
    });
    tensors.collect()
}

fn momentum_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<MomentumHyper>,
    step: u64,
) -> Result<()> {
    dicts.run::<P, S, 1, _>(py, ["velocity"], h, |arrays, g| {
        kernel::<C, P, S>(tensors(arrays, h.rounding_seed, step), &g.args())
    })
}

fn momentum_8bit_typed(py: Python<'_>, dicts: &Dicts, h: &Hypers<MomentumHyper>) -> Result<()> {
    dicts.run_8bit(
        py,
        ["velocity"],
        ["velocity_absmax"],
        h,
        |full, quantized, h| {
            let args = h.args();
            kernel::<f32, f32, f32>(tensors(full, None, 0), &args);
            kernel_8bit(quantized.into_iter().map(|a| a.tensor()).collect(), &args);
        },
    )
}

step_binding! {
    @fn
    /// One momentum step with 8-bit state over a dict of float32 parameters, in place,
    /// committed to `steps`.
    momentum_8bit(MomentumHyper) |py, dicts, h, _step| momentum_8bit_typed(py, dicts, h)
}

step_binding! {
    /// One momentum step over a dict of parameters, in place, committed to `steps`.
    momentum(MomentumHyper, bf16_state: bf16_state) => momentum_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MomentumHyper>()?;
    m.add_function(wrap_pyfunction!(momentum, m)?)?;
    m.add_function(wrap_pyfunction!(momentum_8bit, m)?)
}
