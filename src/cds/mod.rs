//! The CDS (CapitalOnline) Redis API client.
//!
//! - [`signer`]: pure request signing (signature version 1.0, HMAC-SHA1);
//! - [`wire`]: the API's JSON, parsed leniently;
//! - [`error`]: one error type that knows what is retryable;
//! - [`client`]: the HTTP edge (rate limit, timeouts, read retries);
//! - [`backups`]: one shared backup listing per instance and poll period;
//! - [`download`]: fetching a backup file from its (secret) download URL;
//! - [`catalogue`]: flavor → `PaasGoodsId`, cached per region;
//! - [`inventory`]: one shared listing per account and poll period;
//! - [`preflight`]: whether an order can be placed, before it is.

pub mod backups;
pub mod budget;
pub mod catalogue;
pub mod client;
pub mod download;
pub mod error;
pub mod inventory;
pub mod preflight;
pub mod signer;
pub mod wire;

pub use client::{
    CdsClient, ClientConfig, Created, InstanceFilter, SendGate, SharedRateLimiter, VdcFilter, rate_limiter,
};
pub use error::{CdsError, ErrorKind};
pub use signer::Credentials;
