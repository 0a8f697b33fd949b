//! Test support: the real control plane and helpers shared by the integration test binaries
//! (each declares `mod support;`) and the benchmarks.
#![allow(dead_code)] // each test binary uses a different part of the support code

pub mod control_plane;
pub mod env;
pub mod operator;
pub mod sim;
pub mod soak;
