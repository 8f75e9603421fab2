//! Nodes to typed instructions and stages, with BuildKit's argument counts, flag sets and messages.

use super::flags::{Flags, Kind};
use super::*;
use crate::error::{ParseError, ParseErrorKind};
use crate::limits::Limits;
use crate::parser::{chomp_heredoc, parse_ast, parse_heredoc, Node};

const NAMES: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parses a Dockerfile with the default limits.
pub fn parse(src: &[u8]) -> Result<Dockerfile, ParseError> {
    parse_with_limits(src, &Limits::default())
}

pub fn parse_with_limits(src: &[u8], limits: &Limits) -> Result<Dockerfile, ParseError> {
    let ast = parse_ast(src, limits)?;
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &ast.nodes {
        let err = |kind| ParseError::new(node.start_line, node.end_line, kind);
        let lines = Lines {
            start: node.start_line,
            end: node.end_line,
        };
        let original = node.original.trim().to_string();
        if node.cmd.eq_ignore_ascii_case("from") {
            let from = parse_from(node).map_err(|m| err(ParseErrorKind::Invalid(m)))?;
            stages.push(Stage {
                index: stages.len(),
                from,
                lines,
                original,
                instructions: Vec::new(),
            });
            continue;
        }
        let command = parse_command(node).map_err(err)?;
        let ins = Instruction {
            lines,
            original,
            command,
        };
        match stages.last_mut() {
            Some(stage) => stage.instructions.push(ins),
            None if matches!(ins.command, Command::Arg(_)) => meta_args.push(ins),
            None => {
                return Err(err(ParseErrorKind::Invalid(
                    "no build stage in current context".into(),
                )))
            }
        }
    }
    Ok(Dockerfile {
        directives: ast.directives,
        meta_args,
        stages,
        warnings: ast.warnings,
    })
}

/// Parses one instruction's source (an ONBUILD trigger), with the default escape character.
pub(crate) fn parse_single(src: &str) -> Result<(Node, Command), ParseError> {
    let ast = parse_ast(src.as_bytes(), &Limits::default())?;
    let [node] = ast.nodes.as_slice() else {
        return Err(ParseError::new(
            1,
            1,
            ParseErrorKind::Invalid("onbuild trigger should be a single expression".into()),
        ));
    };
    if node.cmd.eq_ignore_ascii_case("from") {
        return Err(ParseError::new(
            1,
            1,
            ParseErrorKind::Invalid("FROM isn't allowed as an ONBUILD trigger".into()),
        ));
    }
    let command =
        parse_command(node).map_err(|k| ParseError::new(node.start_line, node.end_line, k))?;
    Ok((node.clone(), command))
}

fn invalid(m: impl Into<String>) -> ParseErrorKind {
    ParseErrorKind::Invalid(m.into())
}

fn no_flags(node: &Node) -> Result<(), ParseErrorKind> {
    Flags::parse(&node.flags, &[]).map(|_| ()).map_err(invalid)
}

fn exactly_one(node: &Node, what: &str) -> Result<String, ParseErrorKind> {
    match node.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(invalid(format!("{what} requires exactly one argument"))),
    }
}

fn parse_command(node: &Node) -> Result<Command, ParseErrorKind> {
    let name = node.cmd.to_ascii_uppercase();
    Ok(match name.as_str() {
        "RUN" => Command::Run(parse_run(node)?),
        "CMD" => {
            no_flags(node)?;
            Command::Cmd(command_line(node))
        }
        "ENTRYPOINT" => {
            no_flags(node)?;
            Command::Entrypoint(command_line(node))
        }
        "SHELL" => {
            no_flags(node)?;
            if node.args.is_empty() {
                return Err(invalid("SHELL requires at least one argument"));
            }
            if !node.json {
                return Err(invalid("SHELL requires the arguments to be in JSON form"));
            }
            Command::Shell(node.args.clone())
        }
        "COPY" => Command::Copy(parse_copy(node)?),
        "ADD" => Command::Add(parse_add(node)?),
        "ENV" => {
            no_flags(node)?;
            Command::Env(key_values(node, "ENV")?)
        }
        "LABEL" => {
            no_flags(node)?;
            Command::Label(key_values(node, "LABEL")?)
        }
        "ARG" => Command::Arg(parse_arg(node)?),
        "WORKDIR" => {
            let path = exactly_one(node, "WORKDIR")?;
            no_flags(node)?;
            Command::Workdir(path)
        }
        "USER" => {
            let user = exactly_one(node, "USER")?;
            no_flags(node)?;
            Command::User(user)
        }
        "EXPOSE" => {
            if node.args.is_empty() {
                return Err(invalid("EXPOSE requires at least one argument"));
            }
            no_flags(node)?;
            let mut ports = node.args.clone();
            ports.sort();
            Command::Expose(ports)
        }
        "VOLUME" => {
            if node.args.is_empty() {
                return Err(invalid("VOLUME requires at least one argument"));
            }
            no_flags(node)?;
            let mut vols = Vec::new();
            for v in &node.args {
                let v = v.trim();
                if v.is_empty() {
                    return Err(invalid("VOLUME specified can not be an empty string"));
                }
                vols.push(v.to_string());
            }
            Command::Volume(vols)
        }
        "STOPSIGNAL" => Command::StopSignal(exactly_one(node, "STOPSIGNAL")?),
        "HEALTHCHECK" => Command::Healthcheck(parse_healthcheck(node)?),
        "ONBUILD" => Command::OnBuild(parse_onbuild(node)?),
        "MAINTAINER" => {
            let m = exactly_one(node, "MAINTAINER")?;
            no_flags(node)?;
            Command::Maintainer(m)
        }
        _ => {
            return Err(ParseErrorKind::UnknownInstruction {
                name: node.cmd.clone(),
                suggestion: units::suggest(&node.cmd, NAMES, false),
            })
        }
    })
}

fn parse_from(node: &Node) -> Result<From, String> {
    let name = match node.args.as_slice() {
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            let valid = lower.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && lower
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(format!(
                    "invalid name for build stage: {}, name can't start with a number or contain symbols",
                    crate::parser::go_quote(name)
                ));
            }
            Some(lower)
        }
        [_] => None,
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    let flags = Flags::parse(&node.flags, &[("platform", Kind::Str)])?;
    Ok(From {
        base: node.args[0].clone(),
        platform: flags.string("platform").filter(|p| !p.is_empty()),
        name,
    })
}

fn command_line(node: &Node) -> CommandLine {
    let args = if node.json || node.args.is_empty() {
        node.args.clone()
    } else {
        vec![node.args.join(" ")]
    };
    CommandLine {
        args,
        prepend_shell: !node.json,
        files: node.heredocs.clone(),
    }
}

fn parse_run(node: &Node) -> Result<Run, ParseErrorKind> {
    let defs = [
        ("mount", Kind::List),
        ("network", Kind::Str),
        ("security", Kind::Str),
        ("device", Kind::List),
    ];
    let flags = Flags::parse(&node.flags, &defs).map_err(invalid)?;
    let network = match flags.string("network").as_deref().unwrap_or("default") {
        "default" => Network::Default,
        "none" => Network::None,
        "host" => Network::Host,
        v => {
            return Err(invalid(format!(
                "invalid network mode {}",
                crate::parser::go_quote(v)
            )))
        }
    };
    let security = match flags.string("security").as_deref().unwrap_or("sandbox") {
        "sandbox" => Security::Sandbox,
        "insecure" => Security::Insecure,
        v => {
            return Err(invalid(format!(
                "security {} is not valid",
                crate::parser::go_quote(v)
            )))
        }
    };
    let mounts = flags.list("mount");
    let mount_froms = mounts
        .iter()
        .map(|m| mount::mount_from(m))
        .collect::<Result<_, _>>()
        .map_err(invalid)?;
    Ok(Run {
        command: command_line(node),
        mounts,
        mount_froms,
        network,
        security,
        devices: flags.list("device"),
    })
}

fn sources_and_dest(node: &Node, what: &str) -> Result<SourcesAndDest, ParseErrorKind> {
    let Some((dest, srcs)) = node.args.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(invalid(format!(
            "{what} requires at least two arguments, but only one was provided. Destination could not be determined"
        )));
    };
    if parse_heredoc(dest).is_some() {
        return Err(invalid(format!(
            "{what} cannot accept a heredoc as a destination"
        )));
    }
    let mut out = SourcesAndDest {
        sources: Vec::new(),
        inline: Vec::new(),
        dest: dest.clone(),
    };
    for src in srcs {
        match parse_heredoc(src) {
            Some(h) => {
                let body = node
                    .heredocs
                    .iter()
                    .rev()
                    .find(|d| d.name == h.name)
                    .map(|d| d.content.as_str())
                    .unwrap_or("");
                let data = if h.chomp {
                    chomp_heredoc(body)
                } else {
                    body.to_string()
                };
                out.inline.push(InlineSource {
                    path: h.name,
                    data,
                    expand: h.expand,
                });
            }
            None => out.sources.push(src.clone()),
        }
    }
    Ok(out)
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

fn parse_copy(node: &Node) -> Result<Copy, ParseErrorKind> {
    let defs = [
        ("chown", Kind::Str),
        ("from", Kind::Str),
        ("chmod", Kind::Str),
        ("link", Kind::Bool),
        ("exclude", Kind::List),
        ("parents", Kind::Bool),
    ];
    let flags = Flags::parse(&node.flags, &defs).map_err(invalid)?;
    Ok(Copy {
        paths: sources_and_dest(node, "COPY")?,
        from: nonempty(flags.string("from")),
        chown: nonempty(flags.string("chown")),
        chmod: nonempty(flags.string("chmod")),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        excludes: flags.list("exclude"),
        json: node.json,
    })
}

fn parse_add(node: &Node) -> Result<Add, ParseErrorKind> {
    let defs = [
        ("chown", Kind::Str),
        ("chmod", Kind::Str),
        ("link", Kind::Bool),
        ("keep-git-dir", Kind::Bool),
        ("checksum", Kind::Str),
        ("unpack", Kind::Bool),
        ("exclude", Kind::List),
    ];
    let flags = Flags::parse(&node.flags, &defs).map_err(invalid)?;
    Ok(Add {
        paths: sources_and_dest(node, "ADD")?,
        chown: nonempty(flags.string("chown")),
        chmod: nonempty(flags.string("chmod")),
        link: flags.bool("link"),
        keep_git_dir: flags.opt_bool("keep-git-dir"),
        checksum: nonempty(flags.string("checksum")),
        unpack: flags.opt_bool("unpack"),
        excludes: flags.list("exclude"),
        json: node.json,
    })
}

fn key_values(node: &Node, what: &str) -> Result<Vec<KeyValue>, ParseErrorKind> {
    if node.args.is_empty() {
        return Err(invalid(format!("{what} requires at least one argument")));
    }
    node.args
        .chunks(3)
        .map(|c| match c {
            [k, _, _] if k.is_empty() => Err(invalid(format!("{what} names can not be blank"))),
            [k, v, sep] => Ok(KeyValue {
                key: k.clone(),
                value: v.clone(),
                legacy: sep.is_empty(),
            }),
            _ => Err(invalid(format!("Bad input to {what}, too many arguments"))),
        })
        .collect()
}

fn parse_arg(node: &Node) -> Result<Vec<ArgDecl>, ParseErrorKind> {
    if node.args.is_empty() {
        return Err(invalid("ARG requires at least one argument"));
    }
    node.args
        .iter()
        .map(|a| match a.split_once('=') {
            Some(("", _)) => Err(invalid("ARG names can not be blank")),
            Some((k, v)) => Ok(ArgDecl {
                key: k.to_string(),
                default: Some(v.to_string()),
            }),
            None => Ok(ArgDecl {
                key: a.clone(),
                default: None,
            }),
        })
        .collect()
}

fn interval(flags: &Flags, name: &str) -> Result<i64, ParseErrorKind> {
    let Some(v) = flags.string(name).filter(|v| !v.is_empty()) else {
        return Ok(0);
    };
    let d = units::parse_duration(&v).map_err(invalid)?;
    if d == 0 {
        return Ok(0);
    }
    if d < 1_000_000 {
        return Err(invalid(format!(
            "Interval \"{name}\" cannot be less than 1ms"
        )));
    }
    Ok(d)
}

fn parse_healthcheck(node: &Node) -> Result<Healthcheck, ParseErrorKind> {
    let Some((typ, rest)) = node.args.split_first() else {
        return Err(invalid("HEALTHCHECK requires at least one argument"));
    };
    let typ = typ.to_uppercase();
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err(invalid("HEALTHCHECK NONE takes no arguments"));
        }
        return Ok(Healthcheck {
            test: vec![typ],
            ..Healthcheck::default()
        });
    }
    let defs = [
        ("interval", Kind::Str),
        ("timeout", Kind::Str),
        ("start-period", Kind::Str),
        ("start-interval", Kind::Str),
        ("retries", Kind::Str),
    ];
    let flags = Flags::parse(&node.flags, &defs).map_err(invalid)?;
    if typ != "CMD" {
        return Err(invalid(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            crate::parser::go_quote(&typ)
        )));
    }
    let cmd: Vec<String> = if node.json || rest.is_empty() {
        rest.to_vec()
    } else {
        vec![rest.join(" ")]
    };
    if cmd.is_empty() {
        return Err(invalid("Missing command after HEALTHCHECK CMD"));
    }
    let kind = if node.json { "CMD" } else { "CMD-SHELL" };
    let retries = match flags.string("retries").filter(|r| !r.is_empty()) {
        None => 0,
        Some(r) => {
            let n: i32 = r.parse().map_err(|_| {
                invalid(format!(
                    "strconv.ParseInt: parsing {}: invalid syntax",
                    crate::parser::go_quote(&r)
                ))
            })?;
            if n < 0 {
                return Err(invalid(format!("--retries cannot be negative ({n})")));
            }
            i64::from(n)
        }
    };
    Ok(Healthcheck {
        test: std::iter::once(kind.to_string()).chain(cmd).collect(),
        interval: interval(&flags, "interval")?,
        timeout: interval(&flags, "timeout")?,
        start_period: interval(&flags, "start-period")?,
        start_interval: interval(&flags, "start-interval")?,
        retries,
    })
}

fn parse_onbuild(node: &Node) -> Result<OnBuild, ParseErrorKind> {
    let Some(sub) = &node.sub else {
        return Err(invalid("ONBUILD requires at least one argument"));
    };
    no_flags(node)?;
    let trigger = sub.cmd.trim().to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => {
            return Err(invalid(
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ))
        }
        "MAINTAINER" | "FROM" => {
            return Err(invalid(format!(
                "{trigger} isn't allowed as an ONBUILD trigger"
            )))
        }
        _ => {}
    }
    let orig = node.original.trim_start();
    let mut expression = orig
        .get(7..)
        .filter(|_| orig[..7].eq_ignore_ascii_case("onbuild"))
        .unwrap_or(orig)
        .trim_start()
        .to_string();
    for h in &node.heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(OnBuild { expression })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
