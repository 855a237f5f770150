//! Export of a Compose project for the record (issue 14 §evidence): every container's inspect
//! data with environment values redacted (key names only: env values are often secrets), the
//! project's networks and volumes. Read-only.

use std::collections::HashMap;

use bollard::query_parameters::{ListNetworksOptionsBuilder, ListVolumesOptionsBuilder};
use ops_core::Namespace;
use ops_core::platform::{ExportedObject, NamespaceExport};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::labels;
use crate::platform::ComposePlatform;

/// What replaces an environment value in an export.
pub const REDACTED: &str = "<redacted>";

/// `KEY=value` entries with the values replaced by [`REDACTED`]; returns the keys.
///
/// # Examples
/// ```
/// let mut inspect = serde_json::json!({"Config": {"Env": ["DB_PASSWORD=hunter2", "EMPTY"]}});
/// let keys = ops_compose::redact_env(&mut inspect);
/// assert_eq!(keys, ["DB_PASSWORD", "EMPTY"]);
/// assert!(!inspect.to_string().contains("hunter2"));
/// ```
pub fn redact_env(inspect: &mut Value) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(Value::Array(env)) = inspect.pointer_mut("/Config/Env") {
        for entry in env.iter_mut() {
            let text = entry.as_str().unwrap_or_default();
            let key = text.split_once('=').map_or(text, |(k, _)| k).to_owned();
            *entry = if text.contains('=') {
                Value::String(format!("{key}={REDACTED}"))
            } else {
                Value::String(key.clone())
            };
            keys.push(key);
        }
    }
    keys
}

fn to_json(value: &impl serde::Serialize, target: &str) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::InvalidArgument {
        operation: "export",
        target: target.to_owned(),
        reason: format!("cannot serialize: {e}"),
    })
}

impl ComposePlatform {
    /// Export a project.
    pub(crate) async fn export_project(&self, namespace: &Namespace) -> Result<NamespaceExport> {
        let project = namespace.as_str();
        labels::validate_project(project)?;
        let mut export = NamespaceExport::new(namespace.clone()).noting(format!(
            "environment values of every container are replaced by {REDACTED}; key names are kept"
        ));
        for summary in self.list(project, None).await? {
            let Some(id) = summary.id.clone() else {
                continue;
            };
            let inspect = self.inspect(&id).await?;
            let name = crate::lockdown::inspected_name(&inspect);
            let mut value = to_json(&inspect, &name)?;
            let keys = redact_env(&mut value);
            if !keys.is_empty() {
                export = export.noting(format!(
                    "container {name}: environment keys {}",
                    keys.join(", ")
                ));
            }
            export = export.with_object(ExportedObject::new("Container", name, value));
        }
        let docker = self.docker().await?;
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("{}={project}", labels::PROJECT)],
        )]);
        let networks = self
            .call(
                "export",
                project,
                docker.list_networks(Some(
                    ListNetworksOptionsBuilder::new().filters(&filters).build(),
                )),
            )
            .await?;
        for n in networks {
            let name = n.name.clone().unwrap_or_default();
            export = export.with_object(ExportedObject::new("Network", &name, to_json(&n, &name)?));
        }
        let volumes = self
            .call(
                "export",
                project,
                docker.list_volumes(Some(
                    ListVolumesOptionsBuilder::new().filters(&filters).build(),
                )),
            )
            .await?;
        for v in volumes.volumes.into_iter().flatten() {
            let name = v.name.clone();
            export = export.with_object(ExportedObject::new("Volume", &name, to_json(&v, &name)?));
        }
        export.sort();
        Ok(export)
    }
}
