//! # ops-probes
//!
//! `Probe` and `Metrics` backends (reqwest): HTTP with conditions, TCP, TLS certificate, Prometheus queries, and probe combinators.
//!
//! **Status: not implemented yet.** This crate reserves its place in the workspace; it exports
//! nothing and implements no trait until its issue lands. Nothing here pretends to work.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
