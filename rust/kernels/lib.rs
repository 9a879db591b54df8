//! The gradfast kernels: plain Rust over slices, generic over `f32`/`f64`, one module per
//! kernel family (named as the family is in the bindings and the Python API).
//!
//! Kernels receive validated input (equal lengths, no aliasing) and never fail. They split
//! their work into fixed-size chunks run on the gradfast thread pool, so every thread count
//! gives the same bits, and pick AVX-512/AVX2 code paths at run time (see [`runtime`]).

pub mod average;
pub mod clip;
pub mod distributed;
pub mod init;
pub mod linear;
pub mod nn;
pub mod optim;
pub mod prune;
pub mod regularization;
pub mod rnn;
pub mod runtime;

pub use runtime::float::Real;
pub use runtime::store::Store;
