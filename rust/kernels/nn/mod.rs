//! Neural-network layers: batch normalization and inverted dropout.

pub mod batchnorm;
pub mod dropout;
