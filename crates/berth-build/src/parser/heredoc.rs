//! Heredoc words (`<<EOF`, `<<-EOF`, `3<<"EOF"`) and their bodies. A quoted delimiter (any part of
//! it) turns expansion of the body off; `<<-` strips leading tabs from the body and the terminator.

use crate::shell::{Lexer, NoEnv};

/// One heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter, quotes removed.
    pub name: String,
    /// The file descriptor before `<<` (0 when none).
    pub fd: u32,
    /// Whether variables in the body are expanded (no quote in the delimiter).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped.
    pub chomp: bool,
    /// The body, newlines included, terminator excluded.
    pub content: String,
}

/// Parses one word as a heredoc marker: `^(\d*)<<(-?)\s*([^<]*)$` with a one-word delimiter.
pub fn parse_heredoc(word: &str) -> Option<Heredoc> {
    let digits = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches([' ', '\t', '\n', '\x0c', '\r']);
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let fd = word[..digits].parse().unwrap_or(0);
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let words = lex.process_words(rest, &NoEnv).ok()?;
    if words.len() != 1 {
        return None;
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &NoEnv).ok()?;
    if raw.len() != 1 {
        return None;
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = quotes(&words[0]) == quotes(&raw[0]);
    Some(Heredoc {
        name: words[0].clone(),
        fd,
        expand,
        chomp,
        content: String::new(),
    })
}

/// The heredoc markers of a logical line, in order.
pub(crate) fn heredocs_in_line(line: &str) -> Vec<Heredoc> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let words = lex.process_words(line, &NoEnv).unwrap_or_default();
    words.iter().filter_map(|w| parse_heredoc(w)).collect()
}

/// Removes leading tabs from every line of a `<<-` body.
pub fn chomp_heredoc(content: &str) -> String {
    let mut out = String::with_capacity(content.len());
    for line in content.split_inclusive('\n') {
        out.push_str(line.trim_start_matches('\t'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        let h = parse_heredoc("<<EOF").unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.chomp, h.fd),
            ("EOF", true, false, 0)
        );
        let h = parse_heredoc("3<<-'EOF'").unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.chomp, h.fd),
            ("EOF", false, true, 3)
        );
        let h = parse_heredoc("<<E\"O\"F").unwrap();
        assert_eq!((h.name.as_str(), h.expand), ("EOF", false));
        assert!(parse_heredoc("<<").is_none());
        assert!(parse_heredoc("<<EOF<<X").is_none());
        assert!(parse_heredoc("x<<EOF").is_none());
    }

    #[test]
    fn several_markers_on_a_line() {
        let docs = heredocs_in_line("RUN cat <<A - <<\"B\" > /x");
        let names: Vec<_> = docs.iter().map(|h| (h.name.as_str(), h.expand)).collect();
        assert_eq!(names, vec![("A", true), ("B", false)]);
        assert!(heredocs_in_line("RUN echo '<<A").is_empty());
    }

    #[test]
    fn chomp_strips_leading_tabs_only() {
        assert_eq!(chomp_heredoc("\t\ta\n \tb\n\tc"), "a\n \tb\nc");
    }
}
