//! # ops-db
//!
//! `Database` for PostgreSQL (sqlx) and the `Journal` backends (SQLite, the embedded default, and PostgreSQL), with verified backup and restore.
//!
//! **Status: not implemented yet.** This crate reserves its place in the workspace; it exports
//! nothing and implements no trait until its issue lands. Nothing here pretends to work.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
