//! Integration tests: the operator's parts over real HTTP and on a real control plane.

mod support;

mod cds_api;
mod controller;
mod crd_api;
mod shipping;
mod soak;
