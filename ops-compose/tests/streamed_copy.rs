//! `copy_from_into` against the real Docker engine: a 64 MiB file streams out of a container
//! into a record file with this process's peak memory growing by less than 16 MiB (the
//! buffered `copy_from` of the same file is measured too, so the measurement is seen to
//! notice a whole-file copy), and the record's SHA-256 is what `sha256sum` says inside the
//! container. Directories, links and missing files are refused before a byte is written.
//! Skips (prints why) without an engine or images, unless CI. One test in this binary: the
//! peak memory is the process's, so nothing else may run beside it.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::time::Duration;

use ops_core::artifact::ArtifactWriter;
use ops_core::platform::ExecCommand;
use ops_core::{ErrorKind, InstanceRef, Platform};
use ops_tests::bench::PeakRss;
use support::Spec;

const MIB: usize = 1024 * 1024;
const SIZE: usize = 64 * MIB;

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("bounded wait")
}

/// Runs `script` with `sh -c` in `instance`, failing on a non-zero exit; its stdout.
async fn sh(platform: &dyn Platform, instance: &InstanceRef, script: &str) -> String {
    let cmd = ExecCommand::new(["sh", "-c", script])
        .unwrap()
        .with_timeout(Duration::from_secs(60));
    let out = bounded(platform.exec(instance, &cmd)).await.unwrap();
    assert_eq!(
        out.exit_code,
        Some(0),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_file_streams_out_in_bounded_memory_with_the_containers_checksum() {
    let p = project_or_skip!("stream");
    let api = p.service("api");
    p.add("api", 1, &Spec::default()).await;
    let one = api.instance(&format!("{}-api-1", p.name)).unwrap();
    let platform: &dyn Platform = p.platform.as_ref();
    sh(
        platform,
        &one,
        &format!("head -c {SIZE} /dev/urandom > /tmp/big.bin && ln -s /tmp/big.bin /tmp/link.bin"),
    )
    .await;
    let in_container = sh(platform, &one, "sha256sum /tmp/big.bin").await;
    let expected = in_container.split_whitespace().next().unwrap().to_owned();
    assert_eq!(expected.len(), 64, "{in_container}");

    let dir = tempfile::tempdir().unwrap();
    let peak = PeakRss::start();
    let mut out = ArtifactWriter::create(dir.path(), "big.bin").await.unwrap();
    let n = bounded(platform.copy_from_into(&one, "/tmp/big.bin", &mut out))
        .await
        .unwrap();
    let info = out.finish().await.unwrap();
    let streamed = peak.growth_mib();
    assert_eq!((n, info.bytes), (SIZE as u64, SIZE as u64));
    assert_eq!(info.sha256, expected, "the record is the container's file");
    assert_eq!(
        std::fs::metadata(&info.path).unwrap().len(),
        SIZE as u64,
        "the file on disk has every byte"
    );

    // The same file buffered whole: the measurement sees it, so the bound above means
    // something.
    let peak = PeakRss::start();
    let whole = bounded(platform.copy_from(&one, "/tmp/big.bin"))
        .await
        .unwrap();
    let buffered = peak.growth_mib();
    assert_eq!(whole.len(), SIZE);
    drop(whole);
    eprintln!("peak RSS growth: streamed {streamed:.1} MiB, buffered {buffered:.1} MiB");
    assert!(
        buffered >= 60.0,
        "a buffered copy of 64 MiB grows the peak by {buffered:.1} MiB: the measurement is blind"
    );
    assert!(
        streamed < 16.0,
        "streaming 64 MiB grew the peak RSS by {streamed:.1} MiB (limit 16)"
    );

    for (path, kind) in [
        ("/tmp", ErrorKind::InvalidInput),
        ("/tmp/link.bin", ErrorKind::InvalidInput),
        ("/tmp/missing.bin", ErrorKind::NotFound),
        ("relative.bin", ErrorKind::InvalidInput),
    ] {
        let mut sink = Vec::new();
        let err = bounded(platform.copy_from_into(&one, path, &mut sink))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{path}: {err:#}");
        assert!(sink.is_empty(), "{path}: nothing is written");
    }
}
