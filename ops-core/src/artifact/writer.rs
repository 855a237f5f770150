//! [`ArtifactWriter`]: a record file written as it arrives, with the guarantees of
//! [`super::write_verified`] (temporary file in the target directory, SHA-256 while writing,
//! fsync, sidecar, final names without replacing anything, directory fsync).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use super::{BACKEND, check_name, hex, io_error, sidecar_line, sidecar_path, write_synced};
use crate::database::BackupInfo;
use crate::error::{ErrorKind, OpsError};

/// The bytes a file must start with, and how far they were checked.
#[derive(Debug)]
struct Header {
    expected: &'static [u8],
    checked: usize,
    mismatch: bool,
}

/// A record file (a cache dump, a copy) written as its bytes arrive, hashed on the way, and
/// published under `dir/name` with its `.sha256` sidecar only by [`ArtifactWriter::finish`].
/// Memory stays bounded whatever the file's size.
///
/// Bytes go to a hidden temporary file in `dir`; `finish` fsyncs it, writes the sidecar and
/// gives both their final names (sidecar first, never replacing a file), then fsyncs `dir`.
/// Dropping the writer without `finish` removes the temporary file: nothing appears.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use tokio::io::AsyncWriteExt as _;
/// use ops_core::artifact::{ArtifactWriter, verify};
/// let dir = std::env::temp_dir().join(format!("opsbook-doc-writer-{}", std::process::id()));
/// let mut out = ArtifactWriter::create(&dir, "dump.rdb").await?.with_header(b"REDIS");
/// out.write_all(b"REDIS0011").await.unwrap();
/// out.write_all(b" and the rest").await.unwrap();
/// assert_eq!(out.header_matches(), Some(true));
/// let info = out.finish().await?;
/// assert_eq!(info.bytes, 22);
/// assert_eq!(verify(&info.path).await?.sha256, info.sha256);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
pub struct ArtifactWriter {
    dir: PathBuf,
    name: String,
    pub(super) tmp_file: PathBuf,
    file: tokio::fs::File,
    hasher: Sha256,
    bytes: u64,
    header: Option<Header>,
}

impl fmt::Debug for ArtifactWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtifactWriter")
            .field("path", &self.dir.join(&self.name))
            .field("bytes", &self.bytes)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl ArtifactWriter {
    /// Start the record `dir/name`: `dir` is created when missing and a temporary file opened
    /// in it. Write the bytes with [`tokio::io::AsyncWriteExt`], then call
    /// [`ArtifactWriter::finish`].
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `name` is not a plain file name (no `/`, not hidden,
    /// not `.`/`..`, no NUL) or when `dir/name` or its sidecar already exists;
    /// [`ErrorKind::Backend`] when the directory or the temporary file cannot be made.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = std::env::temp_dir().join(format!("opsbook-doc-create-{}", std::process::id()));
    /// let err = ops_core::artifact::ArtifactWriter::create(&dir, "../x").await.unwrap_err();
    /// assert_eq!(err.kind(), ops_core::ErrorKind::InvalidInput);
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    pub async fn create(dir: &Path, name: &str) -> Result<Self, OpsError> {
        check_name(name)?;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io_error("write", dir))?;
        let final_path = dir.join(name);
        for existing in [sidecar_path(&final_path), final_path] {
            match tokio::fs::try_exists(&existing).await {
                Ok(false) => {}
                Ok(true) => {
                    return Err(OpsError::invalid(
                        "write",
                        existing.display().to_string(),
                        "already exists: a record is never replaced",
                    ));
                }
                Err(e) => return Err(io_error("write", &existing)(e)),
            }
        }
        let tag = format!("{:08x}", fastrand::u32(..));
        let tmp_file = dir.join(format!(".{name}.{tag}.tmp"));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_file)
            .await
            .map_err(io_error("write", &tmp_file))?;
        Ok(Self {
            dir: dir.to_owned(),
            name: name.to_owned(),
            tmp_file,
            file,
            hasher: Sha256::new(),
            bytes: 0,
            header: None,
        })
    }

    /// Require the file to start with `expected` (a format's magic, `b"REDIS"` for an RDB
    /// file): the first write that contradicts it fails with [`io::ErrorKind::InvalidData`]
    /// and so does every later one, so a wrong file is refused on its first bytes.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use tokio::io::AsyncWriteExt as _;
    /// let dir = std::env::temp_dir().join(format!("opsbook-doc-header-{}", std::process::id()));
    /// let mut out = ops_core::artifact::ArtifactWriter::create(&dir, "x.rdb").await?.with_header(b"REDIS");
    /// assert!(out.write_all(b"<html>").await.is_err());
    /// assert_eq!(out.header_matches(), Some(false));
    /// # drop(out); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_header(mut self, expected: &'static [u8]) -> Self {
        self.header = Some(Header {
            expected,
            checked: 0,
            mismatch: false,
        });
        self
    }

    /// Whether the bytes written so far start with the header of
    /// [`ArtifactWriter::with_header`]: `Some(false)` once one differs, `Some(true)` once all
    /// matched (always, without a header), `None` while too few bytes arrived to tell.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use tokio::io::AsyncWriteExt as _;
    /// let dir = std::env::temp_dir().join(format!("opsbook-doc-matches-{}", std::process::id()));
    /// let mut out = ops_core::artifact::ArtifactWriter::create(&dir, "y.rdb").await?.with_header(b"REDIS");
    /// out.write_all(b"RED").await.unwrap();
    /// assert_eq!(out.header_matches(), None);
    /// # drop(out); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    pub fn header_matches(&self) -> Option<bool> {
        match &self.header {
            None => Some(true),
            Some(h) if h.mismatch => Some(false),
            Some(h) if h.checked >= h.expected.len() => Some(true),
            Some(_) => None,
        }
    }

    /// How many bytes were written so far.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use tokio::io::AsyncWriteExt as _;
    /// let dir = std::env::temp_dir().join(format!("opsbook-doc-bytes-{}", std::process::id()));
    /// let mut out = ops_core::artifact::ArtifactWriter::create(&dir, "z.bin").await?;
    /// out.write_all(b"abc").await.unwrap();
    /// assert_eq!(out.bytes(), 3);
    /// # drop(out); std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Publish the record: fsync the file, write its sidecar, give both their final names
    /// (sidecar first; an existing file is never replaced), fsync the directory. Returns the
    /// file's path, SHA-256 and size.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the file does not start with the header of
    /// [`ArtifactWriter::with_header`] or a file took the final name meanwhile;
    /// [`ErrorKind::Backend`] for I/O errors (nothing is left under the final names).
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use tokio::io::AsyncWriteExt as _;
    /// let dir = std::env::temp_dir().join(format!("opsbook-doc-finish-{}", std::process::id()));
    /// let mut out = ops_core::artifact::ArtifactWriter::create(&dir, "a.txt").await?;
    /// out.write_all(b"hello").await.unwrap();
    /// let info = out.finish().await?;
    /// assert_eq!(info.sha256, ops_core::artifact::sha256_hex(b"hello"));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    pub async fn finish(mut self) -> Result<BackupInfo, OpsError> {
        let final_path = self.dir.join(&self.name);
        if self.header_matches() != Some(true) {
            return Err(OpsError::invalid(
                "write",
                final_path.display().to_string(),
                "the file does not start with the header its format requires",
            ));
        }
        let synced = async {
            self.file.flush().await?;
            self.file.sync_all().await
        };
        synced.await.map_err(io_error("write", &self.tmp_file))?;
        let sha256 = hex(&std::mem::take(&mut self.hasher).finalize());
        let (dir, name, tmp) = (self.dir.clone(), self.name.clone(), self.tmp_file.clone());
        let digest = sha256.clone();
        tokio::task::spawn_blocking(move || publish(&dir, &name, &tmp, &digest))
            .await
            .map_err(|e| {
                OpsError::new(ErrorKind::Backend, BACKEND, "write", "artifact")
                    .with_detail(e.to_string())
            })??;
        let mut info = BackupInfo::new(&final_path, sha256, self.bytes);
        info.created_at = Some(jiff::Timestamp::now());
        Ok(info)
    }

    /// Check `buf`'s bytes that fall within the header; fails once one differs.
    fn check_header(&mut self, buf: &[u8]) -> io::Result<()> {
        let Some(h) = self.header.as_mut() else {
            return Ok(());
        };
        let rest = h.expected.get(h.checked..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        if h.mismatch || rest[..n] != buf[..n] {
            h.mismatch = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the file does not start with the header its format requires",
            ));
        }
        Ok(())
    }
}

impl AsyncWrite for ArtifactWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check_header(buf)?;
        let n = ready!(Pin::new(&mut this.file).poll_write(cx, buf))?;
        let written = buf.get(..n).unwrap_or(buf);
        this.hasher.update(written);
        this.bytes += written.len() as u64;
        if let Some(h) = this.header.as_mut() {
            h.checked = h.checked.saturating_add(n).min(h.expected.len());
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

impl Drop for ArtifactWriter {
    fn drop(&mut self) {
        // Published or abandoned, the temporary name goes (after `finish` it is gone already).
        let _ = std::fs::remove_file(&self.tmp_file);
    }
}

/// Write the sidecar of `tmp` (fsynced) and give both their final names under `dir`, sidecar
/// first, never replacing a file; then fsync `dir`. Temporary names are removed either way.
fn publish(dir: &Path, name: &str, tmp: &Path, sha256: &str) -> Result<(), OpsError> {
    let final_path = dir.join(name);
    let final_side = sidecar_path(&final_path);
    let tmp_side = dir.join(format!(".{name}.sha256.{:08x}.tmp", fastrand::u32(..)));
    let linked = (|| {
        write_synced(&tmp_side, sidecar_line(sha256, name).as_bytes())
            .map_err(io_error("write", &tmp_side))?;
        // Sidecar first: a file under its final name always has its checksum. Hard links
        // refuse to replace an existing name, which a rename would do silently.
        std::fs::hard_link(&tmp_side, &final_side).map_err(|e| exists_or_io(e, &final_side))?;
        if let Err(e) = std::fs::hard_link(tmp, &final_path) {
            let _ = std::fs::remove_file(&final_side);
            return Err(exists_or_io(e, &final_path));
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(tmp);
    let _ = std::fs::remove_file(&tmp_side);
    linked?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("write", dir))
}

/// A name taken meanwhile is refused as [`ErrorKind::InvalidInput`] like at the start.
fn exists_or_io(e: io::Error, what: &Path) -> OpsError {
    if e.kind() == io::ErrorKind::AlreadyExists {
        OpsError::invalid(
            "write",
            what.display().to_string(),
            "already exists: a record is never replaced",
        )
    } else {
        io_error("write", what)(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_file_written_in_pieces_is_published_with_the_checksum_of_all_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..=255u8).cycle().take(5 * 1024 * 1024 + 3).collect();
        let mut out = ArtifactWriter::create(dir.path(), "dump.rdb")
            .await
            .unwrap()
            .with_header(b"\x00\x01\x02");
        for piece in data.chunks(300_000) {
            out.write_all(piece).await.unwrap();
        }
        assert_eq!(out.bytes(), data.len() as u64);
        let info = out.finish().await.unwrap();
        assert_eq!(info.sha256, super::super::sha256_hex(&data));
        assert_eq!(std::fs::read(&info.path).unwrap(), data);
        assert_eq!(
            super::super::verify(&info.path).await.unwrap().bytes,
            data.len() as u64
        );
        assert_eq!(names(dir.path()), ["dump.rdb", "dump.rdb.sha256"]);
    }

    #[tokio::test]
    async fn a_dropped_or_wrong_headed_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = ArtifactWriter::create(dir.path(), "a.rdb").await.unwrap();
        out.write_all(b"REDIS0011").await.unwrap();
        drop(out);
        let mut out = ArtifactWriter::create(dir.path(), "b.rdb")
            .await
            .unwrap()
            .with_header(b"REDIS");
        out.write_all(b"RED").await.unwrap();
        assert_eq!(out.header_matches(), None);
        let err = out.write_all(b"XX and more").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(out.header_matches(), Some(false));
        assert!(out.write_all(b"S").await.is_err(), "refused for good");
        assert_eq!(
            out.finish().await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let mut short = ArtifactWriter::create(dir.path(), "c.rdb")
            .await
            .unwrap()
            .with_header(b"REDIS");
        short.write_all(b"RE").await.unwrap();
        assert_eq!(
            short.finish().await.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "a file shorter than its header is refused"
        );
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }

    #[tokio::test]
    async fn a_name_taken_before_or_during_the_write_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.bin"), b"old").unwrap();
        let err = ArtifactWriter::create(dir.path(), "x.bin")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let mut out = ArtifactWriter::create(dir.path(), "y.bin").await.unwrap();
        out.write_all(b"new").await.unwrap();
        std::fs::write(dir.path().join("y.bin"), b"raced").unwrap();
        assert_eq!(
            out.finish().await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(std::fs::read(dir.path().join("y.bin")).unwrap(), b"raced");
        assert_eq!(names(dir.path()), ["x.bin", "y.bin"]);
    }
}
