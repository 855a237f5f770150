//! Dump files of [`super::FakeDatabase`]: the rows of a database as JSON, written the way real
//! backends write theirs (temp file, rename, a `<dump>.sha256` sidecar in `sha256sum` format),
//! so verification, listing and corruption behave as they do against PostgreSQL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::database::BackupInfo;
use crate::error::{ErrorKind, OpsError};
use crate::refs::{Identifier, TableRef};

/// Extension of the fake's dump files.
const EXTENSION: &str = "dump";

/// Rows of one table: the time column's values (ms since the epoch) and the dead rows a delete
/// left until the next `VACUUM`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Rows {
    /// The time column (`None`: any column name is accepted).
    pub(super) column: Option<Identifier>,
    /// One entry per live row: its time, in ms since the epoch.
    pub(super) at: Vec<i64>,
    /// Rows deleted since the last `VACUUM` (not in a dump).
    #[serde(skip)]
    pub(super) dead: u64,
}

/// The tables of one database.
pub(super) type Tables = BTreeMap<TableRef, Rows>;

#[derive(Serialize, Deserialize)]
struct Dump {
    database: String,
    tables: Vec<(TableRef, Rows)>,
}

fn io(operation: &'static str, path: &Path, e: &std::io::Error) -> OpsError {
    let kind = if e.kind() == std::io::ErrorKind::NotFound {
        ErrorKind::NotFound
    } else {
        ErrorKind::Backend
    };
    OpsError::new(kind, "fake", operation, path.display().to_string()).with_detail(e.to_string())
}

fn sidecar(dump: &Path) -> PathBuf {
    let mut name = dump.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// Writes the dump of `database` into `dir` (sidecar first, each through a temp name).
pub(super) fn write(dir: &Path, database: &str, tables: &Tables) -> Result<BackupInfo, OpsError> {
    let operation = "backup";
    let meta = std::fs::metadata(dir).map_err(|e| io(operation, dir, &e))?;
    if !meta.is_dir() {
        return Err(OpsError::new(
            ErrorKind::InvalidInput,
            "fake",
            operation,
            dir.display().to_string(),
        )
        .with_detail("not a directory"));
    }
    let dump = Dump {
        database: database.to_owned(),
        tables: tables.iter().map(|(t, r)| (t.clone(), r.clone())).collect(),
    };
    let bytes = serde_json::to_vec(&dump).map_err(|e| {
        OpsError::new(ErrorKind::Backend, "fake", operation, database.to_owned())
            .with_detail(e.to_string())
    })?;
    let sum = sha256_hex(&bytes);
    let stamp = jiff::Timestamp::now().as_nanosecond();
    let name = format!("{database}-{stamp}.{EXTENSION}");
    let path = dir.join(&name);
    let write_renamed = |to: &Path, content: &[u8]| {
        let tmp = dir.join(format!(".{name}.partial"));
        std::fs::write(&tmp, content).map_err(|e| io(operation, &tmp, &e))?;
        std::fs::rename(&tmp, to).map_err(|e| io(operation, to, &e))
    };
    write_renamed(&sidecar(&path), format!("{sum}  {name}\n").as_bytes())?;
    write_renamed(&path, &bytes)?;
    let mut info = BackupInfo::new(&path, sum, bytes.len() as u64);
    info.created_at = Some(jiff::Timestamp::now());
    info.database = Some(database.to_owned());
    Ok(info)
}

/// The dump at `path` checked against its sidecar, and the tables it holds.
///
/// `NotFound` when the dump or its sidecar is missing; `Conflict` on a checksum mismatch.
pub(super) fn verify(
    operation: &'static str,
    path: &Path,
) -> Result<(BackupInfo, Tables), OpsError> {
    let side = sidecar(path);
    let expected = std::fs::read_to_string(&side).map_err(|e| io(operation, &side, &e))?;
    let expected = expected
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let bytes = std::fs::read(path).map_err(|e| io(operation, path, &e))?;
    let actual = sha256_hex(&bytes);
    if actual != expected {
        return Err(OpsError::new(
            ErrorKind::Conflict,
            "fake",
            operation,
            path.display().to_string(),
        )
        .with_detail("checksum mismatch: the dump is not what its sidecar says"));
    }
    let dump: Dump = serde_json::from_slice(&bytes).map_err(|e| {
        OpsError::new(
            ErrorKind::Backend,
            "fake",
            operation,
            path.display().to_string(),
        )
        .with_detail(format!("not a dump of the fake database: {e}"))
    })?;
    let mut info = BackupInfo::new(path, actual, bytes.len() as u64);
    info.created_at = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok());
    info.database = Some(dump.database);
    Ok((info, dump.tables.into_iter().collect()))
}

/// Dumps with a sidecar in `dir` (their checksums read from the sidecars); `None` when `dir`
/// does not exist.
pub(super) fn list(dir: &Path) -> Result<Option<Vec<BackupInfo>>, OpsError> {
    let operation = "list_backups";
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(operation, dir, &e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io(operation, dir, &e))?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if hidden || path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        let Ok(sum) = std::fs::read_to_string(sidecar(&path)) else {
            continue;
        };
        let meta = std::fs::metadata(&path).map_err(|e| io(operation, &path, &e))?;
        let sum = sum.split_whitespace().next().unwrap_or_default().to_owned();
        let mut info = BackupInfo::new(&path, sum, meta.len());
        info.created_at = meta
            .modified()
            .ok()
            .and_then(|t| jiff::Timestamp::try_from(t).ok());
        info.database = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.rsplit_once('-'))
            .map(|(db, _)| db.to_owned());
        out.push(info);
    }
    Ok(Some(out))
}
