//! `RUN --mount=type=cache|bind|tmpfs|secret|ssh,…`: a CSV list of fields checked as BuildKit does.
//! The values are expanded first (the planner passes an expander); `from=` alone is read before
//! expansion, to build the stage graph, and may not use variables.

use super::units::{ram_in_bytes, suggest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount`, after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    /// A stage name or an image (bind and cache mounts).
    pub from: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub read_only: bool,
    /// tmpfs `size=` in bytes (0: unlimited).
    pub size_limit: i64,
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    pub required: bool,
    /// Secret mounts: the environment variable to expose the secret as.
    pub env: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Splits one CSV record (`"…"` quoting with `""` for a quote, as Go's encoding/csv).
pub(crate) fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(
                            "failed to parse csv mounts: extraneous or missing \" in quoted-field"
                                .into(),
                        )
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => {
                    return Err(
                        "failed to parse csv mounts: extraneous or missing \" in quoted-field"
                            .into(),
                    )
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => {
                        return Err("failed to parse csv mounts: bare \" in non-quoted-field".into())
                    }
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// The `from=` of a mount, read before expansion (`$` is refused unless last).
pub(crate) fn mount_from(value: &str) -> Result<Option<String>, String> {
    let mut from = None;
    for field in csv_fields(value)? {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        if k.eq_ignore_ascii_case("from") {
            if v.find('$').is_some_and(|i| i != v.len() - 1) {
                return Err(
                    "'from' doesn't support variable expansion, define alias stage instead".into(),
                );
            }
            from = Some(v.to_string());
        }
    }
    Ok(from)
}

const KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid value for {key}: {v}")),
    }
}

/// Parses one `--mount` value, expanding each field's value with `expand`.
pub fn parse_mount(
    value: &str,
    expand: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Mount, String> {
    let mut m = Mount {
        kind: MountType::Bind,
        from: None,
        source: None,
        target: None,
        read_only: false,
        size_limit: 0,
        id: None,
        sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let mut ro_auto = true;
    for field in csv_fields(value)? {
        let (key, raw) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(raw) = raw else {
            match key.as_str() {
                "readonly" | "ro" => (m.read_only, ro_auto) = (true, false),
                "readwrite" | "rw" => (m.read_only, ro_auto) = (false, false),
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true
                }
                "required" => {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.as_str()
                    ))
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let v = expand(raw)?;
        match key.as_str() {
            "type" => {
                m.kind = match v.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        let mut msg =
                            format!("unsupported mount type {}", crate::parser::go_quote(&v));
                        if let Some(s) =
                            suggest(&v, &["bind", "cache", "tmpfs", "secret", "ssh"], true)
                        {
                            msg.push_str(&format!(" (did you mean {s}?)"));
                        }
                        return Err(msg);
                    }
                }
            }
            "from" => m.from = Some(v),
            "source" | "src" => m.source = Some(v),
            "target" | "dst" | "destination" => m.target = Some(v),
            "readonly" | "ro" => (m.read_only, ro_auto) = (parse_bool(&key, &v)?, false),
            "readwrite" | "rw" => (m.read_only, ro_auto) = (!parse_bool(&key, &v)?, false),
            "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                m.required = parse_bool(&key, &v)?
            }
            "size" if m.kind == MountType::Tmpfs => {
                m.size_limit =
                    ram_in_bytes(&v).map_err(|_| format!("invalid value for {key}: {v}"))?
            }
            "required" | "size" => {
                return Err(format!(
                    "unexpected key '{key}' for mount type '{}'",
                    m.kind.as_str()
                ))
            }
            "id" => m.id = Some(v),
            "sharing" => {
                m.sharing = Some(match v.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => {
                        return Err(format!(
                            "unsupported sharing value {}",
                            crate::parser::go_quote(&v)
                        ))
                    }
                })
            }
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(&v, 8)
                        .map_err(|_| format!("invalid value {v} for mode"))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    v.parse()
                        .map_err(|_| format!("invalid value {v} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    v.parse()
                        .map_err(|_| format!("invalid value {v} for gid"))?,
                )
            }
            "env" => m.env = Some(v),
            _ => {
                let mut msg = format!("unexpected key '{key}' in '{field}'");
                if let Some(s) = suggest(&key, KEYS, true) {
                    msg.push_str(&format!(" (did you mean {s}?)"));
                }
                return Err(msg);
            }
        }
    }
    validate(&mut m, ro_auto)?;
    Ok(m)
}

fn validate(m: &mut Mount, ro_auto: bool) -> Result<(), String> {
    let kind = m.kind.as_str();
    if !matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    ) {
        for (name, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(format!("{name} not allowed for \"{kind}\" type mounts"));
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if m.source.is_some() && m.id.is_some() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!("invalid cache sharing set for {kind} mount"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Mount, String> {
        parse_mount(s, &mut |v| Ok(v.to_string()))
    }

    #[test]
    fn cache_defaults_to_read_write_bind_to_read_only() {
        let m = parse("type=cache,target=/root/.cache,id=go,sharing=locked,mode=0700,uid=1000")
            .unwrap();
        assert_eq!(
            (m.kind, m.read_only, m.mode, m.uid),
            (MountType::Cache, false, Some(0o700), Some(1000))
        );
        assert_eq!(m.sharing, Some(Sharing::Locked));
        let m = parse("target=/src,from=builder,source=/out").unwrap();
        assert_eq!(
            (m.kind, m.read_only, m.from.as_deref()),
            (MountType::Bind, true, Some("builder"))
        );
        assert!(!parse("type=bind,target=/x,rw").unwrap().read_only);
    }

    #[test]
    fn secret_and_tmpfs_rules() {
        let m = parse("type=secret,id=tok,env=TOKEN,required").unwrap();
        assert!(m.required && m.read_only);
        assert!(parse("type=secret").is_err());
        assert!(parse("type=secret,id=a,src=b").is_err());
        assert!(parse("type=secret,id=a,from=x").is_err());
        assert_eq!(
            parse("type=tmpfs,target=/t,size=64m").unwrap().size_limit,
            64 << 20
        );
        assert!(parse("type=bind,size=1m").is_err());
        assert!(parse("type=bind,mode=0700").is_err());
        assert!(parse("type=bind,target=/x,sharing=shared").is_err());
        assert!(parse("required").is_err());
    }

    #[test]
    fn unknown_keys_and_types() {
        assert_eq!(
            parse("type=cahce").unwrap_err(),
            "unsupported mount type \"cahce\" (did you mean cache?)"
        );
        assert!(parse("tagret=/x")
            .unwrap_err()
            .contains("did you mean target?"));
        assert!(parse("bogus")
            .unwrap_err()
            .contains("must be a key=value pair"));
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(
            csv_fields("a=1,\"b=x,y\",c").unwrap(),
            vec!["a=1", "b=x,y", "c"]
        );
        assert!(csv_fields("a=\"x").is_err());
        assert_eq!(
            mount_from("type=bind,from=build").unwrap().as_deref(),
            Some("build")
        );
        assert!(mount_from("from=$STAGE").is_err());
    }
}
