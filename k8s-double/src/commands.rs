//! The simulated container's programs: what an exec runs. An argv, never a shell: `tar` (create
//! and extract, see [`crate::tarcmd`]), `cat`, `echo`, `env`, `printenv`, `ls`, `test`, `true`,
//! `false` and `sh -c 'exit N'`; anything else exits 127 with "command not found".

use std::fmt::Write as _;

use crate::containerfs::Fs;
use crate::tarcmd;

/// What a command printed and how it exited.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) code: i32,
}

impl Outcome {
    pub(crate) fn ok(stdout: impl Into<Vec<u8>>) -> Self {
        Self {
            stdout: stdout.into(),
            ..Self::default()
        }
    }

    pub(crate) fn fail(code: i32, stderr: impl Into<Vec<u8>>) -> Self {
        Self {
            stderr: stderr.into(),
            code,
            ..Self::default()
        }
    }
}

/// What a command sees of its container.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) fs: &'a mut Fs,
    /// The environment, in order (`PATH`, `HOSTNAME`, then the pod spec's `env`).
    pub(crate) env: Vec<(String, String)>,
    pub(crate) stdin: &'a [u8],
}

/// Runs `argv` (a program and its arguments) in the container.
pub(crate) fn run(ctx: &mut Context<'_>, argv: &[String]) -> Outcome {
    let Some((program, params)) = argv.split_first() else {
        return Outcome::fail(127, "exec: no command given\n");
    };
    // `/bin/cat` and `cat` are the same program.
    let name = program.rsplit('/').next().unwrap_or(program);
    match name {
        "true" => Outcome::default(),
        "false" => Outcome::fail(1, Vec::new()),
        "echo" => echo(params),
        "cat" => cat(ctx.fs, params),
        "env" if params.is_empty() => Outcome::ok(env_text(&ctx.env)),
        "printenv" => printenv(&ctx.env, params),
        "ls" => ls(ctx.fs, params),
        "test" | "[" => test(ctx.fs, params),
        "tar" => tarcmd::run(ctx.fs, params, ctx.stdin),
        "sh" | "bash" => shell_exit(program, params),
        _ => Outcome::fail(127, format!("{program}: command not found\n")),
    }
}

fn echo(args: &[String]) -> Outcome {
    let (newline, words) = match args.split_first() {
        Some((flag, rest)) if flag == "-n" => (false, rest),
        _ => (true, args),
    };
    let mut text = words.join(" ");
    if newline {
        text.push('\n');
    }
    Outcome::ok(text)
}

fn cat(fs: &Fs, args: &[String]) -> Outcome {
    let mut out = Outcome::default();
    for path in args {
        if let Some(data) = fs.file(path) {
            out.stdout.extend_from_slice(data);
        } else if fs.is_dir(path) {
            out.stderr
                .extend_from_slice(format!("cat: {path}: Is a directory\n").as_bytes());
            out.code = 1;
        } else {
            out.stderr
                .extend_from_slice(format!("cat: {path}: No such file or directory\n").as_bytes());
            out.code = 1;
        }
    }
    out
}

fn env_text(env: &[(String, String)]) -> String {
    env.iter().fold(String::new(), |mut text, (k, v)| {
        let _ = writeln!(text, "{k}={v}");
        text
    })
}

fn printenv(env: &[(String, String)], names: &[String]) -> Outcome {
    if names.is_empty() {
        return Outcome::ok(env_text(env));
    }
    let mut out = Outcome::default();
    for name in names {
        match env.iter().rev().find(|(k, _)| k == name) {
            Some((_, value)) => {
                out.stdout.extend_from_slice(value.as_bytes());
                out.stdout.push(b'\n');
            }
            None => out.code = 1,
        }
    }
    out
}

fn ls(fs: &Fs, args: &[String]) -> Outcome {
    let paths: Vec<&str> = if args.is_empty() {
        vec!["/"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    let mut out = Outcome::default();
    for path in paths {
        if fs.file(path).is_some() {
            out.stdout.extend_from_slice(format!("{path}\n").as_bytes());
        } else if fs.is_dir(path) {
            for name in fs.list(path) {
                out.stdout.extend_from_slice(format!("{name}\n").as_bytes());
            }
        } else {
            out.stderr.extend_from_slice(
                format!("ls: cannot access '{path}': No such file or directory\n").as_bytes(),
            );
            out.code = 2;
        }
    }
    out
}

/// `test -d|-f|-e PATH` (what `kubectl cp` asks before copying into a pod).
fn test(fs: &Fs, args: &[String]) -> Outcome {
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "]")
        .collect();
    let holds = match args.as_slice() {
        ["-d", path] => fs.is_dir(path),
        ["-f", path] => fs.file(path).is_some(),
        ["-e", path] => fs.is_dir(path) || fs.file(path).is_some(),
        [] => false,
        [word] => !word.is_empty(),
        _ => return Outcome::fail(2, "test: unsupported expression\n"),
    };
    if holds {
        Outcome::default()
    } else {
        Outcome::fail(1, Vec::new())
    }
}

/// `sh -c 'exit N'` and nothing else: the double has no shell.
fn shell_exit(program: &str, args: &[String]) -> Outcome {
    if let [flag, script] = args
        && flag == "-c"
    {
        let script = script.trim();
        if script == "exit" || script == "true" {
            return Outcome::default();
        }
        if let Some(code) = script
            .strip_prefix("exit ")
            .and_then(|n| n.trim().parse::<u8>().ok())
        {
            return Outcome::fail(i32::from(code), Vec::new());
        }
    }
    Outcome::fail(
        127,
        format!("{program}: the k8s double runs no shell scripts but `{program} -c 'exit N'`\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_in(fs: &mut Fs, argv: &[&str]) -> Outcome {
        let argv: Vec<String> = argv.iter().map(|a| (*a).to_owned()).collect();
        let mut ctx = Context {
            fs,
            env: vec![("MODE".to_owned(), "fast".to_owned())],
            stdin: &[],
        };
        run(&mut ctx, &argv)
    }

    #[test]
    fn small_programs_behave_like_coreutils() {
        let mut fs = Fs::default();
        fs.write("/etc/app.conf", b"a=1\n".to_vec()).unwrap();
        assert_eq!(run_in(&mut fs, &["cat", "/etc/app.conf"]).stdout, b"a=1\n");
        assert_eq!(run_in(&mut fs, &["cat", "/nope"]).code, 1);
        assert_eq!(run_in(&mut fs, &["echo", "a;b", "c"]).stdout, b"a;b c\n");
        assert_eq!(run_in(&mut fs, &["printenv", "MODE"]).stdout, b"fast\n");
        assert_eq!(run_in(&mut fs, &["env"]).stdout, b"MODE=fast\n");
        assert_eq!(run_in(&mut fs, &["test", "-d", "/etc"]).code, 0);
        assert_eq!(run_in(&mut fs, &["test", "-d", "/etc/app.conf"]).code, 1);
        assert_eq!(run_in(&mut fs, &["/bin/false"]).code, 1);
        assert_eq!(run_in(&mut fs, &["sh", "-c", "exit 3"]).code, 3);
        let missing = run_in(&mut fs, &["rm", "-rf", "/"]);
        assert_eq!(missing.code, 127);
        assert_eq!(missing.stderr, b"rm: command not found\n");
        assert!(
            String::from_utf8_lossy(&run_in(&mut fs, &["ls", "/etc"]).stdout).contains("app.conf")
        );
    }
}
