//! The simulated container's `tar`, enough for `kubectl cp` and opsbook: `tar cf - PATH…`
//! writes a ustar archive of the files to stdout (leading `/` removed from member names, as
//! GNU tar does), `tar xmf - -C DIR` reads one from stdin into the filesystem and refuses
//! members that would land outside `DIR`, links and devices. Old-style (`cf`) and dashed
//! (`-cf`) flags, `-C DIR`, `--no-same-owner`, `--no-same-permissions` and `--version`.

use std::io::Read as _;

use crate::commands::Outcome;
use crate::containerfs::{self, Fs};

/// GNU tar's record size: archives it writes are padded to a multiple of it.
const RECORD: usize = 10_240;

/// What the command line asked for.
#[derive(Debug, Default)]
struct Options {
    create: bool,
    extract: bool,
    version: bool,
    file: Option<String>,
    directory: Option<String>,
    paths: Vec<String>,
}

fn usage(message: &str) -> Outcome {
    Outcome::fail(
        2,
        format!("tar: {message}\nTry 'tar --help' or 'tar --usage' for more information.\n"),
    )
}

/// Applies one short option letter; `value` is what follows it in the same word, if anything.
fn letter(
    opts: &mut Options,
    pending: &mut Vec<char>,
    c: char,
    value: Option<String>,
) -> Result<(), Outcome> {
    match c {
        'c' => opts.create = true,
        'x' => opts.extract = true,
        'm' | 'p' | 'v' | 'o' => {}
        'f' | 'C' => match value {
            Some(v) if c == 'f' => opts.file = Some(v),
            Some(v) => opts.directory = Some(v),
            None => pending.push(c),
        },
        other => return Err(usage(&format!("the k8s double's tar has no -{other}"))),
    }
    Ok(())
}

fn parse(args: &[String]) -> Result<Options, Outcome> {
    let mut opts = Options::default();
    // Letters waiting for their argument (`f`, `C`), in order.
    let mut pending: Vec<char> = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some(("directory", dir)) => opts.directory = Some(dir.to_owned()),
                Some(("file", file)) => opts.file = Some(file.to_owned()),
                _ => match long {
                    "version" => opts.version = true,
                    "no-same-permissions" | "no-same-owner" | "touch" => {}
                    "extract" | "get" => opts.extract = true,
                    "create" => opts.create = true,
                    _ => return Err(usage(&format!("unrecognized option '{arg}'"))),
                },
            }
        } else if (i == 0 || arg.starts_with('-')) && arg.len() > 1 && pending.is_empty() {
            // `cf` (old style, first word only) or `-xmf`; `-C/tmp` carries its value.
            let letters = arg.strip_prefix('-').unwrap_or(arg);
            for (at, c) in letters.char_indices() {
                let rest = &letters[at + c.len_utf8()..];
                if arg.starts_with('-') && matches!(c, 'f' | 'C') && !rest.is_empty() {
                    letter(&mut opts, &mut pending, c, Some(rest.to_owned()))?;
                    break;
                }
                letter(&mut opts, &mut pending, c, None)?;
            }
        } else if !pending.is_empty() {
            let c = pending.remove(0);
            letter(&mut opts, &mut pending, c, Some(arg.clone()))?;
        } else {
            opts.paths.push(arg.clone());
        }
    }
    if let Some(c) = pending.first() {
        return Err(usage(&format!("option requires an argument -- '{c}'")));
    }
    Ok(opts)
}

/// Runs `tar ARGS` against `fs` with `stdin`.
pub(crate) fn run(fs: &mut Fs, args: &[String], stdin: &[u8]) -> Outcome {
    let opts = match parse(args) {
        Ok(opts) => opts,
        Err(out) => return out,
    };
    if opts.version {
        return Outcome::ok("tar (GNU tar) 1.34\n");
    }
    if opts.file.as_deref() != Some("-") {
        return usage("the k8s double's tar reads and writes archives on stdin/stdout only (f -)");
    }
    match (opts.create, opts.extract) {
        (true, false) => create(fs, &opts),
        (false, true) => extract(fs, &opts, stdin),
        _ => usage("You must specify one of the '-Acdtrux', '--delete' or '--test-label' options"),
    }
}

/// A header for a regular file or directory of `size` bytes.
fn header(dir: bool, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_size(size);
    h.set_mtime(
        jiff::Timestamp::now()
            .as_second()
            .try_into()
            .unwrap_or_default(),
    );
    let _ = h.set_username("root");
    let _ = h.set_groupname("root");
    h
}

fn create(fs: &Fs, opts: &Options) -> Outcome {
    if opts.paths.is_empty() {
        return Outcome::fail(
            2,
            "tar: Cowardly refusing to create an empty archive\nTry 'tar --help' or 'tar --usage' for more information.\n",
        );
    }
    let base = opts.directory.as_deref().unwrap_or("/");
    let mut builder = tar::Builder::new(Vec::new());
    let mut out = Outcome::default();
    let mut stripped = false;
    for path in &opts.paths {
        let on_disk = containerfs::join(base, path);
        let member = path.trim_start_matches('/');
        if member.len() != path.len() && !stripped {
            out.stderr
                .extend_from_slice(b"tar: Removing leading `/' from member names\n");
            stripped = true;
        }
        let member = if member.is_empty() { "." } else { member };
        let appended = if let Some(data) = fs.file(&on_disk) {
            append(&mut builder, member, Some(data))
        } else if fs.is_dir(&on_disk) {
            let mut result = append(&mut builder, &format!("{member}/"), None);
            for (inner, data) in fs.walk(&on_disk) {
                let rel = inner
                    .strip_prefix(on_disk.as_str())
                    .unwrap_or(&inner)
                    .trim_start_matches('/');
                let name = format!("{}/{rel}", member.trim_end_matches('/'));
                let name = if data.is_none() {
                    format!("{name}/")
                } else {
                    name
                };
                result = result.and_then(|()| append(&mut builder, &name, data));
            }
            result
        } else {
            out.stderr.extend_from_slice(
                format!("tar: {path}: Cannot stat: No such file or directory\n").as_bytes(),
            );
            out.code = 2;
            Ok(())
        };
        if let Err(e) = appended {
            out.stderr
                .extend_from_slice(format!("tar: {member}: {e}\n").as_bytes());
            out.code = 2;
        }
    }
    if out.code != 0 {
        out.stderr
            .extend_from_slice(b"tar: Exiting with failure status due to previous errors\n");
    }
    match builder.into_inner() {
        Ok(mut archive) => {
            let padded = archive.len().div_ceil(RECORD).max(1) * RECORD;
            archive.resize(padded, 0);
            out.stdout = archive;
        }
        Err(e) => {
            out.stderr
                .extend_from_slice(format!("tar: cannot write the archive: {e}\n").as_bytes());
            out.code = 2;
        }
    }
    out
}

fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &str,
    data: Option<&[u8]>,
) -> std::io::Result<()> {
    let bytes = data.unwrap_or_default();
    let mut h = header(data.is_none(), bytes.len() as u64);
    builder.append_data(&mut h, name, bytes)
}

fn extract(fs: &mut Fs, opts: &Options, stdin: &[u8]) -> Outcome {
    let dir = containerfs::normalize(opts.directory.as_deref().unwrap_or("/"));
    if !fs.is_dir(&dir) {
        return Outcome::fail(
            2,
            format!(
                "tar: {}: Cannot open: No such file or directory\ntar: Error is not recoverable: exiting now\n",
                opts.directory.as_deref().unwrap_or("/")
            ),
        );
    }
    let not_an_archive = || {
        Outcome::fail(
            2,
            "tar: This does not look like a tar archive\ntar: Exiting with failure status due to previous errors\n",
        )
    };
    if stdin.len() < 512 {
        return not_an_archive();
    }
    let mut archive = tar::Archive::new(stdin);
    let Ok(entries) = archive.entries() else {
        return not_an_archive();
    };
    let mut out = Outcome::default();
    let complain = |out: &mut Outcome, message: String| {
        out.stderr
            .extend_from_slice(format!("tar: {message}\n").as_bytes());
        out.code = 2;
    };
    for entry in entries {
        let Ok(mut entry) = entry else {
            return not_an_archive();
        };
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = raw.trim_start_matches('/');
        if name.split('/').any(|part| part == "..") {
            complain(&mut out, format!("{raw}: Member name contains '..'"));
            continue;
        }
        let target = containerfs::join(&dir, name);
        let kind = entry.header().entry_type();
        let result = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                match entry.read_to_end(&mut data) {
                    Ok(_) => fs
                        .write(&target, data)
                        .map_err(|e| format!("{name}: Cannot open: {e}")),
                    Err(e) => Err(format!("{raw}: Read error: {e}")),
                }
            }
            tar::EntryType::Directory => fs
                .make_dirs(&target)
                .map_err(|e| format!("{name}: Cannot mkdir: {e}")),
            tar::EntryType::Symlink => Err(format!(
                "{raw}: Cannot create symlink: the k8s double stores regular files only"
            )),
            tar::EntryType::Link => Err(format!(
                "{raw}: Cannot hard link: the k8s double stores regular files only"
            )),
            _ => Err(format!(
                "{raw}: Cannot mknod: the k8s double stores regular files only"
            )),
        };
        if let Err(message) = result {
            complain(&mut out, message);
        }
    }
    if out.code != 0 {
        out.stderr
            .extend_from_slice(b"tar: Exiting with failure status due to previous errors\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn created_archives_extract_elsewhere() {
        let mut fs = Fs::default();
        fs.write("/srv/a.txt", b"alpha".to_vec()).unwrap();
        fs.write("/srv/sub/b.txt", b"beta".to_vec()).unwrap();
        let out = run(&mut fs, &args(&["tar", "cf", "-", "/srv"])[1..], &[]);
        assert_eq!(out.code, 0, "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout.len() % RECORD, 0);
        assert!(String::from_utf8_lossy(&out.stderr).contains("Removing leading"));
        let mut other = Fs::default();
        let done = run(&mut other, &args(&["-xmf", "-", "-C", "/tmp"]), &out.stdout);
        assert_eq!(done.code, 0, "{}", String::from_utf8_lossy(&done.stderr));
        assert_eq!(other.file("/tmp/srv/sub/b.txt"), Some(&b"beta"[..]));
        assert_eq!(other.file("/tmp/srv/a.txt"), Some(&b"alpha"[..]));
    }

    #[test]
    fn extraction_refuses_escapes_and_missing_directories() {
        let mut archive = Vec::new();
        let mut h = header(false, 4);
        h.as_old_mut().name[..13].copy_from_slice(b"../etc/passwd");
        h.set_cksum();
        archive.extend_from_slice(h.as_bytes());
        archive.extend_from_slice(b"evil");
        archive.resize(RECORD, 0);
        let mut fs = Fs::default();
        let out = run(&mut fs, &args(&["xmf", "-", "-C", "/tmp"]), &archive);
        assert_eq!(out.code, 2);
        assert!(String::from_utf8_lossy(&out.stderr).contains("contains '..'"));
        assert!(fs.file("/etc/passwd").is_none());
        let out = run(&mut fs, &args(&["xmf", "-", "-C", "/nowhere"]), &archive);
        assert_eq!(out.code, 2);
        assert_eq!(run(&mut fs, &args(&["xf", "-"]), b"junk").code, 2);
        assert_eq!(run(&mut fs, &args(&["--version"]), &[]).code, 0);
        assert_eq!(run(&mut fs, &args(&["cf", "-", "/missing"]), &[]).code, 2);
    }
}
