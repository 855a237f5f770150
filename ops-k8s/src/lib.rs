//! # ops-k8s
//!
//! `Platform` for Kubernetes (kube): Deployments, StatefulSets and DaemonSets, pods, events, HPA, NetworkPolicy, ConfigMap and Secret, with kubectl's rollout semantics (restart, status, undo, scale).
//!
//! **Status: not implemented yet.** This crate reserves its place in the workspace; it exports
//! nothing and implements no trait until its issue lands. Nothing here pretends to work.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
