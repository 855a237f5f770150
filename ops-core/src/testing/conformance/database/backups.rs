//! The backup cycle: backup, list, verify, corrupt, refuse, restore.

use std::path::{Path, PathBuf};

use crate::database::{BackupInfo, BackupOptions, Database, RestoreOptions};
use crate::error::ErrorKind;

use super::fixture::{DatabaseFixture, ok, refused};

/// A copy of `info`'s dump and sidecar in a `corrupt` directory under `dir`, with bytes in
/// the middle of the dump flipped; returns the copy's path.
fn corrupt_copy(dir: &Path, info: &BackupInfo) -> PathBuf {
    let corrupt = dir.join(format!("corrupt-{}", fastrand::u32(..)));
    std::fs::create_dir(&corrupt).unwrap_or_else(|e| panic!("create {}: {e}", corrupt.display()));
    let name = info
        .path
        .file_name()
        .unwrap_or_else(|| panic!("the backup {} has a file name", info.path.display()));
    let copy = corrupt.join(name);
    let mut bytes =
        std::fs::read(&info.path).unwrap_or_else(|e| panic!("read {}: {e}", info.path.display()));
    assert!(
        !bytes.is_empty(),
        "the dump {} is empty",
        info.path.display()
    );
    let middle = bytes.len() / 2;
    for b in bytes.iter_mut().skip(middle).take(4) {
        *b ^= 0xff;
    }
    std::fs::write(&copy, &bytes).unwrap_or_else(|e| panic!("write {}: {e}", copy.display()));
    let mut sidecar = info.path.as_os_str().to_owned();
    sidecar.push(".sha256");
    let mut copied = copy.as_os_str().to_owned();
    copied.push(".sha256");
    std::fs::copy(&sidecar, &copied)
        .unwrap_or_else(|e| panic!("copy the sidecar {}: {e}", Path::new(&sidecar).display()));
    copy
}

/// When [`crate::database::DatabaseCapabilities::backup`] is claimed: a backup of the
/// fixture's database lands in its directory with a 64-hex-digit sha256 and its size;
/// [`Database::list_backups`] of that directory lists it with the same size and checksum;
/// [`Database::verify_backup`] accepts it; a copy with flipped bytes (sidecar unchanged) is
/// refused with [`ErrorKind::Conflict`] by verify and by restore; restoring the original into
/// the fixture's target reports that database and the verified checksum, and, through the
/// fixture's handle on it, the scratch table holds the rows it held at backup time. When
/// disclaimed, backup is [`ErrorKind::Unsupported`].
///
/// # Panics
/// When a step misbehaves.
#[allow(
    clippy::too_many_lines,
    reason = "one backup's story from dump to restored rows"
)]
pub async fn backup_verify_and_restore(db: &dyn Database, fx: &DatabaseFixture) {
    let Some((database, dir)) = &fx.backups else {
        return;
    };
    let opts = BackupOptions::new(database.clone(), dir.clone());
    if !db.capabilities().backup {
        refused(
            "backup",
            db.backup(&opts).await,
            ErrorKind::Unsupported,
            "backups are disclaimed",
        );
        return;
    }
    let rows_then = match &fx.scratch {
        Some(s) => Some(ok(
            "count_older_than",
            db.count_older_than(&s.every_row()).await,
        )),
        None => None,
    };
    let info = ok("backup", db.backup(&opts).await);
    assert_eq!(
        info.path.parent(),
        Some(dir.as_path()),
        "the dump is in the directory asked for: {info:?}"
    );
    assert!(
        info.sha256.len() == 64 && info.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
        "a sha256 in hex: {info:?}"
    );
    let on_disk = std::fs::metadata(&info.path)
        .unwrap_or_else(|e| panic!("the dump {} exists: {e}", info.path.display()));
    assert_eq!(info.bytes, on_disk.len(), "the reported size is the file's");

    let listed = ok("list_backups", db.list_backups(dir).await);
    let found = listed
        .iter()
        .find(|b| b.path == info.path)
        .unwrap_or_else(|| panic!("{} is listed: {listed:?}", info.path.display()));
    assert_eq!(
        (found.bytes, found.sha256.as_str()),
        (info.bytes, info.sha256.as_str()),
        "the listing agrees with the backup"
    );
    let verified = ok("verify_backup", db.verify_backup(&info.path).await);
    assert_eq!(
        verified.sha256, info.sha256,
        "verify recomputes the same checksum"
    );

    let corrupt = corrupt_copy(dir, &info);
    refused(
        "verify_backup",
        db.verify_backup(&corrupt).await,
        ErrorKind::Conflict,
        "a dump with flipped bytes fails verification",
    );

    let Some(target) = &fx.restore_into else {
        return;
    };
    refused(
        "restore",
        db.restore(&RestoreOptions::new(&corrupt, target.clone()))
            .await,
        ErrorKind::Conflict,
        "a corrupted dump is not restored",
    );
    let outcome = ok(
        "restore",
        db.restore(&RestoreOptions::new(&info.path, target.clone()))
            .await,
    );
    assert_eq!(
        (outcome.database.as_str(), outcome.sha256.as_str()),
        (target.as_str(), info.sha256.as_str()),
        "the restore names its target and the verified checksum: {outcome:?}"
    );
    if let (Some(restored), Some(scratch), Some(rows)) = (&fx.restored, &fx.scratch, rows_then) {
        let table = &scratch.table;
        match restored.count_older_than(&scratch.every_row()).await {
            Ok(n) => assert_eq!(
                n, rows,
                "{table} in the restored {target} holds the rows it held at backup time"
            ),
            Err(e) => panic!(
                "{table} in the restored {target} cannot be read ({}): it should hold the {rows} rows it held at backup time",
                e.chain()
            ),
        }
    }
}
