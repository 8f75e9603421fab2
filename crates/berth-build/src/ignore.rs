//! `.dockerignore` and `COPY --exclude` patterns with the rules of moby's patternmatcher: `*` and `?`
//! within one path element, `**` across elements, `[…]` classes, `!` exceptions (the last matching
//! pattern wins), a pattern matching a directory matches everything under it, leading `/` and `./`
//! cleaned away. Matching is linear in the path times the pattern; nothing is compiled to a regex.

use std::fmt;

/// A bad pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: anything but `/`.
    Star,
    /// `?`: one character but `/`.
    One,
    /// `[…]`: `ranges` (inclusive), negated with `^`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**/` or `**` inside a pattern: empty, or anything ending in `/`.
    DirStar,
    /// `**` at the end (after something that made it a regexp): anything.
    AnyStar,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix(String),
    Suffix(String),
    Tokens(Vec<Tok>),
}

/// One cleaned pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exclusion {
            f.write_str("!")?;
        }
        f.write_str(&self.cleaned)
    }
}

/// Parses a `[…]` class starting after `[`; returns it and the index after `]`.
fn parse_class(chars: &[char], mut i: usize) -> Result<(Tok, usize), PatternError> {
    let bad = || PatternError("syntax error in pattern".into());
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Tok::Class { negated, ranges }, i + 1));
        }
        let esc = |i: &mut usize| -> Result<char, PatternError> {
            match chars.get(*i) {
                None | Some('-') | Some(']') => Err(bad()),
                Some('\\') => {
                    let c = *chars.get(*i + 1).ok_or_else(bad)?;
                    *i += 2;
                    Ok(c)
                }
                Some(&c) => {
                    *i += 1;
                    Ok(c)
                }
            }
        };
        let lo = esc(&mut i)?;
        let hi = if chars.get(i) == Some(&'-') {
            i += 1;
            esc(&mut i)?
        } else {
            lo
        };
        ranges.push((lo, hi));
    }
}

impl Pattern {
    fn compile(cleaned: String, exclusion: bool) -> Result<Pattern, PatternError> {
        let chars: Vec<char> = cleaned.chars().collect();
        let mut toks = Vec::new();
        let mut exact = true;
        let mut kind_prefix = false;
        let mut kind_suffix = false;
        let mut first = true;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        if exact && !kind_suffix {
                            kind_prefix = true;
                        } else {
                            toks.push(Tok::AnyStar);
                            exact = false;
                            kind_prefix = false;
                            kind_suffix = false;
                        }
                    } else {
                        toks.push(Tok::DirStar);
                        exact = false;
                    }
                    if first {
                        kind_suffix = true;
                        kind_prefix = false;
                    }
                }
                '*' => {
                    toks.push(Tok::Star);
                    (exact, kind_prefix, kind_suffix) = (false, false, false);
                }
                '?' => {
                    toks.push(Tok::One);
                    (exact, kind_prefix, kind_suffix) = (false, false, false);
                }
                '\\' => match chars.get(i) {
                    Some(&n) => {
                        toks.push(Tok::Lit(n));
                        i += 1;
                        (exact, kind_prefix, kind_suffix) = (false, false, false);
                    }
                    None => return Err(PatternError("syntax error in pattern".into())),
                },
                '[' => {
                    let (t, next) = parse_class(&chars, i)?;
                    toks.push(t);
                    i = next;
                    (exact, kind_prefix, kind_suffix) = (false, false, false);
                }
                ']' => {
                    toks.push(Tok::Lit(']'));
                    (exact, kind_prefix, kind_suffix) = (false, false, false);
                }
                c => toks.push(Tok::Lit(c)),
            }
            first = false;
        }
        let kind = if kind_suffix {
            Kind::Suffix(cleaned.chars().skip(2).collect())
        } else if kind_prefix {
            Kind::Prefix(cleaned[..cleaned.len() - 2].to_string())
        } else if exact {
            Kind::Exact
        } else {
            Kind::Tokens(toks)
        };
        Ok(Pattern {
            cleaned,
            exclusion,
            kind,
        })
    }

    /// Whether this pattern alone matches `path` (slash-separated, clean, relative).
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix(p) => path.starts_with(p.as_str()),
            Kind::Suffix(s) => {
                path.ends_with(s.as_str()) || (s.starts_with('/') && path == &s[1..])
            }
            Kind::Tokens(t) => match_tokens(t, path),
        }
    }

    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }
}

fn tok_step(t: &Tok, c: char) -> bool {
    match t {
        Tok::Lit(x) => *x == c,
        Tok::One => c != '/',
        Tok::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
        }
        _ => false,
    }
}

/// NFA simulation over token positions.
fn match_tokens(toks: &[Tok], path: &str) -> bool {
    let n = toks.len();
    // A DirStar at position s is in progress when `inside[s]`: it has consumed characters and must
    // end with '/'.
    let close = |set: &mut Vec<bool>| {
        for s in 0..n {
            if set[s] && matches!(toks[s], Tok::Star | Tok::DirStar | Tok::AnyStar) {
                set[s + 1] = true;
            }
        }
    };
    let mut cur = vec![false; n + 1];
    let mut inside = vec![false; n + 1];
    cur[0] = true;
    close(&mut cur);
    for c in path.chars() {
        let mut next = vec![false; n + 1];
        let mut next_inside = vec![false; n + 1];
        for s in 0..n {
            if cur[s] || (inside[s] && matches!(toks[s], Tok::DirStar)) {
                match &toks[s] {
                    Tok::Star if c != '/' => next[s] = true,
                    Tok::AnyStar => next[s] = true,
                    Tok::DirStar => {
                        next_inside[s] = true;
                        if c == '/' {
                            next[s + 1] = true;
                        }
                    }
                    t if cur[s] && tok_step(t, c) => next[s + 1] = true,
                    _ => {}
                }
            }
        }
        close(&mut next);
        cur = next;
        inside = next_inside;
        if !cur.iter().any(|b| *b) && !inside.iter().any(|b| *b) {
            return false;
        }
    }
    cur[n]
}

/// Go's `filepath.Match` (used for COPY wildcards): `*` and `?` never match `/`, `[…]` classes,
/// `\\` escapes; `**` is just two stars.
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, PatternError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::One),
            '\\' => match chars.get(i) {
                Some(&n) => {
                    toks.push(Tok::Lit(n));
                    i += 1;
                }
                None => return Err(PatternError("syntax error in pattern".into())),
            },
            '[' => {
                let (t, next) = parse_class(&chars, i)?;
                toks.push(t);
                i = next;
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(match_tokens(&toks, name))
}

/// Go's `filepath.Clean` for a pattern.
fn clean(p: &str) -> String {
    crate::plan::values::clean_path(p)
}

/// The patterns of one ignore file or `--exclude` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
}

/// Per-pattern results for a directory, reused for its children.
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

impl PatternMatcher {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<PatternMatcher, PatternError> {
        let mut out = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let p = clean(p);
            let (exclusion, body) = match p.strip_prefix('!') {
                Some("") => return Err(PatternError("illegal exclusion pattern: \"!\"".into())),
                Some(b) => (true, b.to_string()),
                None => (false, p),
            };
            out.push(Pattern::compile(body, exclusion)?);
        }
        Ok(PatternMatcher { patterns: out })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether `path` (or a parent directory of it) is matched, exceptions applied.
    pub fn matches(&self, path: &str) -> bool {
        let path = clean(path);
        if path == "." {
            return false;
        }
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut m = p.matches(&path);
            if !m {
                m = (1..=parents.len()).any(|i| p.matches(&parents[..i].join("/")));
            }
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// As `matches`, reusing the parent directory's results (for walking a tree top-down).
    pub fn matches_with_parent(&self, path: &str, parent: &MatchInfo) -> (bool, MatchInfo) {
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        let mut matched = false;
        for (i, p) in self.patterns.iter().enumerate() {
            let mut m = parent.parent_matched.get(i).copied().unwrap_or(false);
            if !m {
                if p.exclusion != matched {
                    continue;
                }
                m = p.matches(path);
                if !m && parent.parent_matched.is_empty() {
                    if let Some(idx) = path.rfind('/') {
                        let dirs: Vec<&str> = path[..idx].split('/').collect();
                        m = (1..=dirs.len()).any(|k| p.matches(&dirs[..k].join("/")));
                    }
                }
            }
            info.parent_matched[i] = m;
            if m {
                matched = !p.exclusion;
            }
        }
        (matched, info)
    }
}

/// Reads an ignore file: comments (`#` first) and blank lines skipped, each pattern trimmed and
/// cleaned, a leading `/` dropped (so `/a` and `a` mean the same), `!` kept.
pub fn read_ignore_file(content: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(content);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut pat = String::new();
        if !p.is_empty() {
            let c = clean(p);
            pat = if c.len() > 1 && c.starts_with('/') {
                c[1..].to_string()
            } else {
                c
            };
        }
        out.push(if invert { format!("!{pat}") } else { pat });
    }
    out
}

#[cfg(test)]
mod tests;
