//! A real registry for one node: Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1
//! at a free port, its storage under the node's directory, killed and reaped when dropped. Images
//! are pushed over the distribution API directly (monolithic blob uploads, then the manifest), so
//! what containerd pulls never went through berth.

use crate::image::{Image, OCI_MANIFEST};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    dir: PathBuf,
    child: Child,
    agent: ureq::Agent,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Registry {
    /// Starts a registry with its config, storage and log under `dir`.
    pub fn start(dir: &Path) -> Registry {
        Registry::launch(&dir.join("registry")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn launch(dir: &Path) -> Result<Registry, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // The port is probed free, then bound by the registry: another process may take it in
        // between, so a registry that exits at once is retried on another port.
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port().map_err(|e| e.to_string())?);
            let config = dir.join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: {addr}\n  secret: berth-cri-test\n",
                    dir.join("storage").display()
                ),
            )
            .map_err(|e| format!("{}: {e}", config.display()))?;
            let log = std::fs::File::create(dir.join("registry.log")).map_err(|e| e.to_string())?;
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("docker-registry: {e} (apt-get install docker-registry)"))?;
            let mut reg = Registry {
                addr,
                dir: dir.to_path_buf(),
                child,
                agent: ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(30))
                    .build(),
            };
            if reg.wait_ready() {
                return Ok(reg);
            }
        }
        Err(format!(
            "docker-registry did not start; see {}",
            dir.join("registry.log").display()
        ))
    }

    /// Waits until `GET /v2/` answers; false if the registry exited or did not answer in time.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let url = format!("http://{}/v2/", self.addr);
            if self
                .agent
                .get(&url)
                .timeout(Duration::from_secs(1))
                .call()
                .is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// `ADDR/repo:tag`
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.addr)
    }

    /// Pushes an image's layers, config and manifest; returns `ADDR/repo:tag`.
    pub fn push(&self, repo: &str, tag: &str, image: &Image) -> String {
        self.try_push(repo, tag, image)
            .unwrap_or_else(|e| panic!("push {repo}:{tag}: {e}\n{}", self.log()))
    }

    fn try_push(&self, repo: &str, tag: &str, image: &Image) -> Result<String, String> {
        for blob in [&image.layer, &image.config] {
            self.push_blob(repo, blob)?;
        }
        let url = format!("http://{}/v2/{repo}/manifests/{tag}", self.addr);
        self.agent
            .put(&url)
            .set("Content-Type", OCI_MANIFEST)
            .send_bytes(&image.manifest)
            .map_err(|e| format!("PUT {url}: {e}"))?;
        Ok(self.reference(repo, tag))
    }

    /// A monolithic upload: POST opens a session, PUT `<Location>&digest=…` sends the bytes.
    fn push_blob(&self, repo: &str, data: &[u8]) -> Result<(), String> {
        let digest = crate::image::digest(data);
        let url = format!("http://{}/v2/{repo}/blobs/uploads/", self.addr);
        let resp = self
            .agent
            .post(&url)
            .send_bytes(&[])
            .map_err(|e| format!("POST {url}: {e}"))?;
        let location = resp
            .header("Location")
            .ok_or_else(|| format!("POST {url}: no Location in the answer"))?;
        let location = match location.starts_with('/') {
            true => format!("http://{}{location}", self.addr),
            false => location.to_string(),
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        self.agent
            .put(&format!("{location}{sep}digest={digest}"))
            .set("Content-Type", "application/octet-stream")
            .send_bytes(data)
            .map_err(|e| format!("PUT blob {digest}: {e}"))?;
        Ok(())
    }

    /// The registry's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
