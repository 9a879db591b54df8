//! The gradfast kernels: plain Rust over slices, generic over `f32`/`f64`.
//!
//! Kernels receive validated input (equal lengths, no aliasing) and never fail. They split
//! their work into fixed-size chunks run on the gradfast thread pool, so every thread count
//! gives the same bits, and pick AVX-512/AVX2 code paths at run time through `multiversion`.

pub mod adam;
pub mod momentum;
pub mod norm;
pub mod real;
pub mod stream;
pub mod threads;

pub use real::Real;
