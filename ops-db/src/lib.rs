#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backup;
mod capabilities;
mod config;
mod connections;
mod database;
mod error;
mod journal_codec;
mod journal_pg;
mod journal_sqlite;
mod maintenance;
mod retention;
mod sessions;
mod settings;
mod stats;

pub use backup::{BackupProgress, DUMP_EXTENSION, SIDECAR_SUFFIX};
pub use config::{
    ENV_MAINTENANCE_DATABASE, ENV_STATEMENT_TIMEOUT_MS, ENV_URL, PgDatabaseBuilder,
    PgDatabaseConfig,
};
pub use database::PgDatabase;
pub use error::{Error, Result};
pub use journal_pg::PgJournal;
pub use journal_sqlite::SqliteJournal;
