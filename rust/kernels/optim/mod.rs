//! Optimizers: one fused pass over memory per step, over every tensor of a call.

pub mod adadelta;
pub mod adafactor;
pub mod adagrad;
pub mod adam;
pub mod adamax;
pub mod asgd;
pub(crate) mod gradient;
pub mod lamb;
pub mod lars;
pub mod layer_adaptive_lr;
pub mod lerp;
pub mod lion;
pub mod momentum;
pub mod muon;
pub mod nadam;
pub mod radam;
pub mod rmsprop;
pub mod rprop;
pub mod schedule_free;
pub mod sgd;
