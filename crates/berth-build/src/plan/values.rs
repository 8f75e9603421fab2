//! Checks and normal forms of instruction values after expansion: paths (cleaned as Go's
//! `path.Clean`, relative ones joined to WORKDIR), EXPOSE port specs, STOPSIGNAL names, `--chmod`.

/// Go's `path.Clean` for slash paths.
pub fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// A WORKDIR: relative paths are joined to the current one; always absolute and clean.
pub fn normalize_workdir(current: &str, requested: &str) -> String {
    if requested.starts_with('/') {
        return clean_path(requested);
    }
    let base = if current.is_empty() { "/" } else { current };
    clean_path(&format!("{base}/{requested}"))
}

/// A COPY destination relative to the working directory, keeping a trailing slash (it says "a
/// directory").
pub fn normalize_dest(workdir: &str, dest: &str) -> String {
    let dest = if dest.is_empty() || dest == "." {
        "./"
    } else {
        dest
    };
    let joined = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{dest}", if workdir.is_empty() { "/" } else { workdir })
    };
    let mut out = clean_path(&joined);
    let slash = dest.ends_with('/') || dest.ends_with("/.") || dest == "./";
    if slash && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// A context source path confined to the context root: `..` cannot climb above it.
pub fn normalize_source(src: &str) -> String {
    clean_path(&format!("/{src}"))
}

/// EXPOSE's `[ip:][hostPort:]port[-end][/proto]` to `port/proto` entries.
pub fn parse_ports(spec: &str) -> Result<Vec<String>, String> {
    let (rest, proto) = match spec.split_once('/') {
        Some((r, p)) => (r, p),
        None => (spec, "tcp"),
    };
    if proto.is_empty() {
        return Err(format!("invalid port: {spec:?}: no protocol"));
    }
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid port: {spec:?}: invalid proto: {proto}"));
    }
    // The container port is after the last ':' outside IPv6 brackets.
    let container = match rest.rfind(']') {
        Some(b) => rest[b..].rsplit(':').next().unwrap_or(""),
        None => rest.rsplit(':').next().unwrap_or(""),
    };
    let bad = || format!("invalid containerPort: {container}");
    let (start, end) = match container.split_once('-') {
        Some((a, b)) if a != b => (a, b),
        Some((a, _)) => (a, a),
        None => (container, container),
    };
    let start: u16 = start.parse().map_err(|_| bad())?;
    let end: u16 = end.parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "UNUSED", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// STOPSIGNAL: a number or a name (with or without `SIG`, or `RTMIN+n`).
pub fn check_signal(sig: &str) -> Result<(), String> {
    if let Ok(n) = sig.parse::<i64>() {
        return if (1..=64).contains(&n) {
            Ok(())
        } else {
            Err(format!("invalid signal: {sig}"))
        };
    }
    let up = sig.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let rt = |base: &str, sign: i64| {
        name.strip_prefix(base)
            .and_then(|r| r.strip_prefix(if sign > 0 { '+' } else { '-' }))
            .and_then(|n| n.parse::<i64>().ok())
    };
    if SIGNALS.contains(&name)
        || name == "RTMIN"
        || name == "RTMAX"
        || rt("RTMIN", 1).is_some_and(|n| n <= 30)
        || rt("RTMAX", -1).is_some_and(|n| n <= 30)
    {
        return Ok(());
    }
    Err(format!("invalid signal: {sig}"))
}

/// `--chmod`: octal up to 07777, or a symbolic mode (`u+x,go-w`).
pub fn check_chmod(mode: &str) -> Result<(), String> {
    let non_octal = || {
        format!(
            "invalid chmod parameter: '{mode}'. it should be octal string and between 0 and 07777"
        )
    };
    if mode.chars().all(|c| c.is_ascii_digit()) {
        return match u32::from_str_radix(mode, 8) {
            Ok(v) if v <= 0o7777 => Ok(()),
            _ => Err(non_octal()),
        };
    }
    for clause in mode.split(',') {
        let who_end = clause
            .find(|c: char| !"ugoa".contains(c))
            .unwrap_or(clause.len());
        let ops = &clause[who_end..];
        if ops.is_empty() {
            return Err(format!("invalid chmod parameter: '{mode}'"));
        }
        let mut expect_op = true;
        for c in ops.chars() {
            match c {
                '+' | '-' | '=' => expect_op = false,
                'r' | 'w' | 'x' | 'X' | 's' | 't' | 'u' | 'g' | 'o' if !expect_op => {}
                _ => return Err(format!("invalid chmod parameter: '{mode}'")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_as_go() {
        for (i, o) in [
            ("/a/../../b/./c/", "/b/c"),
            ("a/../..", ".."),
            ("", "."),
            ("//", "/"),
            ("a//b", "a/b"),
        ] {
            assert_eq!(clean_path(i), o, "{i}");
        }
    }

    #[test]
    fn workdir_and_dest() {
        assert_eq!(normalize_workdir("/app", "sub/../x"), "/app/x");
        assert_eq!(normalize_workdir("", "rel"), "/rel");
        assert_eq!(normalize_dest("/app", "."), "/app/");
        assert_eq!(normalize_dest("/app", "x/"), "/app/x/");
        assert_eq!(normalize_dest("/app", "/abs/file"), "/abs/file");
        assert_eq!(normalize_source("../../etc/passwd"), "/etc/passwd");
    }

    #[test]
    fn ports_signals_modes() {
        assert_eq!(parse_ports("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(parse_ports("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(
            parse_ports("8000-8002").unwrap(),
            vec!["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(parse_ports("127.0.0.1:80:8080").unwrap(), vec!["8080/tcp"]);
        assert!(parse_ports("http").is_err());
        assert!(parse_ports("9-1").is_err());
        assert!(
            check_signal("SIGTERM").is_ok()
                && check_signal("kill").is_ok()
                && check_signal("9").is_ok()
        );
        assert!(check_signal("SIGRTMIN+3").is_ok());
        assert!(check_signal("SIGFOO").is_err() && check_signal("99").is_err());
        assert!(check_chmod("0755").is_ok() && check_chmod("u+x,go-w").is_ok());
        assert!(
            check_chmod("17777").is_err()
                && check_chmod("9").is_err()
                && check_chmod("x+").is_err()
        );
    }
}
