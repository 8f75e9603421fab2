//! Dockerfile text to a list of logical lines (nodes), as BuildKit's parser: directives, comments,
//! line continuations (comments and empty lines inside them skipped), heredoc bodies, and each
//! instruction's arguments split by that instruction's rule. It interprets nothing: typed
//! instructions are `crate::instructions`' job, expansion `crate::shell`'s.

mod directives;
mod heredoc;
mod words;

pub use directives::Directives;
pub use heredoc::{chomp_heredoc, parse_heredoc, Heredoc};
pub use words::go_quote;
pub(crate) use words::split_sep;

use crate::error::{ParseError, ParseErrorKind};
use crate::limits::Limits;
use directives::DirectiveParser;

/// One logical line of the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction as written (`RUN`, `run`, …).
    pub cmd: String,
    /// `--flag[=value]` words before the arguments.
    pub flags: Vec<String>,
    /// The arguments, split by the instruction's rule (ENV and LABEL: key, value, `=` or `""`).
    pub args: Vec<String>,
    /// ONBUILD's instruction.
    pub sub: Option<Box<Node>>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    pub heredocs: Vec<Heredoc>,
    /// The logical line, continuations joined.
    pub original: String,
    pub start_line: usize,
    pub end_line: usize,
}

impl Node {
    /// BuildKit's s-expression dump (`(copy ["--from=a"] "x" "/y")`), for comparing with its tests.
    pub fn dump(&self) -> String {
        let mut s = self.cmd.to_lowercase();
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&format!(" [{}]", flags.join(" ")));
        }
        for a in &self.args {
            s.push(' ');
            s.push_str(&go_quote(a));
        }
        if let Some(sub) = &self.sub {
            s.push_str(&format!(" ({})", sub.dump()));
        }
        s
    }

    fn can_contain_heredoc(&self) -> bool {
        let node = match (&self.sub, self.cmd.eq_ignore_ascii_case("onbuild")) {
            (Some(sub), true) => sub.as_ref(),
            _ => self,
        };
        matches!(
            node.cmd.to_ascii_lowercase().as_str(),
            "add" | "copy" | "run"
        ) && !node.json
    }
}

/// A parse warning BuildKit reports too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

/// The parsed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    pub directives: Directives,
    pub nodes: Vec<Node>,
    pub warnings: Vec<Warning>,
}

impl Ast {
    pub fn dump(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("({})\n", n.dump()))
            .collect()
    }
}

/// Parses the bytes of a Dockerfile into nodes.
pub fn parse_ast(src: &[u8], limits: &Limits) -> Result<Ast, ParseError> {
    if src.len() > limits.max_dockerfile_bytes {
        return Err(ParseError::new(
            1,
            1,
            ParseErrorKind::TooLarge {
                limit: limits.max_dockerfile_bytes,
            },
        ));
    }
    let text = match std::str::from_utf8(src) {
        Ok(t) => t,
        Err(e) => {
            let line = src[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            return Err(ParseError::new(line, line, ParseErrorKind::InvalidUtf8));
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Parser {
        lines: text.split_inclusive('\n').collect(),
        pos: 0,
        limits,
        d: Directives::default(),
        dp: DirectiveParser::default(),
    }
    .run()
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    /// Lines consumed so far (so also the 1-based number of the last one read).
    pos: usize,
    limits: &'a Limits,
    d: Directives,
    dp: DirectiveParser,
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

impl<'a> Parser<'a> {
    fn err(&self, start: usize, kind: ParseErrorKind) -> ParseError {
        ParseError::new(start, self.pos, kind)
    }

    fn next_line(&mut self) -> Result<Option<&'a str>, ParseError> {
        let Some(line) = self.lines.get(self.pos).copied() else {
            return Ok(None);
        };
        self.pos += 1;
        if trim_newline(line).len() > self.limits.max_line_bytes {
            return Err(self.err(
                self.pos,
                ParseErrorKind::LineTooLong {
                    limit: self.limits.max_line_bytes,
                },
            ));
        }
        Ok(Some(line))
    }

    /// Newline removed, leading whitespace too for a first line, directives noted, comments emptied.
    fn process_line(&mut self, line: &'a str, strip_left: bool) -> Result<&'a str, ParseError> {
        let mut t = trim_newline(line);
        if strip_left {
            t = t.trim_start();
        }
        self.dp
            .line(t, &mut self.d)
            .map_err(|m| self.err(self.pos, ParseErrorKind::Invalid(m)))?;
        Ok(if is_comment(t) { "" } else { t })
    }

    /// A line ending in the escape character (not itself escaped) continues on the next one.
    fn trim_continuation(&self, line: &'a str) -> (&'a str, bool) {
        let e = self.d.escape;
        let t = line.trim_end_matches([' ', '\t']);
        if let Some(before) = t.strip_suffix(e) {
            if before.is_empty() || !before.ends_with(e) {
                return (before, false);
            }
        }
        (line, true)
    }

    fn run(mut self) -> Result<Ast, ParseError> {
        let mut nodes = Vec::new();
        let mut warnings = Vec::new();
        while let Some(raw) = self.next_line()? {
            let first = self.process_line(raw, true)?;
            let start = self.pos;
            let (text, mut end) = self.trim_continuation(first);
            if end && text.is_empty() {
                continue;
            }
            let mut buf = text.to_string();
            let mut empty_continuation = false;
            while !end {
                let Some(raw) = self.next_line()? else { break };
                let t = self.process_line(raw, false)?;
                if is_comment(raw) {
                    continue;
                }
                if t.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (t, e) = self.trim_continuation(t);
                buf.push_str(t);
                end = e;
            }
            if empty_continuation {
                warnings.push(Warning {
                    line: self.pos,
                    message: format!("Empty continuation line found in: {buf}"),
                });
            }
            let mut node = node_from_line(&buf, self.d.escape)
                .map_err(|m| self.err(start, ParseErrorKind::Invalid(m)))?;
            if node.can_contain_heredoc() && buf.contains("<<") {
                for mut h in heredoc::heredocs_in_line(&buf) {
                    h.content = self.heredoc_body(start, &h)?;
                    node.heredocs.push(h);
                }
            }
            node.start_line = start;
            node.end_line = self.pos;
            nodes.push(node);
            if nodes.len() > self.limits.max_instructions {
                return Err(self.err(
                    start,
                    ParseErrorKind::TooManyInstructions {
                        limit: self.limits.max_instructions,
                    },
                ));
            }
        }
        if nodes.is_empty() {
            return Err(ParseError::new(
                self.pos.max(1),
                self.pos.max(1),
                ParseErrorKind::NoInstructions,
            ));
        }
        Ok(Ast {
            directives: self.d,
            nodes,
            warnings,
        })
    }

    fn heredoc_body(&mut self, start: usize, h: &Heredoc) -> Result<String, ParseError> {
        let mut content = String::new();
        while let Some(line) = self.next_line()? {
            let mut candidate = trim_newline(line);
            if h.chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == h.name {
                return Ok(content);
            }
            content.push_str(line);
            if content.len() > self.limits.max_heredoc_bytes {
                return Err(self.err(
                    start,
                    ParseErrorKind::HeredocTooLarge {
                        limit: self.limits.max_heredoc_bytes,
                    },
                ));
            }
        }
        Err(self.err(start, ParseErrorKind::UnterminatedHeredoc))
    }
}

/// Splits one logical line into a node with its instruction's argument rule.
pub(crate) fn node_from_line(line: &str, escape: char) -> Result<Node, String> {
    let (cmd, flags, rest) = words::split_command(line, escape);
    let mut node = Node {
        cmd,
        flags,
        args: Vec::new(),
        sub: None,
        json: false,
        heredocs: Vec::new(),
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
    };
    let rest = rest.as_str();
    match node.cmd.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => match words::parse_json(rest)? {
            Some(a) => (node.args, node.json) = (a, true),
            None => node.args = whitespace_list(rest),
        },
        "cmd" | "entrypoint" | "run" | "shell" => (node.args, node.json) = maybe_json(rest)?,
        "arg" => node.args = words::parse_words(rest, escape),
        "env" => node.args = name_val(rest, "ENV", escape)?,
        "label" => node.args = name_val(rest, "LABEL", escape)?,
        "expose" | "from" => node.args = whitespace_list(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            if !rest.is_empty() {
                node.args = vec![rest.to_string()];
            }
        }
        "healthcheck" => {
            let typ_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if typ_end > 0 {
                let (cmd, json) = maybe_json(rest[typ_end..].trim_start())?;
                node.args = std::iter::once(rest[..typ_end].to_string())
                    .chain(cmd)
                    .collect();
                node.json = json;
            }
        }
        "onbuild" => {
            if !rest.is_empty() {
                node.sub = Some(Box::new(node_from_line(rest, escape)?));
            }
        }
        _ => node.args = vec![String::new()],
    }
    Ok(node)
}

fn whitespace_list(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_sep(rest, 0).into_iter().map(str::to_string).collect()
}

fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match words::parse_json(rest)? {
        Some(a) => (a, true),
        None => (vec![rest.to_string()], false),
    })
}

/// ENV and LABEL: `KEY value` (old form) or `k=v k2="v 2"`; triples of key, value, separator.
fn name_val(rest: &str, what: &str, escape: char) -> Result<Vec<String>, String> {
    let ws = words::parse_words(rest, escape);
    let Some(first) = ws.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let parts = split_sep(rest, 2);
        if parts.len() < 2 {
            return Err(format!("{what} must have two arguments"));
        }
        return Ok(vec![
            parts[0].to_string(),
            parts[1].to_string(),
            String::new(),
        ]);
    }
    let mut out = Vec::with_capacity(ws.len() * 3);
    for w in &ws {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(w)
            ));
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
