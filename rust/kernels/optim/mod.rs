//! Optimizers: one fused pass over memory per step, over every tensor of a call.

pub mod adafactor;
pub mod adam;
pub mod lamb;
pub mod lars;
pub mod layer_adaptive_lr;
pub mod lerp;
pub mod lion;
pub mod momentum;
pub mod muon;
pub mod schedule_free;
