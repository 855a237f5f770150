//! Tar archives of directories copied out of instances ([`crate::Platform::archive_from`]):
//! the directory path checked before anything runs, the archive checked before anyone relies
//! on it. Every backend uses these, so "a directory archive" means the same on each.

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, OpsError};

mod single;
pub use single::{SingleFileError, stream_single_file};

/// An absolute directory path split into its parent and its last component, the way
/// `tar cf - -C PARENT BASE` takes it.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a relative path, `/`, a path holding `.`, `..`, NUL or a
/// control character, or a base name starting with `-` (it would read as a tar option).
///
/// # Examples
/// ```
/// use ops_core::archive::split_dir;
/// assert_eq!(split_dir("/var/lib/weaviate/")?, ("/var/lib", "weaviate"));
/// assert_eq!(split_dir("/data")?, ("/", "data"));
/// assert!(split_dir("/").is_err());
/// assert!(split_dir("/var/../etc").is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
pub fn split_dir(path: &str) -> Result<(&str, &str), OpsError> {
    let bad = |why: &str| Err(OpsError::invalid("archive_from", path, why));
    if !path.starts_with('/') {
        return bad("the directory must be an absolute path");
    }
    if path.chars().any(char::is_control) {
        return bad("the path cannot hold NUL or control characters");
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed
        .split('/')
        .skip(1)
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return bad("the path cannot hold empty, '.' or '..' components");
    }
    match trimmed.rsplit_once('/') {
        None | Some((_, "")) => bad("archiving / is refused: name the directory to copy"),
        Some((_, base)) if base.starts_with('-') => {
            bad("a directory name starting with '-' is refused (tar would read it as an option)")
        }
        Some(("", base)) => Ok(("/", base)),
        Some((parent, base)) => Ok((parent, base)),
    }
}

/// What a directory archive holds.
///
/// # Examples
/// ```
/// let s = ops_core::archive::ArchiveSummary::default();
/// assert_eq!(s.files + s.directories + s.links, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ArchiveSummary {
    /// Regular files.
    pub files: u64,
    /// Directories, the top one included.
    pub directories: u64,
    /// Symbolic and hard links (kept as links, never followed).
    pub links: u64,
    /// Bytes of file contents.
    pub bytes: u64,
}

/// Check that `archive` is a readable tar whose every member lies under `base/` (no absolute
/// name, no `..`, no device or FIFO), and count what it holds.
///
/// # Errors
/// [`ErrorKind::Backend`] naming the first problem: an unreadable archive, a member outside
/// `base`, a device, or an empty archive.
///
/// # Examples
/// ```
/// let mut b = tar::Builder::new(Vec::new());
/// let mut h = tar::Header::new_ustar();
/// h.set_size(2);
/// h.set_mode(0o644);
/// h.set_cksum();
/// b.append_data(&mut h, "data/a.txt", &b"hi"[..]).unwrap();
/// let tar = b.into_inner().unwrap();
/// let s = ops_core::archive::check_archive(&tar, "data")?;
/// assert_eq!((s.files, s.bytes), (1, 2));
/// assert!(ops_core::archive::check_archive(&tar, "other").is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
pub fn check_archive(archive: &[u8], base: &str) -> Result<ArchiveSummary, OpsError> {
    let fail = |why: String| {
        OpsError::new(ErrorKind::Backend, "archive", "archive_from", base).with_detail(why)
    };
    let unreadable = |e: std::io::Error| fail(format!("the archive is unreadable: {e}"));
    let mut summary = ArchiveSummary::default();
    let mut reader = tar::Archive::new(archive);
    for entry in reader.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let name = entry
            .path()
            .map_err(unreadable)?
            .to_string_lossy()
            .into_owned();
        let inside = name.trim_start_matches("./");
        let under = inside == base
            || inside.trim_end_matches('/') == base
            || inside
                .strip_prefix(base)
                .is_some_and(|r| r.starts_with('/'));
        if !under || inside.split('/').any(|c| c == "..") {
            return Err(fail(format!(
                "member {} lies outside {base}/",
                crate::text::quote(&name)
            )));
        }
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                summary.files += 1;
                // Read through the contents: a truncated archive fails here, not later.
                summary.bytes +=
                    std::io::copy(&mut entry, &mut std::io::sink()).map_err(unreadable)?;
            }
            tar::EntryType::Directory => summary.directories += 1,
            tar::EntryType::Symlink | tar::EntryType::Link => summary.links += 1,
            // Metadata entries (PAX, GNU long names) describe the next member.
            tar::EntryType::XHeader
            | tar::EntryType::XGlobalHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {}
            other => {
                return Err(fail(format!(
                    "member {} is a {other:?}, not a file, directory or link",
                    crate::text::quote(&name)
                )));
            }
        }
    }
    if summary.files + summary.directories + summary.links == 0 {
        return Err(fail("the archive is empty".to_owned()));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn archive(members: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            if let Some(d) = data {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
            } else {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
            }
            h.set_mode(0o644);
            // Names are written raw, so hostile ones reach the check as they would from a
            // hostile instance.
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, data.unwrap_or_default()).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn members_outside_the_directory_are_refused() {
        let ok = archive(&[("data/", None), ("data/a", Some(b"abc"))]);
        let s = check_archive(&ok, "data").unwrap();
        assert_eq!((s.files, s.directories, s.bytes), (1, 1, 3));
        for bad in ["/etc/passwd", "data/../etc/passwd", "datax/a", "other"] {
            let tar = archive(&[("data/", None), (bad, Some(b"x"))]);
            assert!(check_archive(&tar, "data").is_err(), "{bad}");
        }
        assert!(check_archive(&archive(&[]), "data").is_err());
        assert!(check_archive(b"not a tar at all, just text", "data").is_err());
    }

    proptest! {
        #[test]
        fn split_dir_never_panics_and_what_it_accepts_is_safe(path in "\\PC{0,40}") {
            if let Ok((parent, base)) = split_dir(&path) {
                prop_assert!(parent.starts_with('/'));
                prop_assert!(!base.is_empty() && !base.contains('/') && base != ".." && base != ".");
                prop_assert!(!base.starts_with('-'));
            }
        }

        #[test]
        fn check_archive_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = check_archive(&bytes, "data");
        }
    }
}
