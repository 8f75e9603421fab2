//! `POST /build`: the legacy builder's endpoint (the one the docker CLI uses when `/_ping`
//! says `Builder-Version: 1`, and docker-py's `build`). The body is the context tarball (plain or
//! gzip, or a bare Dockerfile), streamed to `Engine::build` through a bounded reader; the
//! build's steps come back as Docker's JSON stream (`{"stream": "Step …"}`, `{"aux": {"ID": …}}`,
//! `{"errorDetail": …}`). It never builds anything itself; a client gone mid-build cancels it.

use crate::error::{ApiError, ApiResult};
use crate::http::{self, Query, Resp};
use crate::progress::{error_line, line};
use crate::router::Req;
use crate::state::App;
use berth_engine::build::{
    BuildContext, BuildEvent, BuildNetwork, BuildProgress, BuildRequest, BuildResources, Cancel,
    DockerfileSource,
};
use berth_engine::images::familiar;
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A context is a source tree: 8 GiB is more than any sane one.
const MAX_CONTEXT: u64 = 8 << 30;

/// A JSON map in a query parameter (`buildargs`, `labels`); `null` values are left out.
fn json_map(q: &Query, key: &str) -> ApiResult<BTreeMap<String, String>> {
    let m: BTreeMap<String, Option<String>> = http::parse_json(q.get(key).unwrap_or("").as_bytes())
        .map_err(|e| ApiError::bad(format!("{key}: {e}")))?;
    Ok(m.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
}

/// The query as the engine's build request (what Docker's legacy builder takes).
fn request(q: &Query) -> ApiResult<BuildRequest> {
    if q.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad(
            "remote build contexts (URLs, git) are not supported by berth: send the context",
        ));
    }
    // Not applied by berth's builder: refused by name rather than dropped.
    for key in ["extrahosts", "squash", "isolation", "securityopt"] {
        if q.get(key)
            .is_some_and(|v| !matches!(v, "" | "[]" | "null" | "0" | "false" | "False"))
        {
            return Err(ApiError::bad(format!(
                "build option {key:?} is not supported by berth"
            )));
        }
    }
    if q.get("version") == Some("2") {
        return Err(ApiError::bad(
            "BuildKit sessions are not supported by berth serve: use the legacy builder (DOCKER_BUILDKIT=0)",
        ));
    }
    let dockerfile = match q.get("dockerfile").filter(|d| !d.is_empty()) {
        None => DockerfileSource::InContext,
        Some(d) if d.starts_with('/') || d.split('/').any(|c| c == "..") => {
            return Err(ApiError::bad(format!(
                "dockerfile {d:?}: must be a path inside the context"
            )))
        }
        Some(d) => DockerfileSource::Path(d.into()),
    };
    let network = q
        .get("networkmode")
        .unwrap_or("")
        .parse::<BuildNetwork>()
        .map_err(|e| ApiError::bad(e.to_string()))?;
    let positive =
        |k: &str| -> ApiResult<Option<i64>> { Ok(q.number::<i64>(k)?.filter(|n| *n > 0)) };
    let cpus = match (positive("cpuquota")?, positive("cpuperiod")?) {
        (Some(quota), period) => Some(quota as f64 / period.unwrap_or(100_000) as f64),
        _ => None,
    };
    Ok(BuildRequest {
        dockerfile,
        tags: q.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        build_args: json_map(q, "buildargs")?,
        target: q
            .get("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        no_cache: q.flag("nocache"),
        pull: q.flag("pull"),
        labels: json_map(q, "labels")?,
        network,
        resources: BuildResources {
            memory: positive("memory")?,
            memory_swap: q.number::<i64>("memswap")?.filter(|n| *n != 0),
            cpu_shares: positive("cpushares")?.map(|n| n as u64),
            cpus,
            cpuset_cpus: q
                .get("cpusetcpus")
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            shm_size: positive("shmsize")?,
            ulimits: Vec::new(),
        },
        ..BuildRequest::default()
    })
}

/// The build's events as the legacy builder's stream; a send that fails (the client left)
/// cancels the build.
struct StreamProgress {
    tx: mpsc::Sender<Bytes>,
    quiet: bool,
    cancel: Cancel,
}

impl StreamProgress {
    fn send(&self, b: Bytes) {
        if self.tx.blocking_send(b).is_err() {
            self.cancel.cancel();
        }
    }

    fn stream(&self, text: String) {
        if !self.quiet {
            self.send(line(&json!({ "stream": text })));
        }
    }
}

impl BuildProgress for StreamProgress {
    fn event(&self, e: BuildEvent<'_>) {
        match e {
            BuildEvent::Started { name, .. } => self.stream(format!("{name}\n")),
            BuildEvent::Cached { name, .. } => self.stream(format!("{name}\n ---> Using cache\n")),
            BuildEvent::Log { data, .. } => self.stream(String::from_utf8_lossy(data).into_owned()),
            BuildEvent::Status { text, .. } => self.stream(format!(" ---> {text}\n")),
            BuildEvent::Failed { error, .. } => self.stream(format!("ERROR: {error}\n")),
            BuildEvent::Warning(w) => self.stream(format!("[WARNING]: {w}\n")),
            BuildEvent::Done { .. } => {}
        }
    }
}

/// `POST /build?t=&dockerfile=&buildargs=&labels=&target=&nocache=&pull=&q=&networkmode=…`.
pub async fn build(app: &Arc<App>, q: &Query, req: Req) -> ApiResult<Resp> {
    let mut request = request(q)?;
    let quiet = q.flag("q");
    let cancel = Cancel::default();
    request.cancel = cancel.clone();
    let reader = app.body_reader(req.into_body(), MAX_CONTEXT).await?;
    let (tx, resp) = http::stream(StatusCode::OK, "application/json");
    let app2 = app.clone();
    let busy = app.busy();
    crate::state::stream_thread(move || {
        let _busy = busy;
        let p = StreamProgress {
            tx: tx.clone(),
            quiet,
            cancel,
        };
        let built = app2
            .engine()
            .and_then(|e| Ok(e.build(&request, BuildContext::Stream(Box::new(reader)), &p)?));
        match built {
            Ok(out) => {
                let id = out.image_id.to_string();
                p.send(line(&json!({"aux": {"ID": id}})));
                if quiet {
                    p.send(line(&json!({ "stream": format!("{id}\n") })));
                }
                p.stream(format!("Successfully built {}\n", out.image_id.short()));
                for t in &out.tags {
                    p.stream(format!("Successfully tagged {}\n", familiar(t)));
                }
            }
            Err(e) => p.send(error_line(&e.to_string())),
        }
    });
    Ok(resp)
}

/// `POST /build/prune`: empties the build cache, as `berth builder prune`.
pub async fn prune(app: &Arc<App>) -> ApiResult<Resp> {
    let freed = app.blocking(|e| Ok(e.prune_build_cache()?)).await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"CachesDeleted": [], "SpaceReclaimed": freed}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legacy_builders_query_becomes_a_build_request() {
        let q = Query::parse(Some(
            "t=app:1&t=app:latest&dockerfile=sub/Dockerfile.dev&buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D&labels=%7B%22l%22%3A%22v%22%7D&target=final&nocache=1&networkmode=host&cpuquota=50000&memory=67108864",
        ));
        let r = request(&q).unwrap();
        assert_eq!(r.tags, ["app:1", "app:latest"]);
        assert_eq!(
            r.dockerfile,
            DockerfileSource::Path("sub/Dockerfile.dev".into())
        );
        assert_eq!(r.build_args.get("A").map(String::as_str), Some("1"));
        assert!(!r.build_args.contains_key("B"), "a null arg is left out");
        assert_eq!(r.labels.get("l").map(String::as_str), Some("v"));
        assert_eq!(r.target.as_deref(), Some("final"));
        assert!(r.no_cache);
        assert_eq!(r.network, BuildNetwork::Host);
        assert_eq!(r.resources.cpus, Some(0.5));
        assert_eq!(r.resources.memory, Some(64 << 20));
    }

    #[test]
    fn contexts_the_engine_cannot_take_are_refused_by_name() {
        for (query, word) in [
            ("remote=https://x/y.git", "remote"),
            ("version=2", "BuildKit"),
            ("dockerfile=/etc/passwd", "inside the context"),
            ("dockerfile=../x", "inside the context"),
            ("networkmode=container:x", "network mode"),
            ("buildargs=%5B1%5D", "buildargs"),
        ] {
            let e = request(&Query::parse(Some(query))).unwrap_err();
            assert!(e.to_string().contains(word), "{query}: {e}");
        }
    }
}
