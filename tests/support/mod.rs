//! Test support: the real control plane and helpers shared by the integration tests.
#![allow(dead_code)] // each test module uses a different part of the support code

pub mod control_plane;
pub mod operator;
pub mod sim;
pub mod soak;
