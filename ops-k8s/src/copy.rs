//! Copying one file out of or into a workload's pod the way `kubectl cp` does it: `tar` over
//! exec. `copy_from` runs `tar cf - PATH` and takes the single regular file out of the archive
//! (links, directories, other members and names that do not match are refused);
//! `copy_from_into` runs the same command and streams the file out of tar's stdout as it
//! arrives (bounded memory, no output limit, each read within the request timeout);
//! `copy_to` builds a one-file archive in memory and runs `tar xmf - -C DIR` with it on stdin;
//! `archive_from` runs `tar cf - -C PARENT BASE` and returns the archive once checked.
//! Paths are absolute, without `.` or `..`; sizes (but a streamed copy's) are bounded by
//! [`crate::KubeConfig::exec_output_limit`].

use std::io::Read as _;

use ops_core::InstanceRef;
use ops_core::platform::ExecOutput;

use crate::error::{Error, Result};
use crate::exec::Run;
use crate::platform::KubePlatform;

/// An absolute remote path: its directory and file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemotePath {
    dir: String,
    name: String,
}

impl RemotePath {
    /// Checks `path`: absolute, a file name at the end, no `.` or `..` component (nothing that
    /// could land outside the directory it names), no NUL. Repeated slashes are collapsed.
    pub(crate) fn parse(operation: &'static str, target: &str, path: &str) -> Result<Self> {
        let refuse = |reason: &str| Error::InvalidArgument {
            operation,
            target: target.to_owned(),
            reason: format!("path {path:?}: {reason}"),
        };
        if !path.starts_with('/') {
            return Err(refuse("must be absolute"));
        }
        if path.contains('\0') {
            return Err(refuse("contains NUL"));
        }
        if path.ends_with('/') {
            return Err(refuse("names a directory; give the file's path"));
        }
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts.iter().any(|p| *p == "." || *p == "..") {
            return Err(refuse("must not contain `.` or `..` components"));
        }
        let Some((name, dirs)) = parts.split_last() else {
            return Err(refuse("names no file"));
        };
        Ok(Self {
            dir: format!("/{}", dirs.join("/")),
            name: (*name).to_owned(),
        })
    }

    /// The full path, normalized.
    fn full(&self) -> String {
        if self.dir == "/" {
            format!("/{}", self.name)
        } else {
            format!("{}/{}", self.dir, self.name)
        }
    }
}

/// `NotFound` when tar said a path does not exist, `CommandFailed` otherwise.
fn tar_failed(operation: &'static str, target: &str, path: &str, output: &ExecOutput) -> Error {
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    let code = output
        .exit_code
        .map_or_else(|| "no exit code".to_owned(), |c| format!("exit code {c}"));
    if stderr.contains("No such file or directory") {
        Error::NotFound {
            operation,
            target: target.to_owned(),
            reason: format!("{path}: {stderr}"),
        }
    } else {
        Error::CommandFailed {
            operation,
            target: target.to_owned(),
            reason: format!("tar for {path} failed ({code}): {stderr}"),
        }
    }
}

/// `tar cf - PATH` in the instance's only (or chosen) container, under the request deadline.
fn tar_create(operation: &'static str, full: &str) -> Run<'static> {
    Run {
        operation,
        argv: ["tar", "cf", "-", full].map(str::to_owned).to_vec(),
        container: None,
        stdin: None,
        timeout: None,
    }
}

/// The one regular file named `member` in `archive`.
fn single_file(
    archive: &[u8],
    member: &str,
    operation: &'static str,
    target: &str,
) -> Result<Vec<u8>> {
    let malformed = |reason: String| Error::Malformed {
        operation,
        target: target.to_owned(),
        reason,
    };
    let broken = |e: std::io::Error| malformed(format!("the archive tar wrote is unreadable: {e}"));
    let mut reader = tar::Archive::new(archive);
    let mut found: Option<Vec<u8>> = None;
    for entry in reader.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if found.is_some() {
            return Err(malformed(format!(
                "the archive holds more than {member:?}: also {name:?}"
            )));
        }
        if name.trim_end_matches('/') != member {
            return Err(malformed(format!(
                "the archive member {name:?} does not match the path asked for ({member:?})"
            )));
        }
        if !matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous) {
            let what = match kind {
                tar::EntryType::Directory => "a directory",
                tar::EntryType::Symlink => "a symbolic link",
                tar::EntryType::Link => "a hard link",
                _ => "not a regular file",
            };
            return Err(Error::InvalidArgument {
                operation,
                target: target.to_owned(),
                reason: format!("/{member} is {what}: copy_from copies one regular file"),
            });
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(broken)?;
        found = Some(data);
    }
    found.ok_or_else(|| malformed(format!("the archive does not hold {member:?}")))
}

/// A ustar archive holding `contents` as the regular file `name`.
fn one_file_archive(name: &str, contents: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or_default());
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_data(&mut header, name, contents)?;
    builder.into_inner()
}

impl KubePlatform {
    /// [`ops_core::Platform::copy_from`]: the bytes of the regular file at `path`.
    pub(crate) async fn copy_out(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>> {
        let operation = "copy_from";
        let target = instance.to_string();
        let remote = RemotePath::parse(operation, &target, path)?;
        let full = remote.full();
        let run = tar_create(operation, &full);
        let output = self.run_in(instance, run).await?;
        if !output.success() {
            return Err(tar_failed(operation, &target, &full, &output));
        }
        single_file(
            &output.stdout,
            full.trim_start_matches('/'),
            operation,
            &target,
        )
    }

    /// [`ops_core::Platform::copy_from_into`]: `tar cf - PATH` in the instance with its
    /// stdout streamed through [`ops_core::archive::stream_single_file`] into `sink`, so
    /// neither the output limit nor the exec's single deadline applies (each read must
    /// arrive within the request timeout). Refuses what [`KubePlatform::copy_out`] refuses.
    pub(crate) async fn copy_out_into(
        &self,
        instance: &InstanceRef,
        path: &str,
        sink: &mut ops_core::platform::CopySink,
    ) -> Result<u64> {
        use ops_core::archive::SingleFileError as S;
        let operation = "copy_from_into";
        let target = instance.to_string();
        let remote = RemotePath::parse(operation, &target, path)?;
        let full = remote.full();
        let member = full.trim_start_matches('/');
        let run = tar_create(operation, &full);
        let streamed = self.run_into(instance, run, sink, member).await?;
        let malformed = |reason: String| Error::Malformed {
            operation,
            target: target.clone(),
            reason,
        };
        match streamed.file {
            Ok((_, bytes)) if streamed.output.success() => Ok(bytes),
            Err(S::NotAFile { what, .. }) => Err(Error::InvalidArgument {
                operation,
                target: target.clone(),
                reason: format!("{full} is {what}: copy_from copies one regular file"),
            }),
            Err(S::OtherName { name }) => Err(malformed(format!(
                "the archive member {name:?} does not match the path asked for ({member:?})"
            ))),
            Err(S::SeveralEntries { name }) => Err(malformed(format!(
                "the archive holds more than {member:?}: also {name:?}"
            ))),
            Err(S::Write(source)) => Err(Error::Sink {
                operation,
                target: format!("{target}:{full}"),
                source,
            }),
            Err(S::Read(e)) if e.kind() == std::io::ErrorKind::TimedOut => Err(Error::Timeout {
                operation,
                target: target.clone(),
                after: self.config.request_timeout,
            }),
            _ if !streamed.output.success() => {
                Err(tar_failed(operation, &target, &full, &streamed.output))
            }
            Err(S::Read(e)) => Err(malformed(format!(
                "the archive tar wrote is unreadable: {e}"
            ))),
            Ok(_) | Err(_) => Err(malformed(format!("the archive does not hold {member:?}"))),
        }
    }

    /// [`ops_core::Platform::archive_from`]: `tar cf - -C PARENT BASE` in the instance, so the
    /// members are named `BASE/…` (checked by the caller).
    pub(crate) async fn archive_out(
        &self,
        instance: &InstanceRef,
        parent: &str,
        base: &str,
    ) -> Result<Vec<u8>> {
        let operation = "archive_from";
        let run = Run {
            operation,
            argv: ["tar", "cf", "-", "-C", parent, base]
                .map(str::to_owned)
                .to_vec(),
            container: None,
            stdin: None,
            timeout: None,
        };
        let output = self.run_in(instance, run).await?;
        if !output.success() {
            let full = format!("{}/{base}", parent.trim_end_matches('/'));
            return Err(tar_failed(operation, &instance.to_string(), &full, &output));
        }
        Ok(output.stdout)
    }

    /// [`ops_core::Platform::copy_to`]: `contents` written as the regular file `path`, whose
    /// directory must exist.
    pub(crate) async fn copy_in(
        &self,
        instance: &InstanceRef,
        path: &str,
        contents: &[u8],
    ) -> Result<()> {
        let operation = "copy_to";
        let target = instance.to_string();
        let remote = RemotePath::parse(operation, &target, path)?;
        let archive =
            one_file_archive(&remote.name, contents).map_err(|e| Error::InvalidArgument {
                operation,
                target: target.clone(),
                reason: format!("cannot archive {path:?}: {e}"),
            })?;
        let run = Run {
            operation,
            argv: ["tar", "xmf", "-", "-C", remote.dir.as_str()]
                .map(str::to_owned)
                .to_vec(),
            container: None,
            stdin: Some(archive),
            timeout: None,
        };
        let output = self.run_in(instance, run).await?;
        if !output.success() {
            return Err(tar_failed(operation, &target, &remote.full(), &output));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_are_absolute_files_without_dot_components() {
        let p = RemotePath::parse("copy_to", "t", "/etc//app/config.yaml").unwrap();
        assert_eq!(
            (p.dir.as_str(), p.name.as_str()),
            ("/etc/app", "config.yaml")
        );
        assert_eq!(p.full(), "/etc/app/config.yaml");
        assert_eq!(
            RemotePath::parse("copy_to", "t", "/x").unwrap().full(),
            "/x"
        );
        for bad in [
            "etc/x",
            "/tmp/../etc/passwd",
            "/tmp/./x",
            "/",
            "/tmp/",
            "",
            "/a\0b",
        ] {
            assert!(RemotePath::parse("copy_to", "t", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_the_one_regular_file_asked_for_is_taken() {
        let archive = one_file_archive("x", b"data").unwrap();
        assert_eq!(
            single_file(&archive, "x", "copy_from", "t").unwrap(),
            b"data"
        );
        assert!(single_file(&archive, "y", "copy_from", "t").is_err());
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        builder.append_link(&mut h, "x", "/etc/shadow").unwrap();
        let link = builder.into_inner().unwrap();
        let err = single_file(&link, "x", "copy_from", "t").unwrap_err();
        assert!(err.to_string().contains("invalid argument"), "{err}");
        assert!(single_file(b"", "x", "copy_from", "t").is_err());
    }
}
