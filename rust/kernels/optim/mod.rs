//! Optimizers: one fused pass over memory per step, over every tensor of a call.

pub mod adadelta;
pub mod adam;
pub mod asgd;
pub mod lamb;
pub mod lars;
pub mod layer_adaptive_lr;
pub mod momentum;
pub mod radam;
pub mod rprop;
