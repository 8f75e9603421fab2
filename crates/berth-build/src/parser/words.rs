//! The word-level rules of a logical line: the instruction name, its `--flags`, quoted words (quotes
//! kept for later expansion), whitespace lists and the JSON exec form, each as BuildKit reads them.

/// BuildKit's `[\t\v\f\r ]+` separator.
pub(crate) fn is_sep(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits on runs of separators, like Go's `regexp.Split(s, n)` with that pattern (`n == 0`: all).
pub(crate) fn split_sep(s: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        if n != 0 && out.len() + 1 == n {
            out.push(rest);
            return out;
        }
        match rest.find(is_sep) {
            None => {
                out.push(rest);
                return out;
            }
            Some(i) => {
                out.push(&rest[..i]);
                rest = rest[i..].trim_start_matches(is_sep);
            }
        }
    }
}

/// The instruction name, its flags and the rest of the line.
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let parts = split_sep(line.trim(), 2);
    let cmd = parts[0].to_string();
    match parts.get(1) {
        Some(rest) => {
            let (args, flags) = extract_flags(rest, escape);
            (cmd, flags, args.trim().to_string())
        }
        None => (cmd, Vec::new(), String::new()),
    }
}

#[derive(PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Leading `--name[=value]` words (quotes removed, escapes applied); `--` ends them.
pub(crate) fn extract_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let at_end = i >= chars.len();
        let (byte, ch) = chars.get(i).copied().unwrap_or((line.len(), '\0'));
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            if ch != '-' || chars.get(i + 1).map(|c| c.1) != Some('-') {
                return (&line[byte..], words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (&line[byte..], words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                i += 1;
                continue;
            }
            let mut c = ch;
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                i += 1;
                c = chars[i].1;
            }
            word.push(c);
            i += 1;
            continue;
        }
        // Inside quotes.
        if ch == quote {
            phase = Phase::Word;
            i += 1;
            continue;
        }
        let mut c = ch;
        if ch == escape {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            c = chars[i].1;
        }
        word.push(c);
        i += 1;
    }
    ("", words)
}

/// Whitespace-separated words with quotes and escapes kept (expanded later), as BuildKit's
/// `parseWords`: an escaped character never splits, quotes group.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut buf = String::new();
    let mut i = 0;
    loop {
        let at_end = i >= chars.len();
        let mut ch = chars.get(i).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !buf.is_empty() {
                words.push(buf);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !buf.is_empty() {
                    words.push(std::mem::take(&mut buf));
                }
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                buf.push(ch);
                i += 1;
                ch = chars[i];
            }
            buf.push(ch);
            i += 1;
            continue;
        }
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            buf.push(ch);
            ch = chars[i];
        }
        buf.push(ch);
        i += 1;
    }
    words
}

/// The exec (JSON) form: `Ok(Some(words))` for a JSON array of strings, `Ok(None)` when the text is
/// not a JSON array (the shell form applies), `Err` for a JSON array holding something else.
pub(crate) fn parse_json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(
                "when using JSON array syntax, arrays must be comprised of strings only"
                    .to_string(),
            ),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Go's `strconv.Quote` (berth's one home for it is `berth_sys::go`).
pub use berth_sys::go::quote as go_quote;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes_and_escapes() {
        assert_eq!(parse_words("foo bar", '\\'), vec!["foo", "bar"]);
        assert_eq!(parse_words("foo\\ bar", '\\'), vec!["foo\\ bar"]);
        assert_eq!(
            parse_words("foo=\"bar baz\" x=''", '\\'),
            vec!["foo=\"bar baz\"", "x=''"]
        );
        assert_eq!(parse_words("foo\\", '\\'), vec!["foo"]);
        assert_eq!(parse_words("\"\"", '\\'), vec!["\"\""]);
    }

    #[test]
    fn flags_stop_at_the_first_plain_word_or_double_dash() {
        assert_eq!(
            extract_flags("--a=1 --b x y", '\\'),
            ("x y", vec!["--a=1".into(), "--b".into()])
        );
        assert_eq!(
            extract_flags("--a -- --b", '\\'),
            (" --b", vec!["--a".into()])
        );
        assert_eq!(
            extract_flags("--x=\"a b\" c", '\\'),
            ("c", vec!["--x=a b".into()])
        );
        assert_eq!(extract_flags("-x", '\\'), ("-x", vec![]));
    }

    #[test]
    fn json_form_detection() {
        assert_eq!(
            parse_json(" [\"a\", \"b\"]"),
            Ok(Some(vec!["a".into(), "b".into()]))
        );
        assert_eq!(parse_json("['a']"), Ok(None));
        assert_eq!(parse_json("[\"a\""), Ok(None));
        assert!(parse_json("[1]").is_err());
        assert_eq!(parse_json("echo"), Ok(None));
    }

    #[test]
    fn quoting_as_go() {
        assert_eq!(go_quote("a\"b\\\n\u{0}♥"), "\"a\\\"b\\\\\\n\\x00♥\"");
    }
}
