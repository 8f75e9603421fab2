//! Instruction flags (`--from=x`, `--link`, `--mount=…` repeated) with BuildKit's rules: every flag
//! must be known to the instruction, bools take `true`/`false` or nothing, strings need a value,
//! only list flags repeat, and `--` ends the flags.

use std::collections::HashMap;

use super::units::suggest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Str,
    List,
}

/// The flags one instruction was given.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    bools: HashMap<&'static str, bool>,
    strs: HashMap<&'static str, String>,
    lists: HashMap<&'static str, Vec<String>>,
}

impl Flags {
    pub(crate) fn parse(args: &[String], defs: &[(&'static str, Kind)]) -> Result<Flags, String> {
        let mut f = Flags::default();
        for a in args {
            if a == "--" {
                break;
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {a}"));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(key, kind)) = defs.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = defs.iter().map(|d| d.0).collect();
                let mut msg = format!("unknown flag: --{name}");
                if let Some(s) = suggest(name, &names, true) {
                    msg.push_str(&format!(" (did you mean {s}?)"));
                }
                return Err(msg);
            };
            let seen = f.bools.contains_key(key) || f.strs.contains_key(key);
            if seen {
                return Err(format!("duplicate flag specified: --{name}"));
            }
            match (kind, value) {
                (Kind::Bool, Some("")) => return Err(format!("missing a value on flag: --{name}")),
                (Kind::Bool, v) => {
                    let b = match v.map(str::to_ascii_lowercase).as_deref() {
                        None | Some("true") => true,
                        Some("false") => false,
                        Some(_) => {
                            return Err(format!(
                                "expecting boolean value for flag --{name}, not: {}",
                                v.unwrap_or_default()
                            ))
                        }
                    };
                    f.bools.insert(key, b);
                }
                (_, None) => return Err(format!("missing a value on flag: --{name}")),
                (Kind::Str, Some(v)) => {
                    f.strs.insert(key, v.to_string());
                }
                (Kind::List, Some(v)) => f.lists.entry(key).or_default().push(v.to_string()),
            }
        }
        Ok(f)
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.bools.get(name).copied().unwrap_or(false)
    }

    /// `Some(value)` when the flag was given (`--keep-git-dir=false` is `Some(false)`).
    pub(crate) fn opt_bool(&self, name: &str) -> Option<bool> {
        self.bools.get(name).copied()
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.strs.get(name).cloned()
    }

    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.lists.get(name).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    const DEFS: &[(&str, Kind)] = &[
        ("link", Kind::Bool),
        ("from", Kind::Str),
        ("exclude", Kind::List),
    ];

    #[test]
    fn kinds_and_errors() {
        let f = Flags::parse(
            &v(&["--link", "--from=a", "--exclude=x", "--exclude=y"]),
            DEFS,
        )
        .unwrap();
        assert!(f.bool("link"));
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert_eq!(f.list("exclude"), v(&["x", "y"]));
        assert!(!Flags::parse(&v(&["--link=FALSE"]), DEFS)
            .unwrap()
            .bool("link"));
        let err = |a: &[&str]| Flags::parse(&v(a), DEFS).unwrap_err();
        assert_eq!(
            err(&["--form=a"]),
            "unknown flag: --form (did you mean from?)"
        );
        assert_eq!(
            err(&["--from=a", "--from=b"]),
            "duplicate flag specified: --from"
        );
        assert_eq!(err(&["--from"]), "missing a value on flag: --from");
        assert_eq!(err(&["--link="]), "missing a value on flag: --link");
        assert_eq!(
            err(&["--link=yes"]),
            "expecting boolean value for flag --link, not: yes"
        );
        assert!(Flags::parse(&v(&["--", "--bogus"]), DEFS).is_ok());
    }
}
