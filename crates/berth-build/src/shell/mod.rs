//! Variable expansion and word splitting with the rules of BuildKit's shell lexer: `$V`, `${V}`,
//! `${V:-x}`, `${V-x}`, `${V:+x}`, `${V+x}`, `${V:?msg}`, `${V?msg}`, `${V#p}`, `${V##p}`,
//! `${V%p}`, `${V%%p}`, `${V/p/r}`, `${V//p/r}`, single and double quotes and the escape character.
//! It never runs anything and its work is bounded: output size, nesting depth and pattern matching.

mod pattern;

use std::collections::{BTreeSet, HashMap};

pub(crate) use pattern::Budget;
use pattern::Pattern;

/// An expansion failure; the message reads as BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShellError {
    pub message: String,
}

impl ShellError {
    pub(crate) fn new(message: String) -> ShellError {
        ShellError { message }
    }
}

/// Where expansion looks variables up.
pub trait Env {
    fn get(&self, key: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

impl Env for [(String, String)] {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, key: &str) -> Option<&str> {
        Env::get(self.as_slice(), key)
    }
}

/// No variables at all.
pub struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
}

/// One expanded word and the variables it referred to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    pub result: String,
    /// Variables referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables referenced but unset.
    pub unmatched: BTreeSet<String>,
}

/// Default bound on one expanded word (1 MiB).
pub const DEFAULT_MAX_WORD: usize = 1 << 20;
/// Default bound on pattern-matching work for one word (NFA steps).
pub const DEFAULT_MAX_WORK: usize = 64 << 20;
/// How deeply `${…}` may nest.
const MAX_DEPTH: usize = 64;

/// The lexer's switches, as BuildKit's `Lex`.
#[derive(Debug, Clone)]
pub struct Lexer {
    pub escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset_env: bool,
    pub max_word: usize,
    pub max_work: usize,
}

impl Lexer {
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
            max_word: DEFAULT_MAX_WORD,
            max_work: DEFAULT_MAX_WORK,
        }
    }

    /// Expands `word` into one string (spaces kept), with the variables it used.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<Expansion, ShellError> {
        let mut w = Word::new(self, word, env);
        let (result, _) = w
            .process_stop_on(None, self.raw_escapes)
            .map_err(|e| wrap(word, e))?;
        Ok(Expansion {
            result,
            matched: w.matched,
            unmatched: w.unmatched,
        })
    }

    /// Expands `word` and splits it into words on unquoted whitespace (after expansion).
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        let mut w = Word::new(self, word, env);
        let (_, words) = w
            .process_stop_on(None, self.raw_escapes)
            .map_err(|e| wrap(word, e))?;
        Ok(words)
    }
}

fn wrap(word: &str, e: ShellError) -> ShellError {
    ShellError::new(format!(
        "failed to process {}: {}",
        crate::parser::go_quote(word),
        e.message
    ))
}

/// Accumulates words: whitespace from plain text and variable values splits, quoted text does not.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.buf.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

struct Word<'a> {
    lex: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    raw_escapes: bool,
    depth: usize,
    budget: Budget,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<'a> Word<'a> {
    fn new(lex: &'a Lexer, word: &str, env: &'a dyn Env) -> Word<'a> {
        Word {
            lex,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: lex.raw_escapes,
            depth: 0,
            budget: Budget {
                work_left: lex.max_work,
                max_len: lex.max_word,
            },
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let r = self.stop_on(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            let quotes = !self.lex.skip_process_quotes;
            match ch {
                '$' => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                    words.add_string(&v);
                }
                '<' => {
                    let v = self.process_possible_heredoc();
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                '\'' if quotes => {
                    let v = self.process_single_quote()?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                '"' if quotes => {
                    let v = self.process_double_quote()?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                _ => {
                    self.next();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // The escape character escapes the next one; at the end it vanishes.
                        let Some(c) = self.next() else { break };
                        words.add_raw_char(c);
                        result.push(c);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
            self.budget.check_len(result.len())?;
        }
        if let Some(stop) = stop {
            return Err(ShellError::new(format!(
                "unexpected end of statement while looking for matching {stop}"
            )));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result<String, ShellError> {
        let mut out = String::new();
        let q = self.next();
        if self.lex.raw_quotes {
            out.extend(q);
        }
        loop {
            match self.next() {
                None => {
                    return Err(ShellError::new(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    ))
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, ShellError> {
        let mut out = String::new();
        let q = self.next();
        if self.lex.raw_quotes {
            out.extend(q);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(ShellError::new(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    ))
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    out.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            // A trailing escape is dropped; the missing quote is reported next.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
            self.budget.check_len(out.len())?;
        }
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.peek().filter(|c| is_digit(*c)) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphabetic() || is_digit(ch) || ch == '_') {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn process_dollar(&mut self) -> Result<String, ShellError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err(ShellError::new("syntax error: missing '}'".into())),
            Some('{' | '}' | ':') => {
                return Err(ShellError::new("syntax error: bad substitution".into()))
            }
            _ => {}
        }
        if self.depth >= MAX_DEPTH {
            return Err(ShellError::new(format!(
                "substitutions nested more than {MAX_DEPTH} deep"
            )));
        }
        self.depth += 1;
        let r = self.process_braces();
        self.depth -= 1;
        r
    }

    fn process_braces(&mut self) -> Result<String, ShellError> {
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            return Err(ShellError::new("syntax error: missing '}'".into()));
        };
        let mut chs = ch.to_string();
        let mut null_is_unset = false;
        match ch {
            '}' => {
                return Ok(match self.get_env(&name) {
                    Some(v) => v,
                    None if self.lex.skip_unset_env => format!("${{{name}}}"),
                    None => String::new(),
                })
            }
            '/' => return self.process_replace(&name),
            ':' => {
                null_is_unset = true;
                // As BuildKit: whatever follows the colon is taken as the modifier.
                match self.next() {
                    Some(c) => {
                        ch = c;
                        chs.push(c);
                    }
                    None => return Err(ShellError::new("syntax error: missing '}'".into())),
                }
            }
            '+' | '-' | '?' | '#' | '%' => {}
            _ => {
                return Err(ShellError::new(format!(
                    "unsupported modifier ({chs}) in substitution"
                )))
            }
        }
        let raw = ch == '#' || ch == '%';
        if null_is_unset && raw {
            return Err(ShellError::new(format!(
                "unsupported modifier ({chs}) in substitution"
            )));
        }
        let word = match self.process_stop_on(Some('}'), raw) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => {
                return Err(ShellError::new("syntax error: missing '}'".into()))
            }
            Err(e) => return Err(e),
        };
        let value = self.get_env(&name);
        if self.lex.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        let empty = value
            .as_deref()
            .is_none_or(|v| null_is_unset && v.is_empty());
        match ch {
            '-' => Ok(if empty {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty { String::new() } else { word }),
            '?' => {
                let message = |default: &str| {
                    if word.is_empty() {
                        default.to_string()
                    } else {
                        word.clone()
                    }
                };
                match value {
                    None => Err(ShellError::new(format!(
                        "{name}: {}",
                        message("is not allowed to be unset")
                    ))),
                    Some(v) if null_is_unset && v.is_empty() => Err(ShellError::new(format!(
                        "{name}: {}",
                        message("is not allowed to be empty")
                    ))),
                    Some(v) => Ok(v),
                }
            }
            '#' | '%' => {
                let (longest, pat) = match word.strip_prefix(ch) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let p = Pattern::compile(pat)?;
                let v = value.unwrap_or_default();
                if ch == '#' {
                    p.trim_prefix(&v, longest, &mut self.budget)
                } else {
                    p.trim_suffix(&v, longest, &mut self.budget)
                }
            }
            _ => Err(ShellError::new(format!(
                "unsupported modifier ({chs}) in substitution"
            ))),
        }
    }

    fn process_replace(&mut self, name: &str) -> Result<String, ShellError> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pat = match self.process_stop_on(Some('/'), true) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => {
                return Err(ShellError::new("syntax error: missing '/' in ${}".into()))
            }
            Err(e) => return Err(e),
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => {
                return Err(ShellError::new("syntax error: missing '}'".into()))
            }
            Err(e) => return Err(e),
        };
        let value = self.get_env(name);
        if value.is_none() && self.lex.skip_unset_env {
            return Ok(format!("${{{name}/{pat}/{replacement}}}"));
        }
        let value = value.unwrap_or_default();
        let p = Pattern::compile(&pat)?;
        p.replace(&value, &replacement, all, &mut self.budget)
    }
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

#[cfg(test)]
mod tests;
