//! Integration tests: the operator's parts over real HTTP and on a real control plane.

mod support;

mod crd_api;
