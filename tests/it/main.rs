//! The integration tests: real nodes on loopback ports, each with its own fresh database, on SQLite
//! and on PostgreSQL (every storage-touching test body runs on both, see [`on_both_backends!`]).
//! One binary, so the suite links once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod agreement_lifecycle;
mod agreements;
mod alerts;
mod audit;
mod auth;
mod backup;
mod cap;
mod catch_up_pause;
mod cli;
mod console;
mod console_browser;
mod contract;
mod demo;
mod deploy;
mod docs;
mod exchange;
mod exchange_recovery;
mod faults;
mod floods;
mod gdpr;
mod health;
mod hostile_partner;
mod layout;
mod leaks;
mod peering;
mod persons;
mod release;
mod replicas;
mod reports;
mod requests;
mod signin;
mod situation;
mod stream;
mod tls_scan;
mod validation;
mod webhooks;
