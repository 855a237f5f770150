//! Configuration changes: ConfigMap and Secret keys (Secret values never logged), then a
//! rollout of the workload that uses them; environment variables on a workload's containers
//! (a template change, so the workload rolls out by itself).

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, Secret};
use kube::api::{Api, Patch};
use ops_core::WorkloadRef;
use ops_core::names::NameRule;
use ops_core::platform::{ConfigChange, ConfigTarget, ConfigUpdate};
use secrecy::ExposeSecret as _;
use serde_json::{Map, Value, json};

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};

/// Whether the template uses the ConfigMap (`secret == false`) or Secret named `name`: as a
/// volume, in `envFrom`, or in an `env` `valueFrom`.
pub(crate) fn template_uses(template: &PodTemplateSpec, name: &str, secret: bool) -> bool {
    let Some(spec) = &template.spec else {
        return false;
    };
    let volume = spec.volumes.iter().flatten().any(|v| {
        if secret {
            v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(name)
        } else {
            v.config_map.as_ref().map(|c| c.name.as_str()) == Some(name)
        }
    });
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let env = containers.clone().any(|c| {
        c.env_from.iter().flatten().any(|e| {
            if secret {
                e.secret_ref.as_ref().map(|r| r.name.as_str()) == Some(name)
            } else {
                e.config_map_ref.as_ref().map(|r| r.name.as_str()) == Some(name)
            }
        }) || c.env.iter().flatten().any(|e| {
            let from = e.value_from.as_ref();
            if secret {
                from.and_then(|f| f.secret_key_ref.as_ref())
                    .map(|r| r.name.as_str())
                    == Some(name)
            } else {
                from.and_then(|f| f.config_map_key_ref.as_ref())
                    .map(|r| r.name.as_str())
                    == Some(name)
            }
        })
    });
    volume || env
}

fn invalid(workload: &WorkloadRef, reason: String) -> Error {
    Error::InvalidArgument {
        operation: "update_config",
        target: workload.to_string(),
        reason,
    }
}

impl KubePlatform {
    /// Apply a [`ConfigUpdate`] to `workload`.
    pub(crate) async fn apply_config(
        &self,
        workload: &WorkloadRef,
        update: ConfigUpdate,
    ) -> Result<ConfigChange> {
        let rule = match update.target {
            ConfigTarget::Env => NameRule::EnvVar,
            _ => NameRule::ConfigKey,
        };
        if let Some(bad) = update
            .set
            .keys()
            .chain(update.remove.iter())
            .find(|k| !rule.check(k))
        {
            return Err(invalid(
                workload,
                format!(
                    "{} is not a valid key here: {}",
                    ops_core::text::quote(bad),
                    rule.describe()
                ),
            ));
        }
        let object = self.object("update_config", workload).await?;
        let mut change = ConfigChange::default();
        change.keys_set = update.set.keys().cloned().collect();
        change.keys_removed = update.remove.iter().cloned().collect();
        match &update.target {
            ConfigTarget::Env => {
                let containers: Vec<String> = object
                    .template()
                    .and_then(|t| t.spec.as_ref())
                    .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
                    .unwrap_or_default();
                self.patch_env(workload, &containers, &update).await?;
                // A template change: the workload's controller rolls it out.
                change.rolled_out = true;
            }
            ConfigTarget::ConfigMap(name) | ConfigTarget::Secret(name) => {
                let secret = matches!(update.target, ConfigTarget::Secret(_));
                let used = object
                    .template()
                    .is_some_and(|t| template_uses(t, name.as_str(), secret));
                if update.rollout && !used {
                    // Checked before changing anything: a rollout would not load the change.
                    return Err(invalid(
                        workload,
                        format!(
                            "the workload does not use {} {name}: nothing would load the change",
                            if secret { "Secret" } else { "ConfigMap" }
                        ),
                    ));
                }
                self.patch_data(workload, name.as_str(), secret, &update)
                    .await?;
                if update.rollout {
                    if !update.dry_run {
                        self.restart(workload, false).await?;
                    }
                    change.rolled_out = true;
                }
            }
            other => {
                return Err(Error::Unsupported {
                    operation: "update_config",
                    target: workload.to_string(),
                    reason: format!("{other:?} is not a configuration target ops-k8s knows"),
                });
            }
        }
        Ok(change)
    }

    /// Merge-patch the keys of a ConfigMap or Secret (Secret values base64 in `data`).
    async fn patch_data(
        &self,
        workload: &WorkloadRef,
        name: &str,
        secret: bool,
        update: &ConfigUpdate,
    ) -> Result<()> {
        let ns = workload.namespace().as_str();
        let mut data = Map::new();
        for (k, v) in &update.set {
            let value = if secret {
                serde_json::to_value(ByteString(v.expose_secret().as_bytes().to_vec()))
                    .unwrap_or(Value::Null)
            } else {
                Value::String(v.expose_secret().to_owned())
            };
            data.insert(k.clone(), value);
        }
        for k in &update.remove {
            data.insert(k.clone(), Value::Null);
        }
        let patch = Patch::Merge(json!({"data": data}));
        let pp = self.patch_params_for(update.dry_run);
        // The target names the object and the keys only, never a value.
        let target = format!(
            "{ns}/{}/{name}",
            if secret { "secret" } else { "configmap" }
        );
        if secret {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
            let req = Request::new("patch", "secrets", ns);
            self.call("update_config", &target, &req, Retry::Transient, || {
                api.patch(name, &pp, &patch)
            })
            .await?;
        } else {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
            let req = Request::new("patch", "configmaps", ns);
            self.call("update_config", &target, &req, Retry::Transient, || {
                api.patch(name, &pp, &patch)
            })
            .await?;
        }
        Ok(())
    }

    /// Strategic-merge the environment of every container of the workload's template.
    async fn patch_env(
        &self,
        workload: &WorkloadRef,
        containers: &[String],
        update: &ConfigUpdate,
    ) -> Result<()> {
        let mut env: Vec<Value> = update
            .set
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v.expose_secret()}))
            .collect();
        env.extend(
            update
                .remove
                .iter()
                .map(|k| json!({"name": k, "$patch": "delete"})),
        );
        let containers: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c, "env": env}))
            .collect();
        let patch = json!({"spec": {"template": {"spec": {"containers": containers}}}});
        let ns = workload.namespace().as_str();
        let name = workload.name().as_str();
        let target = workload.to_string();
        let pp = self.patch_params_for(update.dry_run);
        let patch = Patch::Strategic(patch);
        let resource = match workload.kind() {
            ops_core::WorkloadKind::StatefulSet => "statefulsets",
            ops_core::WorkloadKind::DaemonSet => "daemonsets",
            _ => "deployments",
        };
        let req = Request::new("patch", resource, ns);
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            ns,
            &kube::api::ApiResource {
                group: "apps".to_owned(),
                version: "v1".to_owned(),
                api_version: "apps/v1".to_owned(),
                kind: String::new(),
                plural: resource.to_owned(),
            },
        );
        self.call("update_config", &target, &req, Retry::Transient, || {
            api.patch(name, &pp, &patch)
        })
        .await?;
        Ok(())
    }
}
