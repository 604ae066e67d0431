//! lagesbild: a federated node for sharing situation pictures (lägesbilder) between partners who
//! cooperate without fully trusting each other. Staff file situation reports at their own node; the
//! node serves them, with its partners' reports, as one situation picture through a documented REST
//! API.
//!
//! Dependencies point one way: `api` calls into `domain` and `store`; `domain` imports neither.

pub mod api;
pub mod audit_retention;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod federation;
pub mod gdpr;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod server;
pub mod store;
