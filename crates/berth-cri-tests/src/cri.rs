//! A blocking CRI client: k8s-cri's generated `RuntimeService` and `ImageService` clients on a
//! tonic channel over containerd's unix socket, driven by a current-thread tokio runtime, every
//! call under a deadline. It only speaks the CRI: it never looks at containerd's files.

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long one CRI call may take before the test fails (an image pull, a pod start).
pub const CALL_DEADLINE: Duration = Duration::from_secs(60);

pub struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

/// A failed call, with what was asked.
#[derive(Debug)]
pub struct CallError {
    pub call: &'static str,
    pub status: Option<tonic::Status>,
}

impl CallError {
    /// The server's message (empty for a deadline).
    pub fn message(&self) -> String {
        self.status
            .as_ref()
            .map(|s| s.message().to_string())
            .unwrap_or_default()
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.status {
            Some(s) => write!(f, "{}: {:?}: {}", self.call, s.code(), s.message()),
            None => write!(f, "{}: no answer in {CALL_DEADLINE:?}", self.call),
        }
    }
}

pub type CallResult<T> = Result<T, CallError>;

impl Cri {
    /// Connects to the CRI at `socket` (a unix socket path).
    pub fn connect(socket: &Path) -> Result<Cri, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let path = PathBuf::from(socket);
        // The URI is required by the endpoint but unused: every connection is the unix socket.
        let channel = rt
            .block_on(
                Endpoint::from_static("http://[::1]:0")
                    .connect_timeout(Duration::from_secs(5))
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                        }
                    })),
            )
            .map_err(|e| format!("connect to {}: {e}", socket.display()))?;
        Ok(Cri {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    fn call<T>(
        &self,
        call: &'static str,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> CallResult<T> {
        match self
            .rt
            .block_on(async { tokio::time::timeout(CALL_DEADLINE, fut).await })
        {
            Ok(Ok(resp)) => Ok(resp.into_inner()),
            Ok(Err(status)) => Err(CallError {
                call,
                status: Some(status),
            }),
            Err(_) => Err(CallError { call, status: None }),
        }
    }

    pub fn version(&self) -> CallResult<VersionResponse> {
        let mut c = self.runtime.clone();
        self.call("Version", c.version(VersionRequest::default()))
    }

    pub fn pull_image(&self, image: &str) -> CallResult<String> {
        let mut c = self.images.clone();
        let req = PullImageRequest {
            image: Some(ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.call("PullImage", c.pull_image(req))
            .map(|r| r.image_ref)
    }

    pub fn run_pod_sandbox(&self, config: &PodSandboxConfig, handler: &str) -> CallResult<String> {
        let mut c = self.runtime.clone();
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.to_string(),
        };
        self.call("RunPodSandbox", c.run_pod_sandbox(req))
            .map(|r| r.pod_sandbox_id)
    }

    /// The pod's status and, verbosely, containerd's info (its `info` key holds the pid).
    pub fn pod_sandbox_status(&self, id: &str) -> CallResult<PodSandboxStatusResponse> {
        let mut c = self.runtime.clone();
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: true,
        };
        self.call("PodSandboxStatus", c.pod_sandbox_status(req))
    }

    pub fn stop_pod_sandbox(&self, id: &str) -> CallResult<()> {
        let mut c = self.runtime.clone();
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.call("StopPodSandbox", c.stop_pod_sandbox(req))
            .map(drop)
    }

    pub fn remove_pod_sandbox(&self, id: &str) -> CallResult<()> {
        let mut c = self.runtime.clone();
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.call("RemovePodSandbox", c.remove_pod_sandbox(req))
            .map(drop)
    }

    pub fn list_pod_sandboxes(&self) -> CallResult<Vec<PodSandbox>> {
        let mut c = self.runtime.clone();
        self.call(
            "ListPodSandbox",
            c.list_pod_sandbox(ListPodSandboxRequest::default()),
        )
        .map(|r| r.items)
    }

    pub fn create_container(
        &self,
        pod: &str,
        config: &ContainerConfig,
        sandbox: &PodSandboxConfig,
    ) -> CallResult<String> {
        let mut c = self.runtime.clone();
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.to_string(),
            config: Some(config.clone()),
            sandbox_config: Some(sandbox.clone()),
        };
        self.call("CreateContainer", c.create_container(req))
            .map(|r| r.container_id)
    }

    pub fn start_container(&self, id: &str) -> CallResult<()> {
        let mut c = self.runtime.clone();
        let req = StartContainerRequest {
            container_id: id.to_string(),
        };
        self.call("StartContainer", c.start_container(req))
            .map(drop)
    }

    pub fn container_status(&self, id: &str) -> CallResult<ContainerStatus> {
        let mut c = self.runtime.clone();
        let req = ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        };
        self.call("ContainerStatus", c.container_status(req))?
            .status
            .ok_or(CallError {
                call: "ContainerStatus (no status in the answer)",
                status: None,
            })
    }

    /// Runs `cmd` in the container and returns what it printed and its exit code.
    pub fn exec_sync(
        &self,
        id: &str,
        cmd: &[&str],
        timeout_s: i64,
    ) -> CallResult<ExecSyncResponse> {
        let mut c = self.runtime.clone();
        let req = ExecSyncRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout_s,
        };
        self.call("ExecSync", c.exec_sync(req))
    }

    pub fn update_container_resources(
        &self,
        id: &str,
        resources: LinuxContainerResources,
    ) -> CallResult<()> {
        let mut c = self.runtime.clone();
        let req = UpdateContainerResourcesRequest {
            container_id: id.to_string(),
            linux: Some(resources),
            ..Default::default()
        };
        self.call(
            "UpdateContainerResources",
            c.update_container_resources(req),
        )
        .map(drop)
    }

    /// containerd's stats for a container (read from its cgroup by the shim).
    pub fn container_stats(&self, id: &str) -> CallResult<ContainerStats> {
        let mut c = self.runtime.clone();
        let req = ContainerStatsRequest {
            container_id: id.to_string(),
        };
        self.call("ContainerStats", c.container_stats(req))?
            .stats
            .ok_or(CallError {
                call: "ContainerStats (no stats in the answer)",
                status: None,
            })
    }

    pub fn stop_container(&self, id: &str, timeout_s: i64) -> CallResult<()> {
        let mut c = self.runtime.clone();
        let req = StopContainerRequest {
            container_id: id.to_string(),
            timeout: timeout_s,
        };
        self.call("StopContainer", c.stop_container(req)).map(drop)
    }

    pub fn remove_container(&self, id: &str) -> CallResult<()> {
        let mut c = self.runtime.clone();
        let req = RemoveContainerRequest {
            container_id: id.to_string(),
        };
        self.call("RemoveContainer", c.remove_container(req))
            .map(drop)
    }
}
