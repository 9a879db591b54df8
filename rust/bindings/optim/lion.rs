//! `Lion` (the engine of its `update`).

use gradfast_kernels::optim::lion::{
    lion as kernel, lion_8bit as kernel_8bit, LionArgs, LionTensor,
};
use gradfast_kernels::{Real, Store};
use pyo3::prelude::*;

use super::{Arrays, Dicts, Hypers};
use crate::arrays::Elem;
use crate::error::Result;
use crate::{hyper_class, step_binding};

hyper_class! {
    /// `gradfast.Lion`'s hyper-parameters.
    LionHyper {
        learning_rate: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        bf16_state: bool,
        rounding_seed: Option<u64>,
    }
}

impl LionHyper {
    fn args(&self) -> LionArgs {
        LionArgs {
            learning_rate: self.learning_rate,
            beta1: self.beta1,
            beta2: self.beta2,
            weight_decay: self.weight_decay,
        }
    }
}

fn tensors<'a, P, S>(
    arrays: Vec<Arrays<'a, P, S, 1>>,
    seed: Option<u64>,
    step: u64,
) -> Vec<LionTensor<'a, P, S>> {
    let tensors = arrays.into_iter().map(|a| {
        let draws = a.draws(seed, step);
        let [exp_avg] = a.slots;
        LionTensor {
            p: a.p,
            g: a.g,
            exp_avg,
            draws,
        }
    });
    tensors.collect()
}

fn lion_typed<C: Real, P: Elem + Store<C>, S: Elem + Store<C>>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<LionHyper>,
    step: u64,
) -> Result<()> {
    dicts.run::<P, S, 1, _>(py, ["exp_avg"], h, |arrays, g| {
        kernel::<C, P, S>(tensors(arrays, h.rounding_seed, step), &g.args())
    })
}

fn lion_8bit_typed(py: Python<'_>, dicts: &Dicts, h: &Hypers<LionHyper>) -> Result<()> {
    dicts.run_8bit(
        py,
        ["exp_avg"],
        ["exp_avg_absmax"],
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
    /// One Lion step with 8-bit state over a dict of float32 parameters, in place, committed
    /// to `steps`.
    lion_8bit(LionHyper) |py, dicts, h, _step| lion_8bit_typed(py, dicts, h)
}

step_binding! {
    /// One Lion step over a dict of parameters, in place, committed to `steps`.
    lion(LionHyper, bf16_state: bf16_state) => lion_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LionHyper>()?;
    m.add_function(wrap_pyfunction!(lion, m)?)?;
    m.add_function(wrap_pyfunction!(lion_8bit, m)?)
}
