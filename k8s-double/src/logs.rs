//! Container logs: one list of lines per container instance, so `previous` reads the one before a restart.

use std::collections::HashMap;

use jiff::Timestamp;

/// One log line with the time the kubelet would have stamped it.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    pub(crate) time: Timestamp,
    pub(crate) text: String,
}

type ContainerKey = (String, String, String);

/// Logs of every container instance.
#[derive(Debug, Default)]
pub(crate) struct LogStore {
    instances: HashMap<ContainerKey, Vec<Vec<LogLine>>>,
}

fn key(namespace: &str, pod: &str, container: &str) -> ContainerKey {
    (namespace.to_owned(), pod.to_owned(), container.to_owned())
}

impl LogStore {
    /// Starts a new instance of the container (a start or a restart) with its first line.
    pub(crate) fn start(&mut self, namespace: &str, pod: &str, container: &str, line: &str) {
        let list = self
            .instances
            .entry(key(namespace, pod, container))
            .or_default();
        list.push(vec![LogLine {
            time: Timestamp::now(),
            text: line.to_owned(),
        }]);
        // Only the current and previous instances are readable, as with the kubelet.
        if list.len() > 2 {
            list.remove(0);
        }
    }

    /// Appends a line to the current instance (starting one when there is none).
    pub(crate) fn append(&mut self, namespace: &str, pod: &str, container: &str, line: &str) {
        let list = self
            .instances
            .entry(key(namespace, pod, container))
            .or_default();
        let entry = LogLine {
            time: Timestamp::now(),
            text: line.to_owned(),
        };
        match list.last_mut() {
            Some(current) => current.push(entry),
            None => list.push(vec![entry]),
        }
    }

    /// The lines of the current (or previous) instance; `None` when that instance never existed.
    pub(crate) fn read(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Option<&[LogLine]> {
        let list = self.instances.get(&key(namespace, pod, container))?;
        let index = if previous {
            list.len().checked_sub(2)?
        } else {
            list.len().checked_sub(1)?
        };
        list.get(index).map(Vec::as_slice)
    }

    /// How many instances the container has had (at most two are kept).
    pub(crate) fn instances(&self, namespace: &str, pod: &str, container: &str) -> usize {
        self.instances
            .get(&key(namespace, pod, container))
            .map_or(0, Vec::len)
    }

    /// Forgets a pod's logs.
    pub(crate) fn remove_pod(&mut self, namespace: &str, pod: &str) {
        self.instances
            .retain(|(ns, p, _), _| !(ns == namespace && p == pod));
    }
}

/// A line as the kubelet writes it with `timestamps=true`: RFC 3339 with nine fractional digits.
pub(crate) fn stamp(time: Timestamp) -> String {
    format!(
        "{}.{:09}Z",
        time.strftime("%Y-%m-%dT%H:%M:%S"),
        time.subsec_nanosecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_is_the_instance_before_the_restart() {
        let mut logs = LogStore::default();
        assert!(logs.read("ns", "p", "c", false).is_none());
        logs.start("ns", "p", "c", "one");
        logs.append("ns", "p", "c", "two");
        assert!(logs.read("ns", "p", "c", true).is_none());
        logs.start("ns", "p", "c", "three");
        let prev: Vec<&str> = logs
            .read("ns", "p", "c", true)
            .unwrap()
            .iter()
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(prev, ["one", "two"]);
        assert_eq!(logs.read("ns", "p", "c", false).unwrap().len(), 1);
        assert_eq!(
            stamp(Timestamp::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
    }
}
