//! Docker's `--filter key=value` for image listings and the prune commands, parsed once into
//! typed filters: each command names the keys it knows (anything else is Docker's "Invalid
//! filter 'x'"), `until` takes Docker's times, labels match as Docker matches them, and
//! `reference` is Go's `path.Match`. Pure: nothing here reads the store.

use berth_sys::timestamp::{parse_timestamp, TimestampError};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("bad format of filter (expected name=value)")]
    Format,
    #[error("Invalid filter '{0}'")]
    Key(String),
    #[error("Invalid filter '{key}=[{value}]'")]
    Value { key: String, value: String },
    #[error(transparent)]
    Time(#[from] TimestampError),
    #[error("syntax error in pattern")]
    Pattern,
}

/// `label=KEY`, `label=KEY=VALUE` (and their `label!=` negations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMatch {
    pub key: String,
    pub value: Option<String>,
}

impl LabelMatch {
    fn parse(s: &str) -> LabelMatch {
        match s.split_once('=') {
            Some((k, v)) => LabelMatch {
                key: k.to_string(),
                value: Some(v.to_string()),
            },
            None => LabelMatch {
                key: s.to_string(),
                value: None,
            },
        }
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match (&self.value, labels.get(&self.key)) {
            (None, found) => found.is_some(),
            (Some(want), Some(have)) => want == have,
            (Some(_), None) => false,
        }
    }
}

/// Whether one `label=` value (`KEY` or `KEY=VALUE`) holds for `labels`: the rule every
/// listing's label filter shares (`ps`, `volume ls`, `network ls`, images, the prunes).
pub fn label_matches(filter: &str, labels: &BTreeMap<String, String>) -> bool {
    LabelMatch::parse(filter).matches(labels)
}

/// The `key=value` pairs as given, grouped by key, each key checked against what a command knows.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pairs: BTreeMap<String, Vec<String>>,
}

impl Filters {
    /// Parses `key=value` strings, refusing keys not in `known`.
    pub fn parse<S: AsRef<str>>(raw: &[S], known: &[&str]) -> Result<Filters, FilterError> {
        let mut pairs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in raw {
            let (k, v) = f.as_ref().split_once('=').ok_or(FilterError::Format)?;
            let k = k.trim().to_ascii_lowercase();
            if !known.contains(&k.as_str()) {
                return Err(FilterError::Key(k));
            }
            pairs.entry(k).or_default().push(v.trim().to_string());
        }
        Ok(Filters { pairs })
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn values(&self, key: &str) -> &[String] {
        self.pairs.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn contains(&self, key: &str) -> bool {
        self.pairs.contains_key(key)
    }

    /// A boolean filter (`dangling=true`): None when absent, Docker's error for other words.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, FilterError> {
        let mut out = None;
        for v in self.values(key) {
            let b = match v.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(FilterError::Value {
                        key: key.into(),
                        value: v.clone(),
                    })
                }
            };
            out = Some(b);
        }
        Ok(out)
    }

    /// The earliest `until=` time (seconds since the epoch) relative to `now`, when given.
    pub fn until(&self, now: i64) -> Result<Option<i64>, FilterError> {
        let mut out: Option<i64> = None;
        for v in self.values("until") {
            let t = parse_timestamp(v, now)?;
            out = Some(out.map_or(t, |o| o.min(t)));
        }
        Ok(out)
    }

    /// Whether `labels` pass every `label=` and fail some `label!=` (Docker's prune rule).
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        let all = self
            .values("label")
            .iter()
            .all(|l| LabelMatch::parse(l).matches(labels));
        let negated = self.values("label!");
        let excluded =
            !negated.is_empty() && negated.iter().all(|l| LabelMatch::parse(l).matches(labels));
        all && !excluded
    }
}

/// Go's `path.Match`: `*` any run of non-`/` characters, `?` one, `[…]` a class (with `^` or `!`
/// negation and ranges), `\` escaping. Go's algorithm: the pattern is cut into chunks at its
/// stars, and each chunk is matched at the leftmost place it fits, never backtracking into an
/// earlier one: at most the name's length times the pattern's, whatever the stars (a pattern of
/// forty `*b` against two hundred `b`s answers at once).
pub fn path_match(pattern: &str, name: &str) -> Result<bool, FilterError> {
    let pv: Vec<char> = pattern.chars().collect();
    let nv: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (&pv[..], &nv[..]);
    'pattern: while !p.is_empty() {
        let (star, chunk, rest) = scan_chunk(p);
        p = rest;
        if star && chunk.is_empty() {
            // A trailing star takes the rest of the name, unless it holds a `/`.
            return Ok(!n.contains(&'/'));
        }
        if let Some(t) = match_chunk(chunk, n)? {
            if t.is_empty() || !p.is_empty() {
                n = t;
                continue;
            }
        }
        if star {
            let mut i = 0;
            while i < n.len() && n[i] != '/' {
                if let Some(t) = match_chunk(chunk, &n[i + 1..])? {
                    // The last chunk must take the name to its end.
                    if p.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    n = t;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        // No match; Go still refuses a malformed rest of the pattern.
        while !p.is_empty() {
            let (_, chunk, rest) = scan_chunk(p);
            match_chunk(chunk, &[])?;
            p = rest;
        }
        return Ok(false);
    }
    Ok(n.is_empty())
}

/// Go's `scanChunk`: whether stars lead, the chunk up to the next star outside a class, and
/// what follows it.
fn scan_chunk(p: &[char]) -> (bool, &[char], &[char]) {
    let mut p = p;
    let mut star = false;
    while p.first() == Some(&'*') {
        p = &p[1..];
        star = true;
    }
    let (mut in_class, mut i) = (false, 0);
    while i < p.len() {
        match p[i] {
            '\\' if i + 1 < p.len() => i += 1,
            '[' => in_class = true,
            ']' => in_class = false,
            '*' if !in_class => break,
            _ => {}
        }
        i += 1;
    }
    (star, &p[..i], &p[i..])
}

/// Go's `matchChunk`: the rest of `s` after `chunk` matched its start, None if it did not. The
/// whole chunk is read either way, so a malformed one is an error even where nothing matched.
fn match_chunk<'a>(chunk: &[char], s: &'a [char]) -> Result<Option<&'a [char]>, FilterError> {
    let (mut c, mut s) = (chunk, s);
    let mut failed = false;
    while let Some(&first) = c.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        let here = if failed { None } else { s.first().copied() };
        let (hit, used) = match first {
            '[' => {
                let (hit, len) = class(&c[1..], here)?;
                (hit, 1 + len)
            }
            '?' => (here.is_some_and(|x| x != '/'), 1),
            '\\' => {
                let &e = c.get(1).ok_or(FilterError::Pattern)?;
                (here == Some(e), 2)
            }
            x => (here == Some(x), 1),
        };
        if !failed {
            if hit {
                s = &s[1..];
            } else {
                failed = true;
            }
        }
        c = &c[used..];
    }
    Ok((!failed).then_some(s))
}

/// A `[…]` class after its `[`: whether `ch` is in it, and how many pattern chars it spans
/// (through the `]`).
fn class(p: &[char], ch: Option<char>) -> Result<(bool, usize), FilterError> {
    let mut i = 0;
    let negated = matches!(p.first(), Some('^' | '!'));
    if negated {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let &c = p.get(i).ok_or(FilterError::Pattern)?;
        if c == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = escaped(p, &mut i)?;
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&x| x != ']') {
            i += 1;
            escaped(p, &mut i)?
        } else {
            lo
        };
        if lo > hi {
            return Err(FilterError::Pattern);
        }
        if ch.is_some_and(|x| lo <= x && x <= hi) {
            found = true;
        }
    }
    let hit = ch.is_some_and(|x| x != '/') && found != negated;
    Ok((hit, i))
}

fn escaped(p: &[char], i: &mut usize) -> Result<char, FilterError> {
    let mut c = *p.get(*i).ok_or(FilterError::Pattern)?;
    if c == '\\' {
        *i += 1;
        c = *p.get(*i).ok_or(FilterError::Pattern)?;
    }
    *i += 1;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_values_are_dockers_errors() {
        let e = Filters::parse(&["bogus=1"], &["label"]).unwrap_err();
        assert_eq!(e.to_string(), "Invalid filter 'bogus'");
        let f = Filters::parse(&["dangling=maybe"], &["dangling"]).unwrap();
        assert_eq!(
            f.boolean("dangling").unwrap_err().to_string(),
            "Invalid filter 'dangling=[maybe]'"
        );
        assert_eq!(
            Filters::parse(&["nokey"], &["label"])
                .unwrap_err()
                .to_string(),
            "bad format of filter (expected name=value)"
        );
    }

    #[test]
    fn labels_match_all_and_negations_exclude() {
        let labels: BTreeMap<String, String> =
            [("a".to_string(), "1".to_string())].into_iter().collect();
        let f = |v: &[&str]| Filters::parse(v, &["label", "label!"]).unwrap();
        assert!(f(&["label=a"]).labels_match(&labels));
        assert!(f(&["label=a=1"]).labels_match(&labels));
        assert!(!f(&["label=a=2"]).labels_match(&labels));
        assert!(!f(&["label=a", "label=b"]).labels_match(&labels));
        assert!(!f(&["label!=a"]).labels_match(&labels));
        assert!(f(&["label!=a=2"]).labels_match(&labels));
        assert!(f(&[]).labels_match(&labels));
    }

    #[test]
    fn path_match_follows_go() {
        let m = |p: &str, n: &str| path_match(p, n).unwrap();
        assert!(m("busybox", "busybox"));
        assert!(m("bb*", "bb:latest"));
        assert!(!m("*", "library/busybox"));
        assert!(m("*/*", "library/busybox"));
        assert!(m("bb:?atest", "bb:latest"));
        assert!(m("bb:[a-m]atest", "bb:latest"));
        assert!(!m("bb:[^l]atest", "bb:latest"));
        assert!(m("a\\*b", "a*b"));
        assert!(path_match("[", "a").is_err());
        assert!(
            path_match("x*[", "a").is_err(),
            "a malformed rest is refused"
        );
        assert!(m("*b*c", "abxbc") && !m("*b*c", "abxbcd") && m("a*", "a") && m("*", ""));
        assert!(m("a*/*c", "ab/xc") && !m("a*c", "ab/c"));
        let stars = format!("{}c", "*b".repeat(40));
        let started = std::time::Instant::now();
        assert!(!m(&stars, &"b".repeat(200)));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(path_match("a\\", "a").is_err());
    }
}
