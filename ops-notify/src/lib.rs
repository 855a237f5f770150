//! # ops-notify
//!
//! `Notifier` backends: Slack webhook, PagerDuty Events v2, generic webhook, console; severity routing.
//!
//! **Status: not implemented yet.** This crate reserves its place in the workspace; it exports
//! nothing and implements no trait until its issue lands. Nothing here pretends to work.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
