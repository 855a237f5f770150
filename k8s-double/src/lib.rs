#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod cluster;
mod commands;
mod containerfs;
mod controllers;
mod defaults;
mod discovery;
mod error;
mod events;
mod exec;
mod json;
mod kubectl;
mod logs;
mod meta;
mod metrics;
mod patch;
mod podlogs;
mod quantity;
mod requests;
mod resources;
mod routes;
mod selector;
mod server;
mod store;
mod tarcmd;
mod watch;

pub use cluster::Cluster;
pub use controllers::PodFault;
pub use error::{ApiError, Error, Result};
pub use kubectl::{Kubectl, KubectlRun};
pub use requests::RecordedRequest;
pub use server::{ApiServer, RunningServer, kubeconfig, serve_until_stdin_closes};
