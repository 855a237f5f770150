#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod compose_file;
mod config;
mod copy;
mod error;
mod exec;
mod export;
mod inspect;
pub mod labels;
mod lifecycle;
mod lockdown;
mod logs;
mod platform;
mod prune;
mod raw;
mod recreate;
mod release;
mod resources;
mod scale;
mod status;
mod usage;

pub use config::{ComposeConfig, ComposePlatformBuilder};
pub use error::{Error, Result};
pub use export::{REDACTED, redact_env};
pub use lifecycle::StartedService;
pub use lockdown::{LOCKDOWN, LOCKDOWN_PROJECT, LOCKDOWN_RECORD, MANAGED_BY};
pub use platform::ComposePlatform;
pub use prune::{DiskUsage, PruneImagesOptions, PruneReport};
pub use recreate::{RecreateOptions, RecreatePoint};
pub use status::MISSING_CONDITION;

/// The bollard client type accepted by [`ComposePlatformBuilder::with_client`].
pub use bollard::Docker;
