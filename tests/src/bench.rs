//! What every benchmark (`cargo bench`, run by `scripts/bench`) shares: sizes and rounds from
//! the environment, the order of methods within a round, samples printed in the `RESULT`
//! line, and the kernel's own accounting of CPU time, peak memory and filesystems.
//!
//! A benchmark times each method once per round, in an order that rotates from round to
//! round, and prints its last line as `RESULT key=value …`, where a timed figure is the
//! comma-separated list of its per-round samples (`opsbook_s=0.41,0.39,0.40`). `scripts/bench`
//! computes min / median / max and per-round ratios from those lists, so a baseline measured
//! in round 2 is only ever compared with opsbook's run of round 2.
//!
//! Environment: `OPSBOOK_BENCH_ROUNDS` (rounds, default 3) and `OPSBOOK_BENCH_QUICK=1` (small
//! sizes: each benchmark picks its own).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A whole number from the environment, or `default` when unset or unparsable.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Whether `OPSBOOK_BENCH_QUICK` asks for the small sizes (`scripts/bench --quick`).
pub fn quick() -> bool {
    std::env::var("OPSBOOK_BENCH_QUICK").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// `full` normally, `small` in quick mode; either overridden by the variable `name`.
pub fn size(name: &str, full: usize, small: usize) -> usize {
    env_usize(name, if quick() { small } else { full })
}

/// Rounds per method: `OPSBOOK_BENCH_ROUNDS`, default 3, at least 1.
pub fn rounds() -> usize {
    env_usize("OPSBOOK_BENCH_ROUNDS", 3).max(1)
}

/// The order of `methods` methods in round `round`: rotated by one each round, so every
/// method runs first, second, … equally often and none always follows the same one.
pub fn order(round: usize, methods: usize) -> impl Iterator<Item = usize> {
    (0..methods).map(move |m| (m + round) % methods)
}

/// Per-round samples of one figure.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Record one round's value.
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    /// Record a duration in seconds.
    pub fn push_secs(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64());
    }

    /// The last value recorded (0 before any).
    pub fn last(&self) -> f64 {
        self.0.last().copied().unwrap_or_default()
    }

    /// The median (the mean of the middle two for an even count; 0 when empty).
    pub fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
        }
    }

    /// The values, comma-separated, `digits` after the point.
    pub fn list(&self, digits: usize) -> String {
        let mut out = String::new();
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{v:.digits$}");
        }
        out
    }
}

/// The `RESULT key=value …` line a benchmark ends with.
#[derive(Debug, Default)]
pub struct ResultLine(String);

impl ResultLine {
    /// An empty line.
    pub fn new() -> Self {
        Self::default()
    }

    /// A plain value (a size, a count, a verdict).
    #[must_use]
    pub fn value(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        let _ = write!(self.0, " {key}={value}");
        self
    }

    /// Per-round samples, with `digits` after the point.
    #[must_use]
    pub fn samples(self, key: &str, samples: &Samples, digits: usize) -> Self {
        let list = samples.list(digits);
        self.value(key, list)
    }

    /// Print it as the last line of the benchmark.
    #[allow(clippy::print_stdout, reason = "the benchmark's output")]
    pub fn print(self) {
        println!("RESULT{}", self.0);
    }
}

/// The kernel's clock ticks per second for `/proc/*/stat` times (`getconf CLK_TCK`).
///
/// # Panics
/// When `getconf` is missing or answers something else than a number: CPU figures would be
/// wrong, so the benchmark stops.
pub fn clock_ticks() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok());
    match out {
        Some(hz) if hz > 0.0 => hz,
        _ => panic!("getconf CLK_TCK did not answer a number"),
    }
}

/// CPU time of this process, from the kernel's own accounting in `/proc/self/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    /// User + system time of every thread of this process, seconds.
    pub own: f64,
    /// User + system time of the children this process has waited for (and of their
    /// waited-for children), seconds.
    pub children: f64,
}

impl CpuTimes {
    /// Read them now; `hz` from [`clock_ticks`].
    pub fn now(hz: f64) -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // After the command name, which is in parentheses and may hold spaces: field 3 of
        // proc(5) is the first here, so utime (14), stime (15), cutime (16), cstime (17) are
        // at indexes 11 to 14.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<f64> = after
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(|v| v.parse().unwrap_or_default())
            .collect();
        let get = |i: usize| fields.get(i).copied().unwrap_or_default();
        Self {
            own: (get(0) + get(1)) / hz,
            children: (get(2) + get(3)) / hz,
        }
    }

    /// What was spent since `earlier`.
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        Self {
            own: self.own - earlier.own,
            children: self.children - earlier.children,
        }
    }
}

/// A measurement of this process's peak resident memory over a stretch of code.
#[derive(Debug)]
pub struct PeakRss {
    start_kb: u64,
}

impl PeakRss {
    /// Reset the kernel's peak (`VmHWM`, by writing 5 to `/proc/self/clear_refs`) to the
    /// current resident size and remember that size.
    ///
    /// # Panics
    /// When the kernel refuses the reset (before Linux 4.0, or `/proc` not mounted): the
    /// figure would be the whole run's peak, not this stretch's.
    pub fn start() -> Self {
        std::fs::write("/proc/self/clear_refs", "5")
            .unwrap_or_else(|e| panic!("cannot reset the peak RSS in /proc/self/clear_refs: {e}"));
        Self {
            start_kb: status_kb("VmRSS:"),
        }
    }

    /// How far the resident size rose above its size at [`PeakRss::start`], in MiB.
    #[allow(clippy::cast_precision_loss, reason = "kilobytes fit an f64")]
    pub fn growth_mib(&self) -> f64 {
        status_kb("VmHWM:").saturating_sub(self.start_kb) as f64 / 1024.0
    }
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The filesystem holding `path`: `(type, mount point)` of the longest mount point in
/// `/proc/mounts` that contains it (`("tmpfs", "/tmp")`, `("ext4", "/")`).
pub fn filesystem(path: &Path) -> (String, PathBuf) {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best = (String::from("unknown"), PathBuf::new());
    for line in mounts.lines() {
        let mut parts = line.split_whitespace();
        let (Some(_dev), Some(mount), Some(kind)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        // Spaces in mount points are written as \040.
        let mount = PathBuf::from(mount.replace("\\040", " "));
        if path.starts_with(&mount) && mount.as_os_str().len() >= best.1.as_os_str().len() {
            best = (kind.to_owned(), mount);
        }
    }
    best
}

/// Whether a filesystem type keeps its data in memory only.
pub fn is_memory_fs(kind: &str) -> bool {
    matches!(kind, "tmpfs" | "ramfs" | "devtmpfs" | "hugetlbfs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_rotates_so_each_method_leads_once() {
        let firsts: Vec<usize> = (0..3).map(|r| order(r, 3).next().unwrap()).collect();
        assert_eq!(firsts, [0, 1, 2]);
        assert_eq!(order(1, 3).collect::<Vec<_>>(), [1, 2, 0]);
    }

    #[test]
    fn samples_print_every_round_and_take_the_median() {
        let mut s = Samples::default();
        for v in [3.0, 1.0, 2.0] {
            s.push(v);
        }
        assert_eq!(s.list(1), "3.0,1.0,2.0");
        assert!((s.median() - 2.0).abs() < f64::EPSILON);
        s.push(4.0);
        assert!(
            (s.median() - 2.5).abs() < f64::EPSILON,
            "the middle two's mean"
        );
    }

    #[test]
    fn cpu_times_come_from_the_kernel_and_grow() {
        let hz = clock_ticks();
        let before = CpuTimes::now(hz);
        let mut x = 0_u64;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(200) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(x != 1);
        let spent = CpuTimes::now(hz).since(before);
        assert!(spent.own > 0.0, "{spent:?}");
    }

    #[test]
    fn the_root_filesystem_is_found() {
        let (kind, mount) = filesystem(Path::new("/"));
        assert_eq!(mount, PathBuf::from("/"));
        assert_ne!(kind, "unknown");
    }

    #[test]
    fn peak_rss_sees_memory_touched_after_the_reset() {
        let peak = PeakRss::start();
        let big = vec![1_u8; 64 << 20];
        assert_eq!(big.iter().map(|b| u64::from(*b)).sum::<u64>(), 64 << 20);
        drop(big);
        assert!(peak.growth_mib() >= 32.0, "{}", peak.growth_mib());
    }
}
