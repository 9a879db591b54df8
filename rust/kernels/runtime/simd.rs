//! The SIMD targets every kernel is compiled for, named once.
//!
//! `simd! { fn ... }` compiles the function for AVX-512 (F, VL, DQ: every AVX-512 CPU but Xeon
//! Phi has the three; DQ brings 64-bit multiplies and conversions), AVX2+FMA and AVX besides the
//! baseline, and picks the best one the CPU has at run time (through `multiversion`), so one
//! wheel runs on any x86-64 and uses what the machine offers.

/// Wraps a function in `#[multiversion]` with gradfast's target list.
#[macro_export]
macro_rules! simd {
    ($(#[$m:meta])* $vis:vis fn $($rest:tt)*) => {
        $(#[$m])*
        #[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "x86_64+avx"))]
        $vis fn $($rest)*
    };
}
