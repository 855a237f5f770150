#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
mod clients;
mod config;
mod connection;
mod diagnostics;
mod error;
mod info;
mod persistence;
mod purge;

pub use cache::RedisCache;
pub use clients::parse_client_list;
pub use config::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, RedisCacheBuilder, RedisCacheConfig};
pub use diagnostics::parse_slowlog;
pub use error::{Error, Result};
pub use info::parse_info;
