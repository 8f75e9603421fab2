//! Docker's container inspect document, typed: what `inspect` prints and what the API serves.
//! Built from the record and the snapshot; nothing here changes anything.

use crate::container::Engine;
use crate::record::Record;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: StateInspect,
    pub image: String,
    pub name: String,
    pub restart_count: u32,
    pub log_path: PathBuf,
    pub host_config: Value,
    pub graph_driver: GraphDriver,
    pub mounts: Vec<MountInspect>,
    pub config: ConfigInspect,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StateInspect {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: GraphData,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphData {
    pub lower_dir: String,
    pub upper_dir: PathBuf,
    pub merged_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountInspect {
    #[serde(rename = "Type")]
    pub kind: String,
    pub name: Option<String>,
    pub source: String,
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigInspect {
    pub hostname: String,
    pub user: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub image: String,
    pub working_dir: String,
    pub entrypoint: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
    pub stop_timeout: Option<u64>,
}

impl Engine {
    /// The inspect document of a container (reconciled by whoever read `r`).
    pub fn inspect_container(&self, r: &Record) -> ContainerInspect {
        let lowers: Vec<String> = self
            .snapshot_mount(&r.id)
            .map(|m| m.lowers.iter().map(|p| p.display().to_string()).collect())
            .unwrap_or_default();
        let s = &r.state;
        ContainerInspect {
            id: r.id.clone(),
            created: r.created.clone(),
            path: r.path.clone(),
            args: r.args.clone(),
            state: StateInspect {
                status: s.status.clone(),
                running: s.status == "running",
                paused: s.status == "paused",
                restarting: s.status == "restarting",
                oom_killed: s.oom_killed,
                dead: s.status == "dead",
                pid: s.pid,
                exit_code: s.exit_code,
                error: s.error.clone(),
                started_at: s.started_at.clone(),
                finished_at: s.finished_at.clone(),
            },
            image: r.image_id.clone(),
            name: format!("/{}", r.name),
            restart_count: s.restart_count,
            log_path: self.log_path(&r.id),
            host_config: r.host_config.clone(),
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data: GraphData {
                    lower_dir: lowers.join(":"),
                    upper_dir: self.upper_dir(&r.id),
                    merged_dir: self.records.dir(&r.id).join("rootfs"),
                },
            },
            mounts: r
                .mounts
                .iter()
                .map(|m| MountInspect {
                    kind: m.kind.clone(),
                    name: m.name.clone(),
                    source: m.source.clone(),
                    destination: m.destination.clone(),
                    rw: m.rw,
                })
                .collect(),
            config: ConfigInspect {
                hostname: r.hostname.clone(),
                user: r.user.clone(),
                tty: r.tty,
                open_stdin: r.open_stdin,
                env: r.env.clone(),
                cmd: r.args.clone(),
                image: r.image.clone(),
                working_dir: r.working_dir.clone(),
                entrypoint: vec![r.path.clone()],
                labels: r.labels.clone(),
                stop_signal: r.stop_signal.clone(),
                stop_timeout: r.stop_timeout,
            },
        }
    }
}
