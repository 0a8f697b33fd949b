//! The `RedisInstance` controller (`cds-redis-operator run`).
//!
//! Each reconcile is observe → plan → act → report, one file each:
//! - [`observe`]: the facts: the object, its Secrets, the claims of other objects, and what the
//!   planner asks to see of the cloud (the account's shared listing, a per-UUID query);
//! - [`plan`]: a pure function from the facts to the one next step (or what to look at first);
//! - [`act`]: carries the step out (at most one cloud write; the create protocol in `create.rs`);
//! - [`status`]: pure: how the reconcile ended becomes the phase and the conditions;
//! - [`reconcile`]: the pipeline and the error policy; [`writes`]: the only two writes to the
//!   object (status and finalizer), both conditional;
//! - [`run`]: settings, leader election, watches and the controller;
//! - around them: [`context`] (shared state), [`claims`] (who owns which instance),
//!   [`secrets`], [`accounts`], [`events`], [`shard`] (which objects this process owns).
//!
//! [`schedule`] is the `RedisBackupSchedule` controller, started next to this one.

pub mod accounts;
pub mod act;
pub mod backup;
pub mod claims;
pub mod configs;
pub mod context;
mod create;
pub mod events;
pub mod observe;
pub mod plan;
pub mod providerconfig;
pub mod reconcile;
pub mod run;
pub mod schedule;
pub mod secrets;
pub mod shard;
pub mod status;
pub mod writes;

pub use context::Context;
pub use reconcile::{error_policy, reconcile};
pub use run::{RunConfig, RunError, run, run_with_client};
