//! `MEMORY DOCTOR` and `SLOWLOG GET` (parsed totally).

use std::time::Duration;

use ops_core::cache::SlowlogEntry;
use redis::Value;
use tracing::instrument;

use crate::cache::RedisCache;
use crate::connection::Node;
use crate::error::Result;

impl RedisCache {
    /// `MEMORY DOCTOR` advice (each primary's, prefixed by its address, in cluster mode).
    ///
    /// # Errors
    /// [`crate::Error::Command`] or [`crate::Error::Timeout`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run(cache: ops_cache::RedisCache) -> ops_cache::Result<()> {
    /// println!("{}", cache.doctor().await?);
    /// # Ok(()) }
    /// ```
    #[instrument(level = "debug", skip_all, fields(backend = "redis", target = %self.target()))]
    pub async fn doctor(&self) -> Result<String> {
        let nodes = self.nodes().await?;
        let mut out = Vec::new();
        for node in &nodes {
            let text: String = self
                .run(
                    "MEMORY DOCTOR",
                    node,
                    &redis::cmd("MEMORY").arg("DOCTOR").clone(),
                )
                .await?;
            match node {
                Node::Default => out.push(text),
                Node::Addr { .. } => out.push(format!("{}: {text}", self.node_target(node))),
            }
        }
        Ok(out.join("\n"))
    }

    /// The `n` newest slowlog entries (of every primary, newest first, in cluster mode).
    ///
    /// # Errors
    /// [`crate::Error::Command`] or [`crate::Error::Timeout`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run(cache: ops_cache::RedisCache) -> ops_cache::Result<()> {
    /// for e in cache.slowlog_get(10).await? { println!("{:?} {:?}", e.duration, e.command); }
    /// # Ok(()) }
    /// ```
    #[instrument(level = "debug", skip_all, fields(backend = "redis", target = %self.target()))]
    pub async fn slowlog_get(&self, n: u32) -> Result<Vec<SlowlogEntry>> {
        let mut all = Vec::new();
        for node in self.nodes().await? {
            let value: Value = self
                .run(
                    "SLOWLOG GET",
                    &node,
                    &redis::cmd("SLOWLOG").arg("GET").arg(n).clone(),
                )
                .await?;
            all.extend(parse_slowlog(&value));
        }
        all.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
        all.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        Ok(all)
    }
}

/// Parse a `SLOWLOG GET` reply; malformed entries are skipped, never a panic.
///
/// # Examples
/// ```
/// use redis::Value;
/// let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
/// let reply = Value::Array(vec![Value::Array(vec![
///     Value::Int(4), Value::Int(1_700_000_000), Value::Int(12_500),
///     Value::Array(vec![bulk("KEYS"), bulk("*")]), bulk("10.0.0.1:5000"), bulk(""),
/// ])]);
/// let entries = ops_cache::parse_slowlog(&reply);
/// assert_eq!(entries[0].id, 4);
/// assert_eq!(entries[0].duration.as_micros(), 12_500);
/// assert_eq!(entries[0].command, ["KEYS", "*"]);
/// assert_eq!(entries[0].client.as_deref(), Some("10.0.0.1:5000"));
/// ```
pub fn parse_slowlog(value: &Value) -> Vec<SlowlogEntry> {
    let Value::Array(entries) = value else {
        return Vec::new();
    };
    entries.iter().filter_map(parse_entry).collect()
}

fn parse_entry(value: &Value) -> Option<SlowlogEntry> {
    let Value::Array(parts) = value else {
        return None;
    };
    let int = |i: usize| match parts.get(i) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    };
    let id = u64::try_from(int(0)?).ok()?;
    let at = jiff::Timestamp::from_second(int(1)?).ok()?;
    let micros = u64::try_from(int(2)?).unwrap_or(0);
    let command = match parts.get(3) {
        Some(Value::Array(args)) => args.iter().filter_map(text).collect(),
        _ => Vec::new(),
    };
    let mut entry = SlowlogEntry::new(id, at, Duration::from_micros(micros), command);
    entry.client = parts.get(4).and_then(text).filter(|c| !c.is_empty());
    Some(entry)
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowlog_parsing_is_total() {
        assert!(parse_slowlog(&Value::Nil).is_empty());
        let junk = Value::Array(vec![
            Value::Nil,
            Value::Array(vec![]),
            Value::Array(vec![Value::Int(-1), Value::Int(0), Value::Int(0)]),
            Value::Array(vec![Value::Int(1), Value::Int(i64::MAX), Value::Int(0)]),
            Value::Array(vec![Value::Int(2), Value::Int(10), Value::Int(-5)]),
        ]);
        let entries = parse_slowlog(&junk);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, 2);
        assert_eq!(entries[0].duration, Duration::ZERO);
        assert!(entries[0].command.is_empty());
    }
}
