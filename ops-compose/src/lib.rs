#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod compose_file;
mod config;
mod copy;
mod error;
mod exec;
pub mod labels;
mod lifecycle;
mod logs;
mod platform;
mod prune;
mod raw;
mod recreate;
// §resources (issue 14)
mod resources;
mod scale;
mod status;
mod usage;

pub use config::{ComposeConfig, ComposePlatformBuilder};
pub use error::{Error, Result};
pub use lifecycle::StartedService;
pub use platform::ComposePlatform;
pub use prune::{DiskUsage, PruneImagesOptions, PruneReport};
pub use recreate::{RecreateOptions, RecreatePoint};
pub use status::MISSING_CONDITION;

/// The bollard client type accepted by [`ComposePlatformBuilder::with_client`].
pub use bollard::Docker;
