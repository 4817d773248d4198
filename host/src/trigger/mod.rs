//! The triggers: what makes the host call a component. A trigger knows the capabilities only
//! through the engine (`crate::engine`); no capability knows a trigger.
//!
//! # Layout
//! - [`http`]: the HTTP trigger (hyper server, routing, instance reuse, `/health`, `/metrics`).
//! - [`queue`]: the queue-poll trigger (claims jobs through the queue component, runs a worker
//!   component's `redwasm:queue/handler`, leases, timeouts, drain).
//!
//! Each trigger has its own typed configuration; `crate::serve` runs every configured trigger
//! under one shutdown signal.

pub mod http;
pub mod queue;

pub use http::{Body, HttpApp, TriggerLimits, run};
