//! Registry credentials as Docker's CLI keeps them (`config.json`): `login` checks them against
//! the registry before storing them, `logout` forgets them; no server means Docker Hub, filed
//! under Docker's historic key.

use crate::container::Engine;
use crate::error::{EngineError, Result};
use berth_image::pull::PullError;
use berth_image::registry::{auth, Client};

/// Docker Hub as `login` and `logout` name it when no server is given.
pub const DEFAULT_SERVER: &str = "https://index.docker.io/v1/";

/// The registry host a `login`/`logout` server argument names (`docker.io` for Docker Hub's
/// historic names).
pub fn registry_host(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let s = s.split('/').next().unwrap_or(s);
    if s == "index.docker.io" || s == "registry-1.docker.io" || s == "docker.io" {
        "docker.io".into()
    } else {
        s.into()
    }
}

/// A registry as `login` and `logout` show it: its host, and how Docker's CLI names it.
#[derive(Debug, Clone)]
pub struct Login {
    /// `docker.io`, `localhost:5000`.
    pub registry: String,
    /// `https://index.docker.io/v1/` for Docker Hub, else the host.
    pub shown: String,
    /// The username stored for it, if any.
    pub username: Option<String>,
}

impl Engine {
    /// The registry `server` (None: Docker Hub) names, and who is stored for it.
    pub fn login_target(&self, server: Option<&str>) -> Login {
        let registry = registry_host(server.unwrap_or(DEFAULT_SERVER));
        Login {
            shown: if registry == "docker.io" {
                DEFAULT_SERVER.to_string()
            } else {
                registry.clone()
            },
            username: auth::lookup(&registry).map(|c| c.username),
            registry,
        }
    }

    /// Checks the stored credentials for `server` against the registry (`login` without flags).
    pub fn login_stored(&self, server: Option<&str>) -> Result<String> {
        let registry = registry_host(server.unwrap_or(DEFAULT_SERVER));
        let creds = auth::lookup(&registry)
            .ok_or_else(|| EngineError::msg(format!("no credentials stored for {registry}")))?;
        self.login(server, creds)
    }

    /// Checks `creds` against `server` (None: Docker Hub) and stores them (Docker's config.json);
    /// returns where they were filed.
    pub fn login(&self, server: Option<&str>, creds: auth::Credentials) -> Result<String> {
        let registry = self.check_login(server.unwrap_or(DEFAULT_SERVER), &creds)?;
        auth::store(&registry, &creds).map_err(|e| {
            EngineError::io(
                format!("saving credentials to {}", auth::config_path().display()),
                e,
            )
        })?;
        Ok(registry)
    }

    /// Checks `creds` against `server` without keeping them (the API's `/auth`); returns the
    /// registry's host.
    pub fn check_login(&self, server: &str, creds: &auth::Credentials) -> Result<String> {
        let registry = registry_host(server);
        let api = if registry == "docker.io" {
            berth_image::reference::DOCKER_HUB_API.to_string()
        } else {
            registry.clone()
        };
        Client::new(&api, &self.insecure, Some(creds.clone()))
            .ping()
            .map_err(|e| EngineError::from(PullError::from(e)))?;
        Ok(registry)
    }

    /// Where credentials are kept (for Docker's warning that they are stored unencrypted).
    pub fn credentials_file(&self) -> std::path::PathBuf {
        auth::config_path()
    }

    /// Forgets the credentials for `server` (None: Docker Hub); whether any were stored.
    pub fn logout(&self, server: Option<&str>) -> Result<(Login, bool)> {
        let target = self.login_target(server);
        let removed = auth::remove(&target.registry)
            .map_err(|e| EngineError::io(format!("logout {}", target.registry), e))?;
        Ok((target, removed))
    }

    /// Skips TLS verification (and allows plain HTTP) for the registry `server` names (`login
    /// --tls-verify=false`).
    pub fn trust_server(&mut self, server: Option<&str>) {
        let registry = registry_host(server.unwrap_or(DEFAULT_SERVER));
        if registry != "docker.io" {
            self.insecure.push(registry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_name_their_registry() {
        assert_eq!(registry_host(DEFAULT_SERVER), "docker.io");
        assert_eq!(registry_host("docker.io"), "docker.io");
        assert_eq!(registry_host("localhost:5000"), "localhost:5000");
        assert_eq!(registry_host("https://reg.example/v2/"), "reg.example");
    }
}
