//! `CLIENT LIST` (parsed totally) and `CLIENT KILL` of approved ids that still match a guard,
//! never our own connection.

use std::time::Duration;

use ops_core::cache::{ClientFilter, ClientFlags, ClientInfo};
use tracing::instrument;

use crate::cache::RedisCache;
use crate::connection::deadline;
use crate::error::{Error, Result};

/// Parse `CLIENT LIST` output: one client per line of `key=value` fields. Lines without a
/// numeric `id` are skipped; unknown fields are ignored; never panics. The `flags` that
/// mean "in use while idle" (`P`, `b`, `S`, `M`, `O`) and subscription counts above zero
/// land in [`ClientInfo::flags`].
///
/// # Examples
/// ```
/// let clients = ops_cache::parse_client_list(
///     "id=7 addr=10.0.0.5:51234 laddr=10.0.0.2:6379 fd=8 name=worker age=120 idle=30 flags=N db=0 user=app cmd=get\n\
///      id=8 addr=10.0.0.6:40000 fd=9 name= age=9000 idle=9000 flags=P db=0 sub=1 psub=0 cmd=subscribe\n",
/// );
/// assert_eq!(clients[0].id, 7);
/// assert_eq!(clients[0].name.as_deref(), Some("worker"));
/// assert_eq!(clients[0].idle.as_secs(), 30);
/// assert!(!clients[0].flags.in_use());
/// assert!(clients[1].flags.pubsub);
/// ```
pub fn parse_client_list(text: &str) -> Vec<ClientInfo> {
    text.lines().filter_map(parse_client).collect()
}

fn parse_client(line: &str) -> Option<ClientInfo> {
    let fields = line
        .trim_end_matches('\r')
        .split(' ')
        .filter_map(|f| f.split_once('='));
    let mut id = None;
    let mut client = ClientInfo::new(0, "");
    let mut subscriptions = false;
    for (key, value) in fields {
        let secs = || value.parse::<u64>().ok().map(Duration::from_secs);
        match key {
            "flags" => client.flags = ClientFlags::parse(value),
            // A subscriber whose flags were not read (or a future RESP3 form) still counts.
            "sub" | "psub" | "ssub" => subscriptions |= value.parse::<u64>().is_ok_and(|n| n > 0),
            "id" => id = value.parse::<u64>().ok(),
            "addr" => value.clone_into(&mut client.addr),
            "name" if !value.is_empty() => client.name = Some(value.to_owned()),
            "user" if !value.is_empty() => client.user = Some(value.to_owned()),
            "age" => client.age = secs().unwrap_or_default(),
            "idle" => client.idle = secs().unwrap_or_default(),
            "db" => client.db = value.parse().unwrap_or_default(),
            "cmd" => value.clone_into(&mut client.last_command),
            _ => {}
        }
    }
    client.flags.pubsub |= subscriptions;
    client.id = id?;
    Some(client)
}

impl RedisCache {
    /// Connected clients matching `filter` (on every primary in cluster mode).
    ///
    /// # Errors
    /// [`Error::Command`] (e.g. `NOPERM` when the ACL user may not run `CLIENT`) or
    /// [`Error::Timeout`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run(cache: ops_cache::RedisCache) -> ops_cache::Result<()> {
    /// let idle = ops_core::cache::ClientFilter::default().idle_longer_than(std::time::Duration::from_secs(600));
    /// for c in cache.client_list(&idle).await? { println!("{} {}", c.id, c.addr); }
    /// # Ok(()) }
    /// ```
    #[instrument(level = "debug", skip_all, fields(backend = "redis", target = %self.target()))]
    pub async fn client_list(&self, filter: &ClientFilter) -> Result<Vec<ClientInfo>> {
        let mut out = Vec::new();
        for node in self.nodes().await? {
            let text: String = self
                .run(
                    "CLIENT LIST",
                    &node,
                    &redis::cmd("CLIENT").arg("LIST").clone(),
                )
                .await?;
            out.extend(
                parse_client_list(&text)
                    .into_iter()
                    .filter(|c| filter.matches(c)),
            );
        }
        Ok(out)
    }

    /// Kill the clients `ids` that still match `guard` (listed again just before the kill),
    /// never this cache's own connection; returns the ids killed. An id that disconnected or
    /// no longer matches is left alone; no other client is touched.
    ///
    /// # Errors
    /// As [`RedisCache::client_list`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run(cache: ops_cache::RedisCache) -> ops_cache::Result<()> {
    /// let mut guard = ops_core::cache::ClientFilter::default();
    /// guard.user = Some("batch".into());
    /// let approved: Vec<u64> = cache.client_list(&guard).await?.iter().map(|c| c.id).collect();
    /// let killed = cache.client_kill(&approved, &guard).await?;
    /// # Ok(()) }
    /// ```
    #[instrument(level = "debug", skip_all, fields(backend = "redis", target = %self.target()))]
    pub async fn client_kill(&self, ids: &[u64], guard: &ClientFilter) -> Result<Vec<u64>> {
        let mut killed = Vec::new();
        if ids.is_empty() {
            return Ok(killed);
        }
        let conn = self.conn().await?;
        for node in self.nodes().await? {
            let own: u64 = self
                .run("CLIENT ID", &node, &redis::cmd("CLIENT").arg("ID").clone())
                .await?;
            let text: String = self
                .run(
                    "CLIENT LIST",
                    &node,
                    &redis::cmd("CLIENT").arg("LIST").clone(),
                )
                .await?;
            let victims: Vec<u64> = parse_client_list(&text)
                .into_iter()
                .filter(|c| c.id != own && ids.contains(&c.id) && guard.matches(c))
                .map(|c| c.id)
                .collect();
            if victims.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for id in &victims {
                pipe.cmd("CLIENT").arg("KILL").arg("ID").arg(*id);
            }
            let replies = deadline(
                "CLIENT KILL",
                &self.node_target(&node),
                self.timeout(),
                conn.pipeline(&pipe, &node),
            )
            .await?;
            for (id, reply) in victims.iter().zip(replies) {
                match reply {
                    redis::Value::Int(n) if n > 0 => killed.push(*id),
                    redis::Value::Int(_) => {}
                    other => {
                        return Err(Error::Protocol {
                            command: "CLIENT KILL",
                            target: self.node_target(&node),
                            detail: format!("expected an integer, got {other:?}"),
                        });
                    }
                }
            }
        }
        Ok(killed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "id=3 addr=127.0.0.1:50462 laddr=127.0.0.1:6379 fd=8 name= age=12 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=20448 argv-mem=10 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=22298 events=r cmd=client|list user=default redir=-1 resp=2\n\
id=9 addr=10.0.0.8:40000 laddr=127.0.0.1:6379 fd=9 name=worker age=700 idle=650 flags=N db=2 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=1 events=r cmd=get user=app redir=-1 resp=3\n";

    #[test]
    fn parses_real_client_list() {
        let clients = parse_client_list(REAL);
        assert_eq!(clients.len(), 2);
        assert_eq!(clients[0].id, 3);
        assert_eq!(clients[0].name, None);
        assert_eq!(clients[0].user.as_deref(), Some("default"));
        assert_eq!(clients[0].last_command, "client|list");
        assert_eq!(clients[1].db, 2);
        assert_eq!(clients[1].age, Duration::from_secs(700));
        let idle = ClientFilter::default().idle_longer_than(Duration::from_secs(600));
        let matching: Vec<_> = clients.iter().filter(|c| idle.matches(c)).collect();
        assert_eq!(matching.len(), 1);
        assert_eq!(matching[0].addr, "10.0.0.8:40000");
    }

    #[test]
    fn clients_in_use_are_flagged_and_left_out_by_filters() {
        let text = "id=1 addr=a:1 age=9000 idle=9000 flags=P sub=1 psub=0 ssub=0 cmd=subscribe\n\
id=2 addr=a:2 age=9000 idle=9000 flags=b cmd=blpop\n\
id=3 addr=a:3 age=9000 idle=1 flags=S cmd=replconf\n\
id=4 addr=a:4 age=9000 idle=9000 flags=M cmd=ping\n\
id=5 addr=a:5 age=9000 idle=9000 flags=O cmd=monitor\n\
id=6 addr=a:6 age=9000 idle=9000 flags=N sub=0 psub=2 cmd=psubscribe\n\
id=7 addr=a:7 age=9000 idle=9000 flags=N sub=0 psub=0 ssub=0 cmd=get\n";
        let clients = parse_client_list(text);
        let flags: Vec<String> = clients.iter().map(|c| c.flags.to_string()).collect();
        assert_eq!(flags, ["P", "b", "S", "M", "O", "P", "N"]);
        let idle = ClientFilter::default().idle_longer_than(Duration::from_secs(60));
        let killable: Vec<u64> = clients
            .iter()
            .filter(|c| idle.matches(c) && ClientFilter::all().matches(c))
            .map(|c| c.id)
            .collect();
        assert_eq!(killable, [7]);
        let asked = ClientFilter::all().including_in_use();
        assert_eq!(clients.iter().filter(|c| asked.matches(c)).count(), 7);
    }

    #[test]
    fn client_list_parsing_is_total() {
        for text in [
            "",
            "\n\n",
            "garbage",
            "id=x addr=1",
            "id= age=-1",
            "=== id=4=5",
        ] {
            let _ = parse_client_list(text);
        }
        assert!(parse_client_list("age=3 addr=1:2").is_empty());
        assert_eq!(parse_client_list("id=5 age=-3")[0].age, Duration::ZERO);
    }
}
