//! Export of a namespace's objects for the record ([`super::Platform::export`]): workloads,
//! instances, services, events, configuration; secrets as key names only; server-managed
//! fields dropped so what is exported can be applied again.

use serde::{Deserialize, Serialize};

use crate::refs::Namespace;

/// Options for [`super::Platform::export`].
///
/// # Examples
/// ```
/// let o = ops_core::platform::ExportOptions::default().with_events(false);
/// assert!(!o.events);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Include the namespace's events (default true).
    pub events: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self { events: true }
    }
}

impl ExportOptions {
    /// Include events or not.
    #[must_use]
    pub fn with_events(mut self, events: bool) -> Self {
        self.events = events;
        self
    }
}

/// One exported object: its kind, name and the object itself as the platform describes it
/// (Kubernetes: the object without server-managed fields; Compose: a container's inspect data
/// with environment values redacted, a network, a volume).
///
/// # Examples
/// ```
/// use ops_core::platform::ExportedObject;
/// let o = ExportedObject::new("ConfigMap", "settings", serde_json::json!({"data": {"a": "1"}}));
/// assert_eq!(o.file_name(), "configmap-settings.json");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExportedObject {
    /// `Deployment`, `Pod`, `Service`, `Event`, `ConfigMap`, `Secret`, `Container`,
    /// `Network`, `Volume`...
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The object.
    pub object: serde_json::Value,
}

impl ExportedObject {
    /// An exported object.
    pub fn new(
        kind: impl Into<String>,
        name: impl Into<String>,
        object: serde_json::Value,
    ) -> Self {
        Self {
            kind: kind.into(),
            name: name.into(),
            object,
        }
    }

    /// A file name for it, `<kind>-<name>.json` in lowercase, every character outside
    /// `a-z 0-9 . _ -` replaced by `_` (never a path separator or `..` alone).
    ///
    /// # Examples
    /// ```
    /// use ops_core::platform::ExportedObject;
    /// let o = ExportedObject::new("Pod", "../../etc/passwd", serde_json::Value::Null);
    /// assert_eq!(o.file_name(), "pod-.._.._etc_passwd.json");
    /// ```
    pub fn file_name(&self) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    let c = c.to_ascii_lowercase();
                    if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                    {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        format!("{}-{}.json", clean(&self.kind), clean(&self.name))
    }
}

/// What [`super::Platform::export`] returns.
///
/// # Examples
/// ```
/// use ops_core::platform::{ExportedObject, NamespaceExport};
/// let e = NamespaceExport::new("prod".parse()?)
///     .with_object(ExportedObject::new("Secret", "db", serde_json::json!({})))
///     .noting("Secret db: 2 keys, values left out");
/// assert_eq!(e.objects.len(), 1);
/// assert_eq!(e.kinds(), vec!["Secret"]);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NamespaceExport {
    /// The namespace (Compose: project).
    pub namespace: Namespace,
    /// The objects, in a stable order (kind, then name).
    pub objects: Vec<ExportedObject>,
    /// What was left out or changed on purpose (secret values, server fields), in words.
    pub notes: Vec<String>,
}

impl NamespaceExport {
    /// An empty export of `namespace`.
    pub fn new(namespace: Namespace) -> Self {
        Self {
            namespace,
            objects: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Add an object.
    #[must_use]
    pub fn with_object(mut self, object: ExportedObject) -> Self {
        self.objects.push(object);
        self
    }

    /// Add a note.
    #[must_use]
    pub fn noting(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// The kinds present, each once, in order of first appearance.
    pub fn kinds(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for o in &self.objects {
            if !out.contains(&o.kind.as_str()) {
                out.push(&o.kind);
            }
        }
        out
    }

    /// Sort the objects by kind, then name.
    pub fn sort(&mut self) {
        self.objects
            .sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    }
}
