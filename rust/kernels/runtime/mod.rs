//! The runtime every kernel family shares: the thread pool and its chunking, SIMD targets,
//! deterministic reductions, element types and their storage (bfloat16), the random stream,
//! scratch memory, matrix products, and the bandwidth probe.

pub mod bf16;
pub mod bundle;
pub mod float;
pub mod matmul;
pub mod pool;
pub mod probe;
pub mod quant8;
pub mod random;
pub mod reduce;
pub mod scratch;
pub mod simd;
pub mod store;
