//! Copy one file out of or into a container, through the engine's tar archive API.

use std::io::Read as _;

use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures::{FutureExt as _, Stream, StreamExt as _};
use ops_core::InstanceRef;

use crate::error::{Error, Result};
use crate::platform::ComposePlatform;

/// An absolute path without NUL or `..` components, split into (directory, file name).
fn split_path<'a>(
    instance: &InstanceRef,
    operation: &'static str,
    path: &'a str,
) -> Result<(&'a str, &'a str)> {
    let bad = |reason: &str| Error::InvalidArgument {
        operation,
        target: format!("{instance}:{}", ops_core::text::quote(path)),
        reason: reason.to_owned(),
    };
    if !path.starts_with('/') || path.contains('\0') {
        return Err(bad("the path must be absolute and cannot contain NUL"));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(bad("the path cannot contain '..'"));
    }
    match path.rsplit_once('/') {
        Some((_, "")) | None => Err(bad("the path must name a file, not a directory")),
        Some(("", file)) => Ok(("/", file)),
        Some((dir, file)) => Ok((dir, file)),
    }
}

/// This crate's error for a failed [`ops_core::archive::stream_single_file`].
fn single_file_error(
    e: ops_core::archive::SingleFileError,
    operation: &'static str,
    target: String,
    idle: std::time::Duration,
) -> Error {
    use ops_core::archive::SingleFileError as S;
    let refused = |reason: String| Error::InvalidArgument {
        operation,
        target: target.clone(),
        reason,
    };
    match e {
        S::Empty => Error::NotFound { operation, target },
        S::NotAFile { what, .. } => refused(format!(
            "not a regular file but {what} (directories and links are not copied)"
        )),
        S::SeveralEntries { name } => refused(format!(
            "the engine's archive holds more than the file (also {name:?})"
        )),
        S::Write(source) => Error::Sink {
            operation,
            target,
            source,
        },
        S::Read(source) if is_stall(&source) => Error::Timeout {
            operation,
            target,
            after: idle,
        },
        S::Read(source) => Error::Archive {
            operation,
            target,
            source,
        },
        other => Error::Archive {
            operation,
            target,
            source: std::io::Error::other(other),
        },
    }
}

/// Whether a read of the engine's archive failed because the engine stopped sending.
fn is_stall(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<bollard::errors::Error>())
        .is_some_and(|b| matches!(b, bollard::errors::Error::RequestTimeoutError))
}

impl ComposePlatform {
    /// Read one regular file out of the container (at most
    /// [`crate::ComposeConfig::max_copy_bytes`]).
    ///
    /// # Errors
    /// `NotFound` when the container or path does not exist; `InvalidInput` for a relative
    /// path or a directory; `Timeout`.
    pub async fn copy_file_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>> {
        split_path(instance, "copy_from", path)?;
        let max = self.config().max_copy_bytes;
        let target = format!("{instance}:{path}");
        let tar = self.download(instance, path, "copy_from").await?;
        let archive_err = |source| Error::Archive {
            operation: "copy_from",
            target: target.clone(),
            source,
        };
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive.entries().map_err(archive_err)?;
        let Some(entry) = entries.next() else {
            return Err(Error::NotFound {
                operation: "copy_from",
                target,
            });
        };
        let mut entry = entry.map_err(archive_err)?;
        if !entry.header().entry_type().is_file() {
            return Err(Error::InvalidArgument {
                operation: "copy_from",
                target,
                reason: "not a regular file (directories and links are not copied)".to_owned(),
            });
        }
        if entry.size() > max {
            return Err(Error::InvalidArgument {
                operation: "copy_from",
                target,
                reason: format!("the file is larger than the {max}-byte copy limit"),
            });
        }
        let mut contents = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry.read_to_end(&mut contents).map_err(archive_err)?;
        Ok(contents)
    }

    /// Stream one regular file out of the container into `sink` as the engine sends it
    /// ([`ops_core::Platform::copy_from_into`]): the engine's tar archive is read
    /// incrementally (256 KiB at a time), so memory stays bounded and
    /// [`crate::ComposeConfig::max_copy_bytes`] does not apply. Each read of the archive
    /// must arrive within the request timeout; the whole copy has no deadline of its own
    /// (the caller's step bounds it). Returns the bytes written.
    ///
    /// # Errors
    /// `NotFound` when the container or path does not exist; `InvalidInput` for a relative
    /// path, a directory, a link or an archive of several entries; `Timeout` when the engine
    /// stalls; `Backend` for an unreadable archive or a failing sink.
    pub async fn copy_file_into(
        &self,
        instance: &InstanceRef,
        path: &str,
        sink: &mut ops_core::platform::CopySink,
    ) -> Result<u64> {
        let operation = "copy_from_into";
        split_path(instance, operation, path)?;
        let target = format!("{instance}:{path}");
        let idle = self.config().request_timeout;
        let mut stream = self.archive_stream(instance, path, operation).await?;
        // The engine answers a missing path (404) before the first byte: take it apart.
        let first = match self.call(operation, &target, stream.next().map(Ok)).await? {
            Some(Err(e)) => {
                return Err(match Error::engine(operation, &target, e) {
                    e if e.status_code() == Some(404) => Error::NotFound { operation, target },
                    e => e,
                });
            }
            first => first,
        };
        let rest = futures::stream::unfold(stream, move |mut s| async move {
            match tokio::time::timeout(idle, s.next()).await {
                Ok(item) => item.map(|i| (i, s)),
                Err(_) => Some((Err(bollard::errors::Error::RequestTimeoutError), s)),
            }
        });
        let chunks = futures::stream::iter(first)
            .chain(rest)
            .map(|chunk| chunk.map_err(std::io::Error::other))
            .boxed();
        let reader = tokio_util::io::StreamReader::new(chunks);
        match ops_core::archive::stream_single_file(reader, sink, None).await {
            Ok((_, bytes)) => Ok(bytes),
            Err(e) => Err(single_file_error(e, operation, target, idle)),
        }
    }

    /// The engine's tar archive of `path` in the container (what `docker cp CONTAINER:PATH -`
    /// writes): members named after the last component of `path`. Bounded by
    /// [`crate::ComposeConfig::max_copy_bytes`] (plus room for the tar headers).
    ///
    /// # Errors
    /// `NotFound` when the container or path does not exist; `InvalidInput` for an archive
    /// over the limit; `Timeout`.
    pub async fn copy_dir_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>> {
        let tar = self.download(instance, path, "archive_from").await?;
        let max = self.config().max_copy_bytes;
        if tar.len() as u64 > max + 64 * 1024 {
            return Err(Error::InvalidArgument {
                operation: "archive_from",
                target: format!("{instance}:{path}"),
                reason: format!("the archive is larger than the {max}-byte copy limit"),
            });
        }
        Ok(tar)
    }

    /// The engine's tar archive of `path` in the container `instance` names, as a stream not
    /// yet polled (the engine's answer, a 404 for a missing path included, comes with the
    /// first item).
    async fn archive_stream(
        &self,
        instance: &InstanceRef,
        path: &str,
        operation: &'static str,
    ) -> Result<impl Stream<Item = std::result::Result<Bytes, bollard::errors::Error>> + Unpin + Send>
    {
        let inspect = self.resolve_instance(instance, operation).await?;
        let id = inspect.id.unwrap_or_default();
        let docker = self.docker().await?;
        let opts = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        Ok(docker.download_from_container(&id, Some(opts)))
    }

    /// Downloads the engine's archive of `path`, reading at most the copy limit plus 64 KiB.
    async fn download(
        &self,
        instance: &InstanceRef,
        path: &str,
        operation: &'static str,
    ) -> Result<Vec<u8>> {
        let mut s = self.archive_stream(instance, path, operation).await?;
        let max = self.config().max_copy_bytes;
        let target = format!("{instance}:{path}");
        let download = async {
            let mut tar = Vec::new();
            while let Some(chunk) = s.next().await {
                tar.extend_from_slice(&chunk?);
                if tar.len() as u64 > max + 64 * 1024 {
                    break;
                }
            }
            Ok::<_, bollard::errors::Error>(tar)
        };
        match self.call(operation, &target, download).await {
            Err(e) if e.status_code() == Some(404) => Err(Error::NotFound { operation, target }),
            other => other,
        }
    }

    /// Write `contents` to `path` in the container (mode 0644), replacing an existing file.
    /// The directory must exist.
    ///
    /// # Errors
    /// `NotFound` when the container or directory does not exist; `PermissionDenied` when the
    /// engine refuses (read-only filesystem); `InvalidInput` for a bad path.
    pub async fn copy_file_to(
        &self,
        instance: &InstanceRef,
        path: &str,
        contents: Vec<u8>,
    ) -> Result<()> {
        let (dir, file) = split_path(instance, "copy_to", path)?;
        let inspect = self.resolve_instance(instance, "copy_to").await?;
        let id = inspect.id.unwrap_or_default();
        let target = format!("{instance}:{path}");
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0));
        header.set_entry_type(tar::EntryType::Regular);
        let mut builder = tar::Builder::new(Vec::new());
        let tar = builder
            .append_data(&mut header, file, contents.as_slice())
            .and_then(|()| builder.into_inner())
            .map_err(|source| Error::Archive {
                operation: "copy_to",
                target: target.clone(),
                source,
            })?;
        let docker = self.docker().await?;
        let opts = UploadToContainerOptionsBuilder::new().path(dir).build();
        let upload = docker.upload_to_container(&id, Some(opts), bollard::body_full(tar.into()));
        match self.call("copy_to", &target, upload).await {
            Err(e) if e.status_code() == Some(404) => Err(Error::NotFound {
                operation: "copy_to",
                target,
            }),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_absolute_files() {
        let i: InstanceRef = "shop/service/api/shop-api-1".parse().unwrap();
        assert_eq!(
            split_path(&i, "t", "/etc/hosts").unwrap(),
            ("/etc", "hosts")
        );
        assert_eq!(split_path(&i, "t", "/x").unwrap(), ("/", "x"));
        assert!(split_path(&i, "t", "etc/hosts").is_err());
        assert!(split_path(&i, "t", "/etc/").is_err());
        assert!(split_path(&i, "t", "/a/../b").is_err());
    }
}
