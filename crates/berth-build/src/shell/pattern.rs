//! The shell patterns of `${V#p}`, `${V%p}` and `${V/p/r}`: `*` and `?` wildcards (neither crosses
//! a newline, as in BuildKit), `\*`, `\?` and `\\` for the literal characters, no bracket
//! expressions. Matching is an NFA simulation over the pattern's positions: linear in the value
//! times the pattern, charged to the caller's work budget, never backtracking.

use super::ShellError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `?`: any one character but a newline.
    Any,
    /// `*`: any run of characters without a newline.
    Star,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compiles a pattern as written inside `${…}` (escapes still raw). `\}` and `\/` stand for
    /// the plain characters; any other escape but `\*`, `\?` and `\\` is an error.
    pub(crate) fn compile(src: &str) -> Result<Pattern, ShellError> {
        let chars: Vec<char> = src.chars().collect();
        let mut tokens = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::Any),
                '\\' => match chars.get(i) {
                    Some('}') | Some('/') => {}
                    Some(&n @ ('*' | '?' | '\\')) => {
                        tokens.push(Token::Lit(n));
                        i += 1;
                    }
                    Some(&n) => {
                        return Err(ShellError::new(format!(
                            "invalid pattern ({src}) in substitution: invalid escape '\\{n}'"
                        )))
                    }
                    None => {
                        return Err(ShellError::new(format!(
                            "invalid pattern ({src}) in substitution: invalid escape at end"
                        )))
                    }
                },
                c => tokens.push(Token::Lit(c)),
            }
        }
        Ok(Pattern { tokens })
    }

    fn reversed(&self) -> Pattern {
        let mut tokens = self.tokens.clone();
        tokens.reverse();
        Pattern { tokens }
    }

    /// Adds state `s` and every state reachable from it without input (a `*` may match nothing).
    fn close(&self, set: &mut [bool], mut s: usize) {
        loop {
            if set[s] {
                return;
            }
            set[s] = true;
            if s < self.tokens.len() && self.tokens[s] == Token::Star {
                s += 1;
            } else {
                return;
            }
        }
    }

    fn step(&self, from: &[bool], c: char, to: &mut [bool]) -> bool {
        to.iter_mut().for_each(|b| *b = false);
        let mut any = false;
        for (s, _) in from.iter().enumerate().filter(|(_, on)| **on) {
            let Some(tok) = self.tokens.get(s) else {
                continue;
            };
            let next = match *tok {
                Token::Lit(x) if x == c => Some(s + 1),
                Token::Any if c != '\n' => Some(s + 1),
                Token::Star if c != '\n' => Some(s),
                _ => None,
            };
            if let Some(n) = next {
                self.close(to, n);
                any = true;
            }
        }
        any
    }

    /// Lengths (in chars) of the prefixes of `value` the whole pattern matches: shortest or longest.
    fn prefix_len(
        &self,
        value: &[char],
        longest: bool,
        budget: &mut Budget,
    ) -> Result<Option<usize>, ShellError> {
        let n = self.tokens.len() + 1;
        let mut cur = vec![false; n];
        let mut next = vec![false; n];
        self.close(&mut cur, 0);
        let mut best = None;
        for i in 0..=value.len() {
            if cur[n - 1] {
                best = Some(i);
                if !longest {
                    return Ok(best);
                }
            }
            if i == value.len() {
                break;
            }
            budget.charge(n)?;
            if !self.step(&cur, value[i], &mut next) {
                break;
            }
            std::mem::swap(&mut cur, &mut next);
        }
        Ok(best)
    }

    /// `${V#p}` / `${V##p}`: `value` without its shortest (longest) matching prefix.
    pub(crate) fn trim_prefix(
        &self,
        value: &str,
        longest: bool,
        budget: &mut Budget,
    ) -> Result<String, ShellError> {
        let chars: Vec<char> = value.chars().collect();
        Ok(match self.prefix_len(&chars, longest, budget)? {
            Some(k) => chars[k..].iter().collect(),
            None => value.to_string(),
        })
    }

    /// `${V%p}` / `${V%%p}`: `value` without its shortest (longest) matching suffix.
    pub(crate) fn trim_suffix(
        &self,
        value: &str,
        longest: bool,
        budget: &mut Budget,
    ) -> Result<String, ShellError> {
        let mut chars: Vec<char> = value.chars().collect();
        chars.reverse();
        let k = self.reversed().prefix_len(&chars, longest, budget)?;
        chars.reverse();
        Ok(match k {
            Some(k) => chars[..chars.len() - k].iter().collect(),
            None => value.to_string(),
        })
    }

    /// The leftmost match at or after `from`, longest at that start: `(start, end)` in chars.
    fn find(
        &self,
        value: &[char],
        from: usize,
        budget: &mut Budget,
    ) -> Result<Option<(usize, usize)>, ShellError> {
        let n = self.tokens.len() + 1;
        // For each state, the earliest start of a thread in it (a later start in the same state
        // can only produce the same ends, further right).
        let mut cur: Vec<Option<usize>> = vec![None; n];
        let mut best: Option<(usize, usize)> = None;
        let mut p = from;
        loop {
            if best.is_none() {
                let mut set = vec![false; n];
                self.close(&mut set, 0);
                for (s, on) in set.iter().enumerate() {
                    if *on && cur[s].is_none_or(|st| st > p) {
                        cur[s] = Some(p);
                    }
                }
            }
            if let Some(st) = cur[n - 1] {
                match best {
                    Some((bs, _)) if bs < st => {}
                    _ => best = Some((st, p)),
                }
            }
            if let Some((bs, _)) = best {
                // Threads that started after the match found cannot win.
                for slot in cur.iter_mut() {
                    if slot.is_some_and(|st| st > bs) {
                        *slot = None;
                    }
                }
            }
            if p == value.len() || (best.is_some() && cur.iter().all(Option::is_none)) {
                return Ok(best);
            }
            budget.charge(n)?;
            let c = value[p];
            let mut next: Vec<Option<usize>> = vec![None; n];
            for (s, slot) in cur.iter().enumerate() {
                let Some(st) = *slot else { continue };
                let Some(tok) = self.tokens.get(s) else {
                    continue;
                };
                let to = match *tok {
                    Token::Lit(x) if x == c => Some(s + 1),
                    Token::Any if c != '\n' => Some(s + 1),
                    Token::Star if c != '\n' => Some(s),
                    _ => None,
                };
                if let Some(t) = to {
                    let mut set = vec![false; n];
                    self.close(&mut set, t);
                    for (k, on) in set.iter().enumerate() {
                        if *on && next[k].is_none_or(|o| o > st) {
                            next[k] = Some(st);
                        }
                    }
                }
            }
            cur = next;
            p += 1;
        }
    }

    /// `${V/p/r}` (first match) and `${V//p/r}` (every match; an empty match right after a match
    /// is skipped, as Go's regexp does).
    pub(crate) fn replace(
        &self,
        value: &str,
        replacement: &str,
        all: bool,
        budget: &mut Budget,
    ) -> Result<String, ShellError> {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut pos = 0;
        let mut last_end: Option<usize> = None;
        while let Some((s, e)) = self.find(&chars, pos, budget)? {
            if s == e && last_end == Some(s) {
                // An empty match abutting the previous match: skip one character.
                match chars.get(s) {
                    Some(c) => out.push(*c),
                    None => break,
                }
                pos = s + 1;
                continue;
            }
            out.extend(&chars[pos..s]);
            out.push_str(replacement);
            budget.check_len(out.len())?;
            last_end = Some(e);
            pos = e;
            if s == e {
                match chars.get(s) {
                    Some(c) => out.push(*c),
                    None => {
                        pos = chars.len();
                        break;
                    }
                }
                pos = s + 1;
            }
            if !all || pos > chars.len() {
                break;
            }
        }
        if pos < chars.len() {
            out.extend(&chars[pos..]);
        }
        budget.check_len(out.len())?;
        Ok(out)
    }
}

/// Work and size bounds for one expansion.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pub(crate) work_left: usize,
    pub(crate) max_len: usize,
}

impl Budget {
    pub(crate) fn charge(&mut self, units: usize) -> Result<(), ShellError> {
        match self.work_left.checked_sub(units) {
            Some(left) => {
                self.work_left = left;
                Ok(())
            }
            None => Err(ShellError::new(
                "expansion is too costly (pattern matching limit reached)".into(),
            )),
        }
    }

    pub(crate) fn check_len(&self, len: usize) -> Result<(), ShellError> {
        if len > self.max_len {
            return Err(ShellError::new(format!(
                "expansion result is larger than {} bytes",
                self.max_len
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        Budget {
            work_left: 1 << 24,
            max_len: 1 << 20,
        }
    }

    #[test]
    fn shortest_and_longest_prefix_and_suffix() {
        let p = Pattern::compile("*x").unwrap();
        assert_eq!(p.trim_prefix("axbxc", false, &mut budget()).unwrap(), "bxc");
        assert_eq!(p.trim_prefix("axbxc", true, &mut budget()).unwrap(), "c");
        let p = Pattern::compile("x*").unwrap();
        assert_eq!(p.trim_suffix("axbxc", false, &mut budget()).unwrap(), "axb");
        assert_eq!(p.trim_suffix("axbxc", true, &mut budget()).unwrap(), "a");
    }

    #[test]
    fn replace_first_and_all_with_empty_pattern() {
        let p = Pattern::compile("").unwrap();
        assert_eq!(p.replace("xy", "w", false, &mut budget()).unwrap(), "wxy");
        assert_eq!(p.replace("xy", "", true, &mut budget()).unwrap(), "xy");
        let p = Pattern::compile("a").unwrap();
        assert_eq!(
            p.replace("banana", "o", true, &mut budget()).unwrap(),
            "bonono"
        );
    }

    #[test]
    fn bad_escapes_are_errors() {
        assert!(Pattern::compile("\\").is_err());
        assert!(Pattern::compile("\\x").is_err());
        assert!(Pattern::compile("\\\\\\").is_err());
        assert!(Pattern::compile("\\*\\?\\\\").is_ok());
    }

    #[test]
    fn work_is_bounded() {
        let p = Pattern::compile(&"*a".repeat(200)).unwrap();
        let value = "a".repeat(100_000);
        let mut b = Budget {
            work_left: 1_000_000,
            max_len: 1 << 20,
        };
        assert!(p.trim_prefix(&value, true, &mut b).is_err());
    }
}
