//! The image config a build produces (Docker's `config` object, field names as in image JSON) and
//! the typed change each instruction makes to it. The executor applies the same changes the plan
//! did, so a cached step and a fresh one end in the same config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::instructions::Healthcheck;

/// An empty JSON object, the value type of Docker's port and volume sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Docker's healthcheck config (durations in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl From<&Healthcheck> for HealthConfig {
    fn from(h: &Healthcheck) -> HealthConfig {
        HealthConfig {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        }
    }
}

/// The runtime part of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_build: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<String>,
}

impl ImageConfig {
    /// The value of `key` in Env.
    pub fn env_get(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    /// Sets `key` in Env, in place when present (as Docker's `addEnv`).
    pub fn env_set(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self
            .env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(e) => *e = entry,
            None => self.env.push(entry),
        }
    }
}

/// What one instruction does to the image config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    Env(Vec<(String, String)>),
    Cmd(Vec<String>),
    /// ENTRYPOINT; `reset_cmd` when no CMD was set earlier in the same stage (Docker clears the
    /// base image's CMD then).
    Entrypoint {
        entrypoint: Vec<String>,
        reset_cmd: bool,
    },
    WorkingDir(String),
    User(String),
    ExposedPorts(Vec<String>),
    Labels(Vec<(String, String)>),
    Volumes(Vec<String>),
    StopSignal(String),
    Healthcheck(HealthConfig),
    Shell(Vec<String>),
    OnBuild(String),
    /// MAINTAINER sets the image's author (outside `config`).
    Author(String),
}

impl ConfigChange {
    /// Applies the change; an `Author` change goes to `author`.
    pub fn apply(&self, c: &mut ImageConfig, author: &mut Option<String>) {
        match self {
            ConfigChange::Env(kvs) => kvs.iter().for_each(|(k, v)| c.env_set(k, v)),
            ConfigChange::Cmd(cmd) => {
                c.cmd = Some(cmd.clone());
                c.args_escaped = true;
            }
            ConfigChange::Entrypoint {
                entrypoint,
                reset_cmd,
            } => {
                c.entrypoint = Some(entrypoint.clone());
                if *reset_cmd {
                    c.cmd = None;
                }
            }
            ConfigChange::WorkingDir(w) => c.working_dir = w.clone(),
            ConfigChange::User(u) => c.user = u.clone(),
            ConfigChange::ExposedPorts(ps) => ps.iter().for_each(|p| {
                c.exposed_ports.insert(p.clone(), Empty {});
            }),
            ConfigChange::Labels(kvs) => kvs.iter().for_each(|(k, v)| {
                c.labels.insert(k.clone(), v.clone());
            }),
            ConfigChange::Volumes(vs) => vs.iter().for_each(|v| {
                c.volumes.insert(v.clone(), Empty {});
            }),
            ConfigChange::StopSignal(s) => c.stop_signal = s.clone(),
            ConfigChange::Healthcheck(h) => c.healthcheck = Some(h.clone()),
            ConfigChange::Shell(s) => c.shell = s.clone(),
            ConfigChange::OnBuild(e) => c.on_build.push(e.clone()),
            ConfigChange::Author(a) => *author = Some(a.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_set_replaces_in_place() {
        let mut c = ImageConfig {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            ..Default::default()
        };
        c.env_set("PATH", "/usr/bin");
        c.env_set("B", "2");
        assert_eq!(c.env, vec!["PATH=/usr/bin", "A=1", "B=2"]);
        assert_eq!(c.env_get("A"), Some("1"));
    }

    #[test]
    fn entrypoint_resets_inherited_cmd() {
        let mut c = ImageConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let mut author = None;
        ConfigChange::Entrypoint {
            entrypoint: vec!["/app".into()],
            reset_cmd: true,
        }
        .apply(&mut c, &mut author);
        assert_eq!(
            (c.cmd.clone(), c.entrypoint.clone()),
            (None, Some(vec!["/app".to_string()]))
        );
    }

    #[test]
    fn serializes_with_docker_field_names() {
        let mut c = ImageConfig::default();
        c.exposed_ports.insert("80/tcp".into(), Empty {});
        c.working_dir = "/app".into();
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, r#"{"ExposedPorts":{"80/tcp":{}},"WorkingDir":"/app"}"#);
        let back: ImageConfig = serde_json::from_str(&j).unwrap();
        assert_eq!(back, c);
    }
}
