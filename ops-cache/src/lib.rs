//! # ops-cache
//!
//! `Cache` for Redis (redis-rs): typed INFO, SCAN + UNLINK purges that never block the server, snapshots, client management; standalone and cluster.
//!
//! **Status: not implemented yet.** This crate reserves its place in the workspace; it exports
//! nothing and implements no trait until its issue lands. Nothing here pretends to work.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
