//! A real registry per test: Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1 at a
//! free port, its storage in a temporary directory, optionally behind htpasswd basic auth; killed
//! and reaped when dropped. Also a raw pusher that speaks the distribution API itself, so what
//! reaches the registry does not depend on berth.

use super::image::{Image, OCI_INDEX, OCI_MANIFEST};
use super::{run, sha256, Reaped};
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The storage root (`storage.filesystem.rootdirectory`).
    pub storage: PathBuf,
    auth: Option<(String, String)>,
    agent: ureq::Agent,
    child: Option<Reaped>,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Standard base64 (for the Basic authorization header).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Registry {
    /// An anonymous registry.
    pub fn start() -> Registry {
        Registry::launch(None)
    }

    /// A registry that wants basic auth for `user`/`password` (htpasswd, bcrypt).
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Registry::launch(Some((user.into(), password.into())))
    }

    fn launch(auth: Option<(String, String)>) -> Registry {
        let mut dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .expect("temp dir");
        let storage = dir.path().join("storage");
        let mut auth_yaml = String::new();
        if let Some((user, password)) = &auth {
            let mut cmd = Command::new("htpasswd");
            cmd.args(["-Bbn", user, password]);
            let out = run(cmd, None).success("htpasswd (apache2-utils)");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout.trim_end()).expect("htpasswd file");
            auth_yaml = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                file.display()
            );
        }
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: berth-test-secret\n{auth_yaml}",
                    storage.display()
                ),
            )
            .expect("registry config");
            let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .expect("docker-registry is installed");
            let mut reg = Registry {
                addr,
                storage: storage.clone(),
                auth: auth.clone(),
                agent: ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(60))
                    .build(),
                child: Some(Reaped(child)),
                dir,
            };
            if reg.wait_ready() {
                return reg;
            }
            // The port was taken between our probe and the registry's bind: try another.
            drop(reg.child.take());
            dir = reg.dir;
        }
        panic!("docker-registry did not start");
    }

    /// Waits until `GET /v2/` answers (200, or 401 with auth on).
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.0.try_wait()) {
                return false;
            }
            match ureq::get(&format!("http://{}/v2/", self.addr))
                .timeout(Duration::from_secs(1))
                .call()
            {
                Ok(_) | Err(ureq::Error::Status(401, _)) => return true,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        false
    }

    /// What the registry logged (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `ADDR/repo:tag`, the reference berth is given.
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.addr)
    }

    /// The file holding a blob in the registry's storage.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    fn with_auth(&self, req: ureq::Request) -> ureq::Request {
        match &self.auth {
            Some((u, p)) => req.set(
                "Authorization",
                &format!("Basic {}", base64(format!("{u}:{p}").as_bytes())),
            ),
            None => req,
        }
    }

    fn failure(e: ureq::Error) -> String {
        match e {
            ureq::Error::Status(code, resp) => {
                let mut body = String::new();
                let _ = resp.into_reader().take(4096).read_to_string(&mut body);
                format!("{code} {body}")
            }
            other => other.to_string(),
        }
    }

    /// Uploads a blob: POST a session, PUT `<Location>&digest=…` with the bytes.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let url = format!("http://{}/v2/{repo}/blobs/uploads/", self.addr);
        let resp = self
            .with_auth(self.agent.post(&url))
            .send_bytes(&[])
            .unwrap_or_else(|e| panic!("POST {url}: {}", Self::failure(e)));
        let location = resp
            .header("Location")
            .expect("upload Location")
            .to_string();
        let location = if location.starts_with('/') {
            format!("http://{}{location}", self.addr)
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        self.with_auth(self.agent.put(&put))
            .set("Content-Type", "application/octet-stream")
            .send_bytes(data)
            .unwrap_or_else(|e| panic!("PUT blob {digest}: {}", Self::failure(e)));
        digest
    }

    /// PUTs a manifest or index under `reference` (a tag or digest); the registry's refusal as text.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        data: &[u8],
    ) -> Result<(), String> {
        let url = format!("http://{}/v2/{repo}/manifests/{reference}", self.addr);
        self.with_auth(self.agent.put(&url))
            .set("Content-Type", media_type)
            .send_bytes(data)
            .map(|_| ())
            .map_err(Self::failure)
    }

    /// Pushes an image's blobs and manifest, tagged `tag`.
    pub fn push_image(&self, repo: &str, tag: &str, image: &Image) {
        self.push_blobs(repo, image);
        self.push_manifest(repo, tag, OCI_MANIFEST, &image.manifest)
            .unwrap_or_else(|e| panic!("PUT manifest {repo}:{tag}: {e}"));
    }

    /// Pushes an image's layers and config, not its manifest.
    pub fn push_blobs(&self, repo: &str, image: &Image) {
        for l in &image.layers {
            self.push_blob(repo, &l.blob);
        }
        self.push_blob(repo, &image.config);
    }

    /// Pushes every image by digest, then an OCI index over them tagged `tag`; returns its digest.
    pub fn push_index(&self, repo: &str, tag: &str, images: &[&Image]) -> String {
        for img in images {
            self.push_blobs(repo, img);
            self.push_manifest(repo, &img.manifest_digest, OCI_MANIFEST, &img.manifest)
                .unwrap_or_else(|e| panic!("PUT manifest {}: {e}", img.manifest_digest));
        }
        let idx = super::image::index(images);
        self.push_manifest(repo, tag, OCI_INDEX, &idx)
            .unwrap_or_else(|e| panic!("PUT index {repo}:{tag}: {e}"));
        sha256(&idx)
    }

    /// The digest the registry serves for `repo:reference` (`Docker-Content-Digest`).
    pub fn manifest_digest(&self, repo: &str, reference: &str) -> String {
        let url = format!("http://{}/v2/{repo}/manifests/{reference}", self.addr);
        let resp = self
            .with_auth(self.agent.head(&url))
            .set("Accept", &format!("{OCI_MANIFEST}, {OCI_INDEX}"))
            .call()
            .unwrap_or_else(|e| panic!("HEAD {url}: {}", Self::failure(e)));
        resp.header("Docker-Content-Digest")
            .expect("Docker-Content-Digest")
            .to_string()
    }
}
