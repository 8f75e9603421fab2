//! What a build is asked for (build args, target, platforms) and the arguments BuildKit predefines:
//! the platform family (`TARGETPLATFORM`, `BUILDARCH`, …) and the proxy family, which are usable
//! without being declared (proxies) or once declared by ARG (platforms), and never "unused".

use std::collections::BTreeMap;
use std::fmt;

use crate::limits::Limits;

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: String,
}

impl Platform {
    /// The machine this code runs on.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", ""),
            "aarch64" => ("arm64", ""),
            "arm" => ("arm", "v7"),
            "x86" => ("386", ""),
            "powerpc64" => ("ppc64le", ""),
            other => (other, ""),
        };
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: variant.into(),
        }
    }

    /// Parses `linux/amd64`, `linux/arm/v7`, `arm64` (OS linux) as containerd's `platforms.Parse`
    /// does for the common spellings.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let lower = s.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(format!("invalid platform {s:?}"));
        }
        let (os, arch, variant) = match parts.as_slice() {
            [a] if *a == "linux" || *a == "windows" || *a == "darwin" => {
                (a.to_string(), Platform::host().arch, String::new())
            }
            [a] => ("linux".to_string(), a.to_string(), String::new()),
            [o, a] => (o.to_string(), a.to_string(), String::new()),
            [o, a, v] => (o.to_string(), a.to_string(), v.to_string()),
            _ => return Err(format!("invalid platform {s:?}")),
        };
        let (arch, variant) = match (arch.as_str(), variant.as_str()) {
            ("x86_64" | "x86-64", v) => ("amd64".to_string(), v.to_string()),
            ("aarch64", v) => ("arm64".to_string(), v.to_string()),
            ("armhf", "") => ("arm".to_string(), "v7".to_string()),
            ("armel", "") => ("arm".to_string(), "v6".to_string()),
            ("arm64", "v8") => ("arm64".to_string(), String::new()),
            ("amd64", "v1") => ("amd64".to_string(), String::new()),
            (a, v) => (a.to_string(), v.to_string()),
        };
        if !arch
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            || arch.is_empty()
        {
            return Err(format!("invalid platform {s:?}"));
        }
        Ok(Platform { os, arch, variant })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// The build's inputs other than the Dockerfile.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`; the last stage when none.
    pub target: Option<String>,
    /// `--platform`; the build platform when none.
    pub target_platform: Option<Platform>,
    pub build_platform: Platform,
    pub limits: Limits,
}

impl Default for BuildOptions {
    fn default() -> BuildOptions {
        BuildOptions {
            build_args: BTreeMap::new(),
            target: None,
            target_platform: None,
            build_platform: Platform::host(),
            limits: Limits::default(),
        }
    }
}

/// Arguments passed to RUN without an ARG declaration, and never reported unused.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Names of the predefined platform arguments.
pub const PLATFORM_ARGS: &[&str] = &[
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

impl BuildOptions {
    pub fn target_platform(&self) -> Platform {
        self.target_platform
            .clone()
            .unwrap_or_else(|| self.build_platform.clone())
    }

    /// The global scope before the meta ARGs: the platform arguments (build args override them).
    pub(crate) fn default_args(&self, target_name: &str) -> Vec<(String, String)> {
        let b = &self.build_platform;
        let t = self.target_platform();
        let values = [
            b.to_string(),
            b.os.clone(),
            String::new(),
            b.arch.clone(),
            b.variant.clone(),
            t.to_string(),
            t.os.clone(),
            String::new(),
            t.arch.clone(),
            t.variant.clone(),
            if target_name.is_empty() {
                "default".into()
            } else {
                target_name.to_string()
            },
        ];
        PLATFORM_ARGS
            .iter()
            .zip(values)
            .map(|(k, v)| (k.to_string(), self.build_args.get(*k).cloned().unwrap_or(v)))
            .collect()
    }

    /// The proxy variables given as build args, for RUN's environment (not its cache key).
    pub fn proxy_env(&self) -> Vec<(String, String)> {
        PROXY_ARGS
            .iter()
            .filter_map(|k| self.build_args.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_spellings() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(Platform::parse("arm64").unwrap().to_string(), "linux/arm64");
        assert!(Platform::parse("linux//x").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn default_args_follow_platforms_and_overrides() {
        let mut o = BuildOptions {
            build_platform: Platform::parse("linux/amd64").unwrap(),
            target_platform: Some(Platform::parse("linux/arm64").unwrap()),
            ..Default::default()
        };
        o.build_args.insert("TARGETVARIANT".into(), "v9".into());
        let args = o.default_args("");
        let get = |k: &str| args.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("BUILDPLATFORM"), "linux/amd64");
        assert_eq!(get("TARGETARCH"), "arm64");
        assert_eq!(get("TARGETVARIANT"), "v9");
        assert_eq!(get("TARGETSTAGE"), "default");
    }
}
