//! What the journal backends share: entry encoding, time keys, error mapping.

use ops_core::journal::{JournalEntry, RunSummary};
use ops_core::{ErrorKind, OpsError};

use crate::error::Error;

/// Entries as stored: the whole entry as JSON plus indexed columns.
pub(crate) fn encode(entry: &JournalEntry) -> Result<String, Error> {
    serde_json::to_string(entry).map_err(|source| Error::Codec {
        operation: "journal_append",
        target: entry.run_id.to_string(),
        source,
    })
}

pub(crate) fn decode(operation: &'static str, text: &str) -> Result<JournalEntry, Error> {
    serde_json::from_str(text).map_err(|source| Error::Codec {
        operation,
        target: "journal".to_owned(),
        source,
    })
}

/// Nanoseconds since the epoch, clamped to `i64` (years 1677..2262).
pub(crate) fn at_ns(at: jiff::Timestamp) -> i64 {
    let ns = at.as_nanosecond();
    i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
}

/// A run summary from its first `RunStarted` entry and last `RunFinished` entry.
pub(crate) fn summary(start: &str, finish: Option<&str>) -> Result<Option<RunSummary>, Error> {
    let mut entries = vec![decode("journal_runs", start)?];
    if let Some(finish) = finish {
        entries.push(decode("journal_runs", finish)?);
    }
    Ok(RunSummary::from_entries(&entries))
}

/// Journal errors as the trait documents them: a store that cannot be read or written is
/// `Unavailable`; timeouts stay `Timeout`; undecodable entries are `Backend`.
pub(crate) fn to_ops(backend: &'static str, err: Error) -> OpsError {
    let kind = match err.kind() {
        ErrorKind::Backend if !matches!(err, Error::Codec { .. }) => ErrorKind::Unavailable,
        other => other,
    };
    OpsError::new(kind, backend, err.operation(), err.target().to_owned()).with_source(err)
}
