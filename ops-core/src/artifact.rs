//! Files a run writes for the record (a cache dump, a copied directory): written whole or not
//! at all, durable once the call returns, each with a `<file>.sha256` sidecar in the format
//! `sha256sum -c` checks.
//!
//! A file appears under its final name only complete and fsynced, after its sidecar; an
//! existing file is never replaced; the directory is fsynced so the names survive a crash.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use crate::database::BackupInfo;
use crate::error::{ErrorKind, OpsError};

mod writer;
pub use writer::ArtifactWriter;

const BACKEND: &str = "artifact";

/// The sidecar of `file`: the same path with `.sha256` appended.
///
/// # Examples
/// ```
/// use std::path::Path;
/// let side = ops_core::artifact::sidecar_path(Path::new("/backups/redis.rdb"));
/// assert_eq!(side, Path::new("/backups/redis.rdb.sha256"));
/// ```
pub fn sidecar_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// A sidecar's text for `name` (`sha256sum`'s format: digest, two spaces, file name).
///
/// # Examples
/// ```
/// let line = ops_core::artifact::sidecar_line(&"ab".repeat(32), "redis.rdb");
/// assert_eq!(line, format!("{}  redis.rdb\n", "ab".repeat(32)));
/// ```
pub fn sidecar_line(sha256: &str, name: &str) -> String {
    format!("{sha256}  {name}\n")
}

/// The checksum a sidecar holds: its first word when that is 64 hex digits (lowercased).
///
/// # Examples
/// ```
/// use ops_core::artifact::parse_sidecar;
/// let sum = "AB".repeat(32);
/// assert_eq!(parse_sidecar(&format!("{sum}  dump.rdb\n")), Some("ab".repeat(32)));
/// assert_eq!(parse_sidecar("not a checksum"), None);
/// ```
pub fn parse_sidecar(text: &str) -> Option<String> {
    let sum = text.split_whitespace().next()?.to_ascii_lowercase();
    (sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit())).then_some(sum)
}

/// Lowercase hex SHA-256 of `bytes`.
///
/// # Examples
/// ```
/// assert_eq!(
///     ops_core::artifact::sha256_hex(b""),
///     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Write `contents` to `dir/name` and its sidecar, durably: both go to temporary files in
/// `dir`, are fsynced and take their final names (sidecar first) without replacing anything,
/// then `dir` is fsynced. `dir` is created when missing. The same path as an
/// [`ArtifactWriter`] fed `contents` at once.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when `name` is not a plain file name (no `/`, not hidden, not
/// `.`/`..`, no NUL) or when `dir/name` or its sidecar already exists; [`ErrorKind::Backend`]
/// for I/O errors (nothing is left under the final names).
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("opsbook-doc-{}", std::process::id()));
/// let info = ops_core::artifact::write_verified(&dir, "hello.txt", b"hello".to_vec()).await?;
/// assert_eq!(info.bytes, 5);
/// assert_eq!(ops_core::artifact::verify(&info.path).await?.sha256, info.sha256);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
pub async fn write_verified(
    dir: &Path,
    name: &str,
    contents: Vec<u8>,
) -> Result<BackupInfo, OpsError> {
    let mut writer = ArtifactWriter::create(dir, name).await?;
    writer
        .write_all(&contents)
        .await
        .map_err(io_error("write", &writer.tmp_file))?;
    writer.finish().await
}

/// Recompute the checksum of `path` and compare it with its sidecar.
///
/// # Errors
/// [`ErrorKind::NotFound`] when the file or its sidecar is missing;
/// [`ErrorKind::InvalidInput`] when the sidecar holds no checksum; [`ErrorKind::Backend`]
/// when the file does not match it (it changed or is damaged) or cannot be read.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("opsbook-doc-verify-{}", std::process::id()));
/// let info = ops_core::artifact::write_verified(&dir, "a.bin", vec![1, 2, 3]).await?;
/// std::fs::write(&info.path, [9]).unwrap();
/// assert!(ops_core::artifact::verify(&info.path).await.is_err());
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
pub async fn verify(path: &Path) -> Result<BackupInfo, OpsError> {
    let target = path.display().to_string();
    let io = |e: std::io::Error, what: &Path| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Backend
        };
        OpsError::new(kind, BACKEND, "verify", what.display().to_string())
            .with_detail(e.to_string())
    };
    let side = sidecar_path(path);
    let text = tokio::fs::read_to_string(&side)
        .await
        .map_err(|e| io(e, &side))?;
    let expected = parse_sidecar(&text).ok_or_else(|| {
        OpsError::invalid(
            "verify",
            side.display().to_string(),
            "the sidecar does not hold a sha256 checksum",
        )
    })?;
    let file = path.to_owned();
    let (actual, bytes) = tokio::task::spawn_blocking(move || sha256_file(&file))
        .await
        .map_err(|e| {
            OpsError::new(ErrorKind::Backend, BACKEND, "verify", target.clone())
                .with_detail(e.to_string())
        })?
        .map_err(|e| io(e, path))?;
    if actual != expected {
        return Err(
            OpsError::new(ErrorKind::Backend, BACKEND, "verify", target).with_detail(format!(
                "sha256 {actual} does not match the sidecar's {expected}: the file changed or is damaged"
            )),
        );
    }
    let mut info = BackupInfo::new(path, actual, bytes);
    info.created_at = Some(jiff::Timestamp::now());
    Ok(info)
}

fn check_name(name: &str) -> Result<(), OpsError> {
    let bad = |why: &str| Err(OpsError::invalid("write", name, why));
    if name.is_empty() || name.len() > 200 {
        return bad("a file name has 1 to 200 bytes");
    }
    if name.contains(['/', '\\', '\0']) || name.chars().any(char::is_control) {
        return bad("a file name cannot hold '/', '\\', NUL or control characters");
    }
    if name.starts_with('.') {
        return bad("a file name cannot start with '.' (hidden, '.' or '..')");
    }
    Ok(())
}

/// The SHA-256 (hex) and length of the file at `path`, read in 1 MiB chunks.
fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((hex(&hasher.finalize()), len));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

/// An [`OpsError`] maker for an I/O error of `operation` on `what`.
fn io_error(operation: &'static str, what: &Path) -> impl FnOnce(std::io::Error) -> OpsError {
    let what = what.display().to_string();
    move |e| OpsError::new(ErrorKind::Backend, BACKEND, operation, what).with_detail(e.to_string())
}

/// Write `contents` to the new file `path` (never an existing one) and fsync it.
pub(crate) fn write_synced(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_written_file_verifies_and_an_existing_one_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let info = write_verified(dir.path(), "dump.rdb", b"REDIS0011".to_vec())
            .await
            .unwrap();
        assert_eq!(info.path, dir.path().join("dump.rdb"));
        assert_eq!(verify(&info.path).await.unwrap().sha256, info.sha256);
        let again = write_verified(dir.path(), "dump.rdb", b"other".to_vec())
            .await
            .unwrap_err();
        assert_eq!(again.kind(), ErrorKind::InvalidInput);
        assert_eq!(std::fs::read(&info.path).unwrap(), b"REDIS0011");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[tokio::test]
    async fn names_that_leave_the_folder_or_hide_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["", "../x", "a/b", ".hidden", "..", "a\0b", "a\nb"] {
            let err = write_verified(dir.path(), name, vec![1]).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name:?}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_changed_file_or_a_missing_sidecar_fails_verification() {
        let dir = tempfile::tempdir().unwrap();
        let info = write_verified(dir.path(), "a.bin", vec![1, 2, 3])
            .await
            .unwrap();
        std::fs::write(&info.path, [1, 2, 4]).unwrap();
        assert_eq!(
            verify(&info.path).await.unwrap_err().kind(),
            ErrorKind::Backend
        );
        std::fs::remove_file(sidecar_path(&info.path)).unwrap();
        assert_eq!(
            verify(&info.path).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
