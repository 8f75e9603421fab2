//! Parser directives (`# syntax=`, `# escape=`, `# check=`): comments at the very top of the file,
//! each at most once. The first line that is not one (an empty line, another comment, an
//! instruction) ends them.

/// The directives a Dockerfile set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    pub syntax: Option<String>,
    /// `\` unless `# escape=` chose the backtick.
    pub escape: char,
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Directives {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct DirectiveParser {
    done: bool,
    seen: Vec<String>,
}

impl DirectiveParser {
    /// Looks at one line (newline and leading whitespace already gone). `Ok(true)`: a directive.
    pub(crate) fn line(&mut self, line: &str, d: &mut Directives) -> Result<bool, String> {
        if self.done {
            return Ok(false);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let Some((key, value)) = split_directive(rest.trim_start()) else {
            self.done = true;
            return Ok(false);
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                d.escape = match value {
                    "`" => '`',
                    "\\" => '\\',
                    v => return Err(format!("invalid escape token '{v}' does not match ` or \\")),
                }
            }
            "syntax" => d.syntax = Some(value.to_string()),
            _ => d.check = Some(value.to_string()),
        }
        Ok(true)
    }
}

/// Go regexp `\s`: ASCII whitespace without `\v`.
fn is_re_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// `name = value`: a name of ASCII letters and digits starting with a letter, a non-empty value
/// with surrounding whitespace removed.
fn split_directive(s: &str) -> Option<(&str, &str)> {
    let first = s.chars().next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let name_end = s
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    let rest = s[name_end..].trim_start_matches(is_re_space);
    let value = rest
        .strip_prefix('=')?
        .trim_start_matches(is_re_space)
        .trim_end_matches(is_re_space);
    if value.is_empty() || value.contains('\n') {
        return None;
    }
    Some((&s[..name_end], value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_and_syntax_then_done() {
        let mut p = DirectiveParser::default();
        let mut d = Directives::default();
        assert_eq!(p.line("# escape=`", &mut d), Ok(true));
        assert_eq!(p.line("#syntax = docker/dockerfile:1 ", &mut d), Ok(true));
        assert_eq!(p.line("# check=skip=all", &mut d), Ok(true));
        assert_eq!(p.line("", &mut d), Ok(false));
        assert_eq!(p.line("# escape=\\", &mut d), Ok(false));
        assert_eq!(d.escape, '`');
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.check.as_deref(), Some("skip=all"));
    }

    #[test]
    fn repeated_or_invalid_directive_is_an_error() {
        let mut p = DirectiveParser::default();
        let mut d = Directives::default();
        p.line("# escape=\\", &mut d).unwrap();
        assert!(p.line("# ESCAPE=`", &mut d).is_err());
        let mut p = DirectiveParser::default();
        assert!(p.line("# escape=x", &mut d).is_err());
    }

    #[test]
    fn unknown_directive_ends_directives() {
        let mut p = DirectiveParser::default();
        let mut d = Directives::default();
        assert_eq!(p.line("# foo=bar", &mut d), Ok(false));
        assert_eq!(p.line("# escape=`", &mut d), Ok(false));
        assert_eq!(d.escape, '\\');
    }
}
