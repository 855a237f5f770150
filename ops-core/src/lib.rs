#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod archive;
pub mod artifact;
pub mod cache;
pub mod database;
pub mod duration;
mod error;
pub mod evidence;
pub mod incident;
pub mod journal;
pub mod metrics;
pub mod names;
pub mod notify;
pub mod platform;
pub mod probe;
pub mod read_only;
pub mod refs;
pub mod run;
pub mod runbooks;
mod serde_util;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod text;
pub mod tiers;
pub mod vocab;

pub use cache::Cache;
pub use database::Database;
pub use error::{ErrorKind, OpsError, Result};
pub use journal::Journal;
pub use metrics::Metrics;
pub use notify::Notifier;
pub use platform::{Platform, PlatformExt};
pub use probe::Probe;
pub use refs::{
    Identifier, InstanceRef, KeyPattern, Namespace, Pid, ResourceName, TableRef, WorkloadKind,
    WorkloadRef,
};
