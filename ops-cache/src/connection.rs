//! The live connection (standalone connection manager or cluster connection), the nodes a
//! command can be sent to, and the deadline every call runs under.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, Pipeline, RedisResult, Value};

use crate::error::{Error, Result};

/// A connected client: one multiplexed, self-reconnecting connection, or a cluster connection.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Where a command goes: the server (standalone; cluster: routed by the client), or one
/// cluster node by address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Default,
    Addr { host: String, port: u16 },
}

impl Conn {
    /// Connect a standalone client.
    pub(crate) async fn single(
        client: redis::Client,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> RedisResult<Self> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(crate::config::REDIS_RETRIES as usize)
            .set_max_delay(Duration::from_secs(2));
        Ok(Self::Single(
            ConnectionManager::new_with_config(client, config).await?,
        ))
    }

    /// Connect a cluster client.
    pub(crate) async fn cluster(client: &redis::cluster::ClusterClient) -> RedisResult<Self> {
        Ok(Self::Cluster(client.get_async_connection().await?))
    }

    /// Send `cmd` to `node` and convert the reply.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd, node: &Node) -> RedisResult<T> {
        match (self, node) {
            (Self::Single(m), _) => cmd.query_async(&mut m.clone()).await,
            (Self::Cluster(c), Node::Default) => cmd.query_async(&mut c.clone()).await,
            (Self::Cluster(c), Node::Addr { host, port }) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let value = c.clone().route_command(cmd.clone(), routing).await?;
                Ok(redis::from_redis_value(value.extract_error()?)?)
            }
        }
    }

    /// Send `pipe` to `node`; one reply per command.
    pub(crate) async fn pipeline(&self, pipe: &Pipeline, node: &Node) -> RedisResult<Vec<Value>> {
        match (self, node) {
            (Self::Single(m), _) => pipe.query_async(&mut m.clone()).await,
            (Self::Cluster(c), Node::Default) => pipe.query_async(&mut c.clone()).await,
            (Self::Cluster(c), Node::Addr { host, port }) => {
                let route = SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                };
                let count = pipe.len();
                let values = c
                    .clone()
                    .route_pipeline(pipe.clone(), 0, count, route)
                    .await?;
                values.into_iter().map(Value::extract_error).collect()
            }
        }
    }
}

/// Run `fut` under `deadline`, naming `command` and `target` in the error.
pub(crate) async fn deadline<T>(
    command: &'static str,
    target: &str,
    after: Duration,
    fut: impl Future<Output = RedisResult<T>>,
) -> Result<T> {
    match tokio::time::timeout(after, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(Error::Command {
            command,
            target: target.to_owned(),
            source,
        }),
        Err(_) => Err(Error::Timeout {
            command,
            target: target.to_owned(),
            after,
        }),
    }
}

/// Parse `CLUSTER SLOTS` into the primaries' addresses, deduplicated, in slot order.
/// An empty host means "the node you asked", for which `fallback_host` is used.
pub(crate) fn primaries_from_slots(value: &Value, fallback_host: &str) -> Vec<Node> {
    let mut nodes = Vec::new();
    let Value::Array(ranges) = value else {
        return nodes;
    };
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        let Some(Value::Array(primary)) = parts.get(2) else {
            continue;
        };
        let host = match primary.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            _ => continue,
        };
        let host = if host.is_empty() || host == "?" {
            fallback_host.to_owned()
        } else {
            host
        };
        let Some(Value::Int(port)) = primary.get(1) else {
            continue;
        };
        let Ok(port) = u16::try_from(*port) else {
            continue;
        };
        let node = Node::Addr { host, port };
        if !nodes.contains(&node) {
            nodes.push(node);
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn cluster_slots_give_each_primary_once() {
        let range = |start, end, host: &str, port| {
            Value::Array(vec![
                Value::Int(start),
                Value::Int(end),
                Value::Array(vec![bulk(host), Value::Int(port), bulk("id")]),
                Value::Array(vec![bulk("10.0.0.9"), Value::Int(7100), bulk("replica")]),
            ])
        };
        let slots = Value::Array(vec![
            range(0, 5460, "127.0.0.1", 7000),
            range(5461, 10922, "", 7001),
            range(10923, 12000, "127.0.0.1", 7002),
            range(12001, 16383, "127.0.0.1", 7002),
            Value::Nil,
        ]);
        let nodes = primaries_from_slots(&slots, "seed");
        assert_eq!(
            nodes,
            [
                Node::Addr {
                    host: "127.0.0.1".into(),
                    port: 7000
                },
                Node::Addr {
                    host: "seed".into(),
                    port: 7001
                },
                Node::Addr {
                    host: "127.0.0.1".into(),
                    port: 7002
                },
            ]
        );
        assert!(primaries_from_slots(&Value::Nil, "x").is_empty());
    }
}
