//! # ops-compose
//!
//! `Platform` for Docker Compose projects over the Docker Engine API (bollard): services found by compose labels, restart/stop/start, scale, recreate, logs, exec, copy.
//!
//! **Status: not implemented yet.** This crate reserves its place in the workspace; it exports
//! nothing and implements no trait until its issue lands. Nothing here pretends to work.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
