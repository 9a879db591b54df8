//! `Muon` (the engine of its `update`): every parameter must be a matrix, its shape goes to the
//! kernel; `adjust_lr_fn` and `ns_dtype` cross as the strings Python holds.

use gradfast_kernels::optim::muon::{muon as kernel, AdjustLr, MuonArgs, MuonTensor};
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::{Dicts, Hypers};
use crate::arrays::checks::shape_str;
use crate::arrays::{Float, Name};
use crate::error::{Error, Result};
use crate::{hyper_class, step_binding};

/// A hyper-parameter that is one of a few strings: an enum that crosses as its string.
macro_rules! choice {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($variant),+
        }

        impl<'a, 'py> FromPyObject<'a, 'py> for $name {
            type Error = PyErr;

            fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
                let s: std::borrow::Cow<'_, str> = obj.extract()?;
                match &*s {
                    $($s => Ok($name::$variant),)+
                    _ => Err(pyo3::exceptions::PyValueError::new_err(format!(
                        concat!(stringify!($name), " must be one of ", $("'", $s, "' ",)+ "got {:?}"),
                        s
                    ))),
                }
            }
        }

        impl<'py> IntoPyObject<'py> for $name {
            type Target = PyString;
            type Output = Bound<'py, PyString>;
            type Error = std::convert::Infallible;

            fn into_pyobject(self, py: Python<'py>) -> std::result::Result<Self::Output, Self::Error> {
                Ok(PyString::new(py, match self { $($name::$variant => $s),+ }))
            }
        }
    };
}

choice! {
    /// torch's `adjust_lr_fn` names.
    AdjustLrFn {
        Original = "original",
        MatchRmsAdamw = "match_rms_adamw",
        SpectralUnclamped = "spectral_unclamped",
    }
}

choice! {
    /// The dtype of the Newton-Schulz iteration.
    NsDtype {
        Bfloat16 = "bfloat16",
        Float32 = "float32",
    }
}

hyper_class! {
    /// `gradfast.Muon`'s hyper-parameters.
    MuonHyper {
        learning_rate: f64,
        weight_decay: f64,
        momentum: f64,
        nesterov: bool,
        ns_coefficients: (f64, f64, f64),
        epsilon: f64,
        ns_steps: u32,
        adjust_lr_fn: Option<AdjustLrFn>,
        ns_dtype: NsDtype,
    }
}

fn muon_args(h: &MuonHyper) -> MuonArgs {
    let (a, b, c) = h.ns_coefficients;
    MuonArgs {
        learning_rate: h.learning_rate,
        weight_decay: h.weight_decay,
        momentum: h.momentum,
        nesterov: h.nesterov,
        ns_coefficients: [a, b, c],
        epsilon: h.epsilon,
        ns_steps: h.ns_steps,
        adjust_lr_fn: match h.adjust_lr_fn {
            None | Some(AdjustLrFn::Original) => AdjustLr::Original,
            Some(AdjustLrFn::MatchRmsAdamw) => AdjustLr::MatchRmsAdamw,
            Some(AdjustLrFn::SpectralUnclamped) => AdjustLr::SpectralUnclamped,
        },
        ns_bf16: h.ns_dtype == NsDtype::Bfloat16,
    }
}

fn muon_typed<T: Float>(
    py: Python<'_>,
    dicts: &Dicts,
    h: &Hypers<MuonHyper>,
    _step: u64,
) -> Result<()> {
    let func = dicts.func;
    let matrices = |name: &Name<'_>, shape: &[usize]| {
        if shape.len() != 2 {
            return Err(Error::Value(format!(
                "{func}: {name} must be a 2-D array (Muon orthogonalises matrices: give biases, \
                 norms and other arrays to another optimizer such as AdamW), got shape {}",
                shape_str(shape)
            )));
        }
        Ok([Some(shape.to_vec())])
    };
    dicts.run_shaped::<T, T, 1, _>(py, ["momentum_buffer"], &matrices, h, |arrays, h| {
        let tensors = arrays.into_iter().map(|a| {
            let [momentum_buffer] = a.slots;
            MuonTensor {
                p: a.p,
                g: a.g,
                momentum_buffer,
                rows: a.shape[0],
                cols: a.shape[1],
            }
        });
        kernel(tensors.collect(), &muon_args(h))
    })
}

step_binding! {
    /// One Muon step over a dict of matrices, in place, committed to `steps`.
    muon(MuonHyper) => muon_typed
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MuonHyper>()?;
    m.add_function(wrap_pyfunction!(muon, m)?)
}
