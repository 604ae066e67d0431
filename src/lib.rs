//! lagesbild: a federated node for sharing situation pictures (lägesbilder) between partners who
//! cooperate without fully trusting each other. Staff file situation reports at their own node; the
//! node serves them, with its partners' reports, as one situation picture through a documented REST
//! API, and shares each report with partner nodes over mutual TLS, only under signed agreements and
//! only in the form each agreement allows.
//!
//! The map of the crate, from the edges inwards:
//!
//! - `cli`: the command line, one module per family of commands; `main.rs` only dispatches to it.
//! - `server`: start-up: opens the store, loads the identity, binds every edge, runs the workers.
//! - `api`: the user API (`/api/v1`), sign-in, health and the API's OpenAPI document; its operations
//!   (filing, signing, importing a card) are what the console calls too.
//! - `console`: the operator console, server-rendered pages for people in a browser (`/console/`).
//! - `federation`: the mutual-TLS listener and client, partners, the agreement lifecycle between
//!   nodes, sharing through the outbox, delivery, receiving, catch-up and the sweep.
//! - `http`: what every HTTP edge shares: problem+json, body limits, strict JSON, query input,
//!   request observation, routes as data. It imports no edge.
//! - `picture_feed`: the picture's changes as they happen, read once per node for every follower
//!   of the live stream; `webhooks`: those changes POSTed, signed, to subscribers' systems.
//! - `gdpr` and `audit_retention`: the data-protection duties and keeping the audit trail.
//! - `auth`: tokens from the organisation's identity provider, and browser sessions.
//! - `identity`: the node's keys and card on disk, making and rotating them.
//! - `store`: SQLite and PostgreSQL behind one `Store`.
//! - `crypto`: Ed25519 keys, JWS, TLS certificates and the pinned verifiers (ring only).
//! - `config`, `metrics`, `clock`: configuration, the metrics registry, the injected clock.
//! - `domain`: pure types and rules, no I/O: reports, agreements (document, geometry, file format,
//!   status), the policy engine and the views it makes, envelopes, the audit chain, roles.
//!
//! Dependencies point one way, from the edges to the domain: no top-level module imports one that
//! imports it back (`tests/it/layout.rs` checks this on every run), and `domain` imports nothing
//! else of the crate.

pub mod api;
pub mod audit_retention;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod crypto;
pub mod domain;
pub mod federation;
pub mod gdpr;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod picture_feed;
pub mod server;
pub mod store;
pub mod webhooks;
