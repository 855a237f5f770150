//! Writing a bundle atomically: every file into a temporary directory beside the
//! destination, each fsynced, the `SHA256SUMS` manifest last, the directory fsynced, then one
//! rename and an fsync of the parent. A failure removes the temporary directory, so the
//! destination either holds the whole bundle or does not exist.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::EvidenceFile;
use crate::error::{ErrorKind, OpsError};

/// The manifest's file name.
pub(super) const MANIFEST: &str = "SHA256SUMS";

fn io_error(operation: &'static str, path: &Path, e: std::io::Error) -> OpsError {
    let kind = match e.kind() {
        std::io::ErrorKind::AlreadyExists => ErrorKind::Conflict,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        _ => ErrorKind::Unavailable,
    };
    OpsError::new(kind, "evidence", operation, path.display().to_string()).with_source(e)
}

fn tar_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_owned();
    name.push(".tar");
    dest.with_file_name(name)
}

/// Refuse a destination that exists or has no parent to write beside.
pub(super) fn check_destination(dest: &Path, tarball: bool) -> Result<(), OpsError> {
    if dest.file_name().is_none() {
        return Err(OpsError::invalid(
            "evidence",
            dest.display().to_string(),
            "the bundle needs a directory name",
        ));
    }
    let parent = parent_of(dest);
    if !parent.is_dir() {
        return Err(OpsError::new(
            ErrorKind::NotFound,
            "evidence",
            "write",
            parent.display().to_string(),
        )
        .with_detail("the parent directory does not exist"));
    }
    for path in std::iter::once(dest.to_owned()).chain(tarball.then(|| tar_path(dest))) {
        if fs::symlink_metadata(&path).is_ok() {
            return Err(OpsError::new(
                ErrorKind::Conflict,
                "evidence",
                "write",
                path.display().to_string(),
            )
            .with_detail("already exists; evidence is never overwritten"));
        }
    }
    Ok(())
}

fn parent_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), OpsError> {
    crate::artifact::write_synced(path, bytes).map_err(|e| io_error("write", path, e))
}

fn sync_dir(path: &Path) -> Result<(), OpsError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("fsync", path, e))
}

/// A tarball's path and SHA-256.
pub(super) type Tarball = (PathBuf, String);

/// Write `files` (path inside the bundle → contents) and the manifest to `dest`, and the
/// tarball when asked. Returns the manifest's entries (and the manifest itself) and the
/// tarball with its SHA-256.
pub(super) fn write_bundle(
    dest: &Path,
    files: &BTreeMap<String, Vec<u8>>,
    tarball: bool,
) -> Result<(Vec<EvidenceFile>, Option<Tarball>), OpsError> {
    let parent = parent_of(dest);
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = parent.join(format!(".{name}.partial-{:08x}", fastrand::u32(..)));
    fs::create_dir(&tmp).map_err(|e| io_error("write", &tmp, e))?;
    let result = fill(&tmp, files).and_then(|entries| {
        fs::rename(&tmp, dest).map_err(|e| io_error("rename", dest, e))?;
        sync_dir(&parent)?;
        Ok(entries)
    });
    let entries = match result {
        Ok(entries) => entries,
        Err(e) => {
            // Best effort: the error below is the one that matters.
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let tar = if tarball {
        Some(write_tarball(dest, &parent)?)
    } else {
        None
    };
    Ok((entries, tar))
}

/// Write every file and the manifest into `dir`, fsync it, and return the entries.
fn fill(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<Vec<EvidenceFile>, OpsError> {
    let mut entries = Vec::with_capacity(files.len() + 1);
    let mut manifest = String::new();
    let mut dirs = vec![dir.to_owned()];
    for (path, bytes) in files {
        let full = dir.join(path);
        if let Some(sub) = full.parent()
            && !sub.is_dir()
        {
            fs::create_dir_all(sub).map_err(|e| io_error("write", sub, e))?;
            dirs.push(sub.to_owned());
        }
        write_synced(&full, bytes)?;
        let sha256 = crate::artifact::sha256_hex(bytes);
        manifest.push_str(&sha256);
        manifest.push_str("  ");
        manifest.push_str(path);
        manifest.push('\n');
        entries.push(EvidenceFile {
            path: path.clone(),
            bytes: bytes.len() as u64,
            sha256,
        });
    }
    write_synced(&dir.join(MANIFEST), manifest.as_bytes())?;
    entries.push(EvidenceFile {
        path: MANIFEST.to_owned(),
        bytes: manifest.len() as u64,
        sha256: crate::artifact::sha256_hex(manifest.as_bytes()),
    });
    for d in dirs.iter().rev() {
        sync_dir(d)?;
    }
    Ok(entries)
}

/// `<dest>.tar` of the bundle directory (written beside, fsynced, renamed) and its
/// `<dest>.tar.sha256` sidecar in `sha256sum`'s format.
fn write_tarball(dest: &Path, parent: &Path) -> Result<(PathBuf, String), OpsError> {
    let final_path = tar_path(dest);
    let name = dest.file_name().unwrap_or_default().to_owned();
    let tmp = parent.join(format!(
        ".{}.tar.partial-{:08x}",
        name.to_string_lossy(),
        fastrand::u32(..)
    ));
    let result = (|| {
        let file = File::create_new(&tmp).map_err(|e| io_error("write", &tmp, e))?;
        let mut builder = tar::Builder::new(file);
        builder.follow_symlinks(false);
        builder
            .append_dir_all(&name, dest)
            .map_err(|e| io_error("tar", dest, e))?;
        let file = builder.into_inner().map_err(|e| io_error("tar", &tmp, e))?;
        file.sync_all().map_err(|e| io_error("fsync", &tmp, e))?;
        let bytes = fs::read(&tmp).map_err(|e| io_error("read", &tmp, e))?;
        let sha256 = crate::artifact::sha256_hex(&bytes);
        let tar_name = final_path.file_name().unwrap_or_default().to_string_lossy();
        let sidecar = crate::artifact::sidecar_path(&final_path);
        fs::rename(&tmp, &final_path).map_err(|e| io_error("rename", &final_path, e))?;
        write_synced(
            &sidecar,
            crate::artifact::sidecar_line(&sha256, &tar_name).as_bytes(),
        )?;
        sync_dir(parent)?;
        Ok((final_path.clone(), sha256))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
