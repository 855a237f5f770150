//! Streaming the one regular file of a tar archive (what `docker cp` and `tar cf - FILE`
//! write) into a sink, reading the archive as it arrives: memory stays at one chunk whatever
//! the file's size. ustar, GNU (long names, base-256 sizes) and PAX (`path`, `size`) headers
//! are understood.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

use crate::platform::CopySink;

/// A tar block.
const BLOCK: usize = 512;
/// The most read from the archive (and written to the sink) at once.
const CHUNK: usize = 256 * 1024;
/// The largest PAX or GNU long-name header accepted (they hold names and a few numbers).
const MAX_META: u64 = 1024 * 1024;

/// Why an archive did not stream as one regular file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SingleFileError {
    /// The archive ended before any entry: the path named nothing.
    #[error("the archive holds no file")]
    Empty,
    /// The entry is a directory, a link or a special file.
    #[error("{name:?} is {what}, not a regular file")]
    NotAFile {
        /// The entry's name in the archive.
        name: String,
        /// What it is instead (`"a directory"`, `"a symbolic link"`...).
        what: &'static str,
    },
    /// The entry is not the one asked for.
    #[error("the archive member {name:?} is not the file asked for")]
    OtherName {
        /// The entry's name in the archive.
        name: String,
    },
    /// A second entry follows the file.
    #[error("the archive holds more than one entry (also {name:?})")]
    SeveralEntries {
        /// The second entry's name.
        name: String,
    },
    /// The archive could not be read (truncated, a bad header, a transport error).
    #[error("the archive is unreadable")]
    Read(#[source] io::Error),
    /// The sink refused a write.
    #[error("writing the file to its destination failed")]
    Write(#[source] io::Error),
}

/// The header fields of the next entry, after any PAX or GNU long-name headers.
struct Entry {
    name: String,
    kind: tar::EntryType,
    size: u64,
}

/// Stream the single regular file of the tar `archive` into `sink`, in chunks of at most
/// 256 KiB; returns its name in the archive and its size. With `member`, the entry must be
/// named so (trailing `/` aside). Nothing is written unless the first entry is a regular file
/// of that name; a second entry is found only after the file was written (the caller
/// discards the sink on any error). The sink is not flushed.
///
/// # Errors
/// [`SingleFileError::Empty`] for an archive without entries; `NotAFile` for a directory,
/// link or special file; `OtherName`; `SeveralEntries`; `Read` for a truncated or malformed
/// archive or a failing reader; `Write` when the sink fails.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut header = tar::Header::new_ustar();
/// header.set_size(5);
/// header.set_cksum();
/// let mut b = tar::Builder::new(Vec::new());
/// b.append_data(&mut header, "dump.rdb", &b"REDIS"[..]).unwrap();
/// let archive = b.into_inner().unwrap();
/// let mut sink = Vec::new();
/// let (name, n) = ops_core::archive::stream_single_file(archive.as_slice(), &mut sink, Some("dump.rdb")).await?;
/// assert_eq!((name.as_str(), n, sink.as_slice()), ("dump.rdb", 5, &b"REDIS"[..]));
/// # Ok::<(), ops_core::archive::SingleFileError>(()) }).unwrap();
/// ```
pub async fn stream_single_file<R: AsyncRead + Unpin>(
    mut archive: R,
    sink: &mut CopySink,
    member: Option<&str>,
) -> Result<(String, u64), SingleFileError> {
    let Some(entry) = next_entry(&mut archive).await? else {
        return Err(SingleFileError::Empty);
    };
    if !matches!(
        entry.kind,
        tar::EntryType::Regular | tar::EntryType::Continuous
    ) {
        let what = match entry.kind {
            tar::EntryType::Directory => "a directory",
            tar::EntryType::Symlink => "a symbolic link",
            tar::EntryType::Link => "a hard link",
            _ => "a special file",
        };
        return Err(SingleFileError::NotAFile {
            name: entry.name,
            what,
        });
    }
    if member.is_some_and(|m| entry.name.trim_end_matches('/') != m.trim_end_matches('/')) {
        return Err(SingleFileError::OtherName { name: entry.name });
    }
    let mut buf = vec![0; CHUNK];
    let mut left = entry.size;
    while left > 0 {
        let want = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        let n = archive
            .read(&mut buf[..want])
            .await
            .map_err(SingleFileError::Read)?;
        if n == 0 {
            return Err(truncated());
        }
        sink.write_all(&buf[..n])
            .await
            .map_err(SingleFileError::Write)?;
        left -= n as u64;
    }
    skip(&mut archive, padding(entry.size)).await?;
    if let Some(next) = next_entry(&mut archive).await? {
        return Err(SingleFileError::SeveralEntries { name: next.name });
    }
    Ok((entry.name, entry.size))
}

fn truncated() -> SingleFileError {
    SingleFileError::Read(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the archive ends inside an entry",
    ))
}

/// Bytes of padding after `size` bytes of data, up to the next block.
fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// Reads `n` bytes and drops them.
async fn skip<R: AsyncRead + Unpin>(archive: &mut R, n: u64) -> Result<(), SingleFileError> {
    let copied = tokio::io::copy(&mut (&mut *archive).take(n), &mut tokio::io::sink())
        .await
        .map_err(SingleFileError::Read)?;
    if copied < n {
        return Err(truncated());
    }
    Ok(())
}

/// Reads one block; `None` at the end of the stream (no byte read).
async fn block<R: AsyncRead + Unpin>(
    archive: &mut R,
) -> Result<Option<[u8; BLOCK]>, SingleFileError> {
    let mut b = [0u8; BLOCK];
    let mut filled = 0;
    while filled < BLOCK {
        let n = archive
            .read(&mut b[filled..])
            .await
            .map_err(SingleFileError::Read)?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(truncated())
            };
        }
        filled += n;
    }
    Ok(Some(b))
}

/// Reads the body of a PAX or GNU metadata entry (bounded), dropping its padding.
async fn meta<R: AsyncRead + Unpin>(
    archive: &mut R,
    size: u64,
) -> Result<Vec<u8>, SingleFileError> {
    if size > MAX_META {
        return Err(SingleFileError::Read(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a {size}-byte extended header is over the {MAX_META}-byte limit"),
        )));
    }
    let mut body = Vec::new();
    (&mut *archive)
        .take(size)
        .read_to_end(&mut body)
        .await
        .map_err(SingleFileError::Read)?;
    if (body.len() as u64) < size {
        return Err(truncated());
    }
    skip(archive, padding(size)).await?;
    Ok(body)
}

/// The `path` and `size` records of a PAX extended header (`"LEN key=value\n"` each).
fn pax_records(body: &[u8]) -> (Option<String>, Option<u64>) {
    let (mut path, mut size) = (None, None);
    let mut rest = body;
    while let Some(space) = rest.iter().position(|&b| b == b' ') {
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|&l| l > space && l <= rest.len())
        else {
            break;
        };
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            let value = String::from_utf8_lossy(&record[eq + 1..]).into_owned();
            match &record[..eq] {
                b"path" => path = Some(value),
                b"size" => size = value.parse().ok(),
                _ => {}
            }
        }
        rest = &rest[len..];
    }
    (path, size)
}

/// Whether the header's checksum field matches its bytes (the field counted as spaces).
fn checksum_ok(b: &[u8; BLOCK]) -> bool {
    let sum: u64 = b
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(x)
            }
        })
        .sum();
    let field = String::from_utf8_lossy(&b[148..156]);
    let field = field.trim_matches(|c: char| c == '\0' || c == ' ');
    u64::from_str_radix(field, 8).is_ok_and(|v| v == sum)
}

/// The next entry's header, with PAX and GNU long names and sizes applied; `None` at the end
/// of the archive (a zero block or the end of the stream).
async fn next_entry<R: AsyncRead + Unpin>(
    archive: &mut R,
) -> Result<Option<Entry>, SingleFileError> {
    let (mut long_name, mut pax_path, mut pax_size) = (None, None, None);
    loop {
        let Some(b) = block(archive).await? else {
            return Ok(None);
        };
        if b.iter().all(|&x| x == 0) {
            return Ok(None);
        }
        if !checksum_ok(&b) {
            return Err(SingleFileError::Read(io::Error::new(
                io::ErrorKind::InvalidData,
                "a tar header has a wrong checksum",
            )));
        }
        let header = tar::Header::from_byte_slice(&b);
        let size = header.entry_size().map_err(SingleFileError::Read)?;
        let kind = header.entry_type();
        match kind {
            tar::EntryType::XHeader => {
                let (path, size) = pax_records(&meta(archive, size).await?);
                pax_path = path.or(pax_path);
                pax_size = size.or(pax_size);
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::GNULongLink => {
                meta(archive, size).await?;
            }
            tar::EntryType::GNULongName => {
                let body = meta(archive, size).await?;
                let end = body.iter().position(|&x| x == 0).unwrap_or(body.len());
                long_name = Some(String::from_utf8_lossy(&body[..end]).into_owned());
            }
            _ => {
                let name = pax_path
                    .or(long_name)
                    .unwrap_or_else(|| String::from_utf8_lossy(&header.path_bytes()).into_owned());
                return Ok(Some(Entry {
                    name,
                    kind,
                    size: pax_size.unwrap_or(size),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// A reader that hands out at most `step` bytes per read, like a network stream.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let n = self.step.min(self.data.len()).min(buf.remaining());
            buf.put_slice(&self.data[..n]);
            self.data = &self.data[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_single_file_streams_whole_through_any_read_size() {
        let data: Vec<u8> = (0..=255u8).cycle().take(CHUNK * 2 + 777).collect();
        let tar = archive(&[("dump.rdb", tar::EntryType::Regular, &data)]);
        for step in [1, 511, 512, 4096, 1 << 20] {
            let mut sink = Vec::new();
            let reader = Trickle { data: &tar, step };
            let (name, n) = stream_single_file(reader, &mut sink, Some("dump.rdb"))
                .await
                .unwrap();
            assert_eq!((name.as_str(), n), ("dump.rdb", data.len() as u64));
            assert_eq!(sink, data, "step {step}");
        }
    }

    #[tokio::test]
    async fn long_names_through_gnu_and_pax_headers_are_read() {
        let long = format!("{}/dump.rdb", "d".repeat(150));
        let gnu = archive(&[(&long, tar::EntryType::Regular, b"REDIS")]);
        let mut sink = Vec::new();
        let (name, _) = stream_single_file(gnu.as_slice(), &mut sink, Some(&long))
            .await
            .unwrap();
        assert_eq!((name, sink.as_slice()), (long.clone(), &b"REDIS"[..]));

        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("path", long.as_bytes()), ("size", b"3".as_slice())])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        b.append_data(&mut h, "short", &b"abc"[..]).unwrap();
        let pax = b.into_inner().unwrap();
        let mut sink = Vec::new();
        let (name, n) = stream_single_file(pax.as_slice(), &mut sink, None)
            .await
            .unwrap();
        assert_eq!((name, n, sink.as_slice()), (long, 3, &b"abc"[..]));
    }

    #[tokio::test]
    async fn directories_links_other_names_and_second_entries_are_refused() {
        let mut sink = Vec::new();
        let dir = archive(&[("data/", tar::EntryType::Directory, b"")]);
        let err = stream_single_file(dir.as_slice(), &mut sink, None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                SingleFileError::NotAFile {
                    what: "a directory",
                    ..
                }
            ),
            "{err}"
        );
        let link = archive(&[("x", tar::EntryType::Symlink, b"")]);
        let err = stream_single_file(link.as_slice(), &mut sink, None)
            .await
            .unwrap_err();
        assert!(matches!(err, SingleFileError::NotAFile { .. }), "{err}");
        let other = archive(&[("y", tar::EntryType::Regular, b"1")]);
        let err = stream_single_file(other.as_slice(), &mut sink, Some("x"))
            .await
            .unwrap_err();
        assert!(matches!(err, SingleFileError::OtherName { .. }), "{err}");
        assert!(sink.is_empty(), "nothing is written for a refused entry");
        let two = archive(&[
            ("a", tar::EntryType::Regular, b"1"),
            ("b", tar::EntryType::Regular, b"2"),
        ]);
        let err = stream_single_file(two.as_slice(), &mut sink, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, SingleFileError::SeveralEntries { ref name } if name == "b"),
            "{err}"
        );
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
            let _ = run(stream_single_file(bytes.as_slice(), &mut Vec::new(), None));
        }

        #[test]
        fn any_file_round_trips(
            name in "[a-z]{1,120}",
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
        ) {
            let tar = archive(&[(name.as_str(), tar::EntryType::Regular, &data)]);
            let mut sink = Vec::new();
            let (got, n) = run(stream_single_file(tar.as_slice(), &mut sink, Some(&name))).unwrap();
            proptest::prop_assert_eq!((got, n), (name, data.len() as u64));
            proptest::prop_assert_eq!(sink, data);
        }
    }

    #[tokio::test]
    async fn empty_truncated_and_corrupt_archives_are_errors() {
        let mut sink = Vec::new();
        let err = stream_single_file(&b""[..], &mut sink, None)
            .await
            .unwrap_err();
        assert!(matches!(err, SingleFileError::Empty), "{err}");
        let zeros = [0u8; 1024];
        let err = stream_single_file(&zeros[..], &mut sink, None)
            .await
            .unwrap_err();
        assert!(matches!(err, SingleFileError::Empty), "{err}");
        let tar = archive(&[("a", tar::EntryType::Regular, &[7u8; 2000])]);
        let err = stream_single_file(&tar[..1500], &mut sink, None)
            .await
            .unwrap_err();
        assert!(matches!(err, SingleFileError::Read(_)), "{err}");
        let mut bad = tar.clone();
        bad[0] ^= 1;
        let err = stream_single_file(bad.as_slice(), &mut Vec::new(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, SingleFileError::Read(_)), "{err}");
    }
}
