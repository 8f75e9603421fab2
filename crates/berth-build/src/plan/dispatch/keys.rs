//! The text forms of a step: its history line, its progress display and its cache-key component
//! (canonical JSON of everything that changes what the step produces).

use crate::parser::go_quote;
use crate::plan::{CopyStep, RunStep, Source};
use crate::shell::Lexer;

pub(super) fn pairs(kvs: &[(String, String)]) -> String {
    kvs.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub(super) fn go_list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| go_quote(s)).collect::<Vec<_>>().join(" ")
    )
}

/// BuildKit shows RUN and COPY with the variables it knows expanded, the others as written.
pub(super) fn original_display(lex: &Lexer, original: &str, env: &dyn crate::shell::Env) -> String {
    let mut l = lex.clone();
    l.raw_quotes = true;
    l.skip_unset_env = true;
    l.process_word(original, env)
        .map(|e| e.result)
        .unwrap_or_else(|_| original.to_string())
}

pub(super) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

pub(super) fn is_git(s: &str) -> bool {
    s.starts_with("git@")
        || s.starts_with("git://")
        || (is_url(s) && (s.ends_with(".git") || s.contains(".git#")))
}

/// A canonical, unambiguous rendering of a step's inputs.
pub(super) fn component(parts: &[&str]) -> String {
    serde_json::to_string(parts).unwrap_or_default()
}

fn source_str(s: &Source) -> String {
    match s {
        Source::Context => "context".into(),
        Source::Stage(i) => format!("stage:{i}"),
        Source::Image(r) => format!("image:{r}"),
    }
}

pub(super) fn run_component(r: &RunStep) -> String {
    let mounts: Vec<String> = r
        .mounts
        .iter()
        .map(|m| {
            format!(
                "{:?}|{}",
                m.mount,
                m.from.as_ref().map(source_str).unwrap_or_default()
            )
        })
        .collect();
    let v = serde_json::json!({
        "op": "RUN",
        "args": r.args,
        "env": r.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "workdir": r.workdir,
        "user": r.user,
        "mounts": mounts,
        "network": format!("{:?}", r.network),
        "security": format!("{:?}", r.security),
        "devices": r.devices,
        "files": r.inline_files.iter().map(|f| (f.name.clone(), f.data.clone())).collect::<Vec<_>>(),
    });
    v.to_string()
}

pub(super) fn copy_component(c: &CopyStep) -> String {
    let v = serde_json::json!({
        "op": if c.add { "ADD" } else { "COPY" },
        "from": source_str(&c.from),
        "sources": c.sources,
        "remote": c.remote,
        "inline": c.inline.iter().map(|f| (f.name.clone(), f.data.clone())).collect::<Vec<_>>(),
        "dest": c.dest,
        "chown": c.chown,
        "chmod": c.chmod,
        "link": c.link,
        "parents": c.parents,
        "excludes": c.excludes,
        "unpack": c.unpack,
        "keep_git_dir": c.keep_git_dir,
        "checksum": c.checksum,
    });
    v.to_string()
}
