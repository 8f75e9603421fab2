//! Go's lexer vectors (lex_test.go): the items each input scans to, and their positions.

use berth_template::testing::{lex, lex_pos};

/// Items as (kind, value); kinds are berth's names for Go's item types.
fn items(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .collect()
}

/// A named input and the items it must scan to.
type LexCase = (&'static str, String, Vec<(&'static str, &'static str)>);
/// A named input and its items with offsets and lines.
type PosCase = (
    &'static str,
    &'static str,
    Vec<(&'static str, usize, &'static str, usize)>,
);

const L: (&str, &str) = ("LeftDelim", "{{");
const R: (&str, &str) = ("RightDelim", "}}");
const SP: (&str, &str) = ("Space", " ");
const EOF: (&str, &str) = ("Eof", "");

#[test]
fn go_lex_vectors_give_gos_items() {
    let raw = "`abc\\n\\t\\\" `";
    let raw_nl = "`now is{{\n}}the time`";
    let cases: Vec<LexCase> = vec![
        ("empty", "".into(), vec![EOF]),
        ("spaces", " \t\n".into(), vec![("Text", " \t\n"), EOF]),
        (
            "text",
            "now is the time".into(),
            vec![("Text", "now is the time"), EOF],
        ),
        (
            "text with comment",
            "hello-{{/* this is a comment */}}-world".into(),
            vec![
                ("Text", "hello-"),
                ("Comment", "/* this is a comment */"),
                ("Text", "-world"),
                EOF,
            ],
        ),
        (
            "punctuation",
            "{{,@% }}".into(),
            vec![L, ("Char", ","), ("Char", "@"), ("Char", "%"), SP, R, EOF],
        ),
        (
            "parens",
            "{{((3))}}".into(),
            vec![
                L,
                ("LeftParen", "("),
                ("LeftParen", "("),
                ("Number", "3"),
                ("RightParen", ")"),
                ("RightParen", ")"),
                R,
                EOF,
            ],
        ),
        ("empty action", "{{}}".into(), vec![L, R, EOF]),
        (
            "for",
            "{{for}}".into(),
            vec![L, ("Identifier", "for"), R, EOF],
        ),
        (
            "block",
            "{{block \"foo\" .}}".into(),
            vec![
                L,
                ("Block", "block"),
                SP,
                ("String", "\"foo\""),
                SP,
                ("Dot", "."),
                R,
                EOF,
            ],
        ),
        (
            "quote",
            "{{\"abc \\n\\t\\\" \"}}".into(),
            vec![L, ("String", "\"abc \\n\\t\\\" \""), R, EOF],
        ),
        (
            "raw quote",
            format!("{{{{{raw}}}}}"),
            vec![L, ("RawString", raw), R, EOF],
        ),
        (
            "raw quote with newline",
            format!("{{{{{raw_nl}}}}}"),
            vec![L, ("RawString", raw_nl), R, EOF],
        ),
        (
            "numbers",
            "{{1 02 0x14 0X14 -7.2i 1e3 1E3 +1.2e-4 4.2i 1+2i 1_2 0x1.e_fp4 0X1.E_FP4}}".into(),
            vec![
                L,
                ("Number", "1"),
                SP,
                ("Number", "02"),
                SP,
                ("Number", "0x14"),
                SP,
                ("Number", "0X14"),
                SP,
                ("Number", "-7.2i"),
                SP,
                ("Number", "1e3"),
                SP,
                ("Number", "1E3"),
                SP,
                ("Number", "+1.2e-4"),
                SP,
                ("Number", "4.2i"),
                SP,
                ("Complex", "1+2i"),
                SP,
                ("Number", "1_2"),
                SP,
                ("Number", "0x1.e_fp4"),
                SP,
                ("Number", "0X1.E_FP4"),
                R,
                EOF,
            ],
        ),
        (
            "characters",
            "{{'a' '\\n' '\\'' '\\\\' '\\u00FF' '\\xFF' '本'}}".into(),
            vec![
                L,
                ("CharConstant", "'a'"),
                SP,
                ("CharConstant", "'\\n'"),
                SP,
                ("CharConstant", "'\\''"),
                SP,
                ("CharConstant", "'\\\\'"),
                SP,
                ("CharConstant", "'\\u00FF'"),
                SP,
                ("CharConstant", "'\\xFF'"),
                SP,
                ("CharConstant", "'本'"),
                R,
                EOF,
            ],
        ),
        (
            "bools",
            "{{true false}}".into(),
            vec![L, ("Bool", "true"), SP, ("Bool", "false"), R, EOF],
        ),
        ("dot", "{{.}}".into(), vec![L, ("Dot", "."), R, EOF]),
        ("nil", "{{nil}}".into(), vec![L, ("Nil", "nil"), R, EOF]),
        (
            "dots",
            "{{.x . .2 .x.y.z}}".into(),
            vec![
                L,
                ("Field", ".x"),
                SP,
                ("Dot", "."),
                SP,
                ("Number", ".2"),
                SP,
                ("Field", ".x"),
                ("Field", ".y"),
                ("Field", ".z"),
                R,
                EOF,
            ],
        ),
        (
            "keywords",
            "{{range if else end with}}".into(),
            vec![
                L,
                ("Range", "range"),
                SP,
                ("If", "if"),
                SP,
                ("Else", "else"),
                SP,
                ("End", "end"),
                SP,
                ("With", "with"),
                R,
                EOF,
            ],
        ),
        (
            "variables",
            "{{$c := printf $ $hello $23 $ $var.Field .Method}}".into(),
            vec![
                L,
                ("Variable", "$c"),
                SP,
                ("Declare", ":="),
                SP,
                ("Identifier", "printf"),
                SP,
                ("Variable", "$"),
                SP,
                ("Variable", "$hello"),
                SP,
                ("Variable", "$23"),
                SP,
                ("Variable", "$"),
                SP,
                ("Variable", "$var"),
                ("Field", ".Field"),
                SP,
                ("Field", ".Method"),
                R,
                EOF,
            ],
        ),
        (
            "variable invocation",
            "{{$x 23}}".into(),
            vec![L, ("Variable", "$x"), SP, ("Number", "23"), R, EOF],
        ),
        (
            "pipeline",
            "intro {{echo hi 1.2 |noargs|args 1 \"hi\"}} outro".into(),
            vec![
                ("Text", "intro "),
                L,
                ("Identifier", "echo"),
                SP,
                ("Identifier", "hi"),
                SP,
                ("Number", "1.2"),
                SP,
                ("Pipe", "|"),
                ("Identifier", "noargs"),
                ("Pipe", "|"),
                ("Identifier", "args"),
                SP,
                ("Number", "1"),
                SP,
                ("String", "\"hi\""),
                R,
                ("Text", " outro"),
                EOF,
            ],
        ),
        (
            "declaration",
            "{{$v := 3}}".into(),
            vec![
                L,
                ("Variable", "$v"),
                SP,
                ("Declare", ":="),
                SP,
                ("Number", "3"),
                R,
                EOF,
            ],
        ),
        (
            "2 declarations",
            "{{$v , $w := 3}}".into(),
            vec![
                L,
                ("Variable", "$v"),
                SP,
                ("Char", ","),
                SP,
                ("Variable", "$w"),
                SP,
                ("Declare", ":="),
                SP,
                ("Number", "3"),
                R,
                EOF,
            ],
        ),
        (
            "field of parenthesized expression",
            "{{(.X).Y}}".into(),
            vec![
                L,
                ("LeftParen", "("),
                ("Field", ".X"),
                ("RightParen", ")"),
                ("Field", ".Y"),
                R,
                EOF,
            ],
        ),
        (
            "trimming spaces before and after",
            "hello- {{- 3 -}} -world".into(),
            vec![
                ("Text", "hello-"),
                L,
                ("Number", "3"),
                R,
                ("Text", "-world"),
                EOF,
            ],
        ),
        (
            "trimming spaces before and after comment",
            "hello- {{- /* hello */ -}} -world".into(),
            vec![
                ("Text", "hello-"),
                ("Comment", "/* hello */"),
                ("Text", "-world"),
                EOF,
            ],
        ),
        (
            "badchar",
            "#{{\x01}}".into(),
            vec![
                ("Text", "#"),
                L,
                ("Error", "unrecognized character in action: U+0001"),
            ],
        ),
        (
            "unclosed action",
            "{{".into(),
            vec![L, ("Error", "unclosed action")],
        ),
        (
            "EOF in action",
            "{{range".into(),
            vec![L, ("Range", "range"), ("Error", "unclosed action")],
        ),
        (
            "unclosed quote",
            "{{\"\n\"}}".into(),
            vec![L, ("Error", "unterminated quoted string")],
        ),
        (
            "unclosed raw quote",
            "{{`xx}}".into(),
            vec![L, ("Error", "unterminated raw quoted string")],
        ),
        (
            "unclosed char constant",
            "{{'\n}}".into(),
            vec![L, ("Error", "unterminated character constant")],
        ),
        (
            "bad number",
            "{{3k}}".into(),
            vec![L, ("Error", "bad number syntax: \"3k\"")],
        ),
        (
            "unclosed paren",
            "{{(3}}".into(),
            vec![
                L,
                ("LeftParen", "("),
                ("Number", "3"),
                ("Error", "unclosed left paren"),
            ],
        ),
        (
            "extra right paren",
            "{{3)}}".into(),
            vec![L, ("Number", "3"), ("Error", "unexpected right paren")],
        ),
        (
            "long pipeline deadlock",
            "{{|||||}}".into(),
            vec![
                L,
                ("Pipe", "|"),
                ("Pipe", "|"),
                ("Pipe", "|"),
                ("Pipe", "|"),
                ("Pipe", "|"),
                R,
                EOF,
            ],
        ),
        (
            "text with bad comment",
            "hello-{{/*/}}-world".into(),
            vec![("Text", "hello-"), ("Error", "unclosed comment")],
        ),
        (
            "text with comment close separated from delim",
            "hello-{{/* */ }}-world".into(),
            vec![
                ("Text", "hello-"),
                ("Error", "comment ends before closing delimiter"),
            ],
        ),
        (
            "unmatched right delimiter",
            "hello-{.}}-world".into(),
            vec![("Text", "hello-{.}}-world"), EOF],
        ),
    ];
    let mut failures = Vec::new();
    for (name, input, want) in &cases {
        let got = lex(input);
        if got != items(want) {
            failures.push(format!(
                "{name}: {input:?}\n    got  {got:?}\n    want {want:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn go_lex_positions_and_lines() {
    let cases: Vec<PosCase> = vec![
        ("empty", "", vec![("Eof", 0, "", 1)]),
        (
            "punctuation",
            "{{,@%#}}",
            vec![
                ("LeftDelim", 0, "{{", 1),
                ("Char", 2, ",", 1),
                ("Char", 3, "@", 1),
                ("Char", 4, "%", 1),
                ("Char", 5, "#", 1),
                ("RightDelim", 6, "}}", 1),
                ("Eof", 8, "", 1),
            ],
        ),
        (
            "sample",
            "0123{{hello}}xyz",
            vec![
                ("Text", 0, "0123", 1),
                ("LeftDelim", 4, "{{", 1),
                ("Identifier", 6, "hello", 1),
                ("RightDelim", 11, "}}", 1),
                ("Text", 13, "xyz", 1),
                ("Eof", 16, "", 1),
            ],
        ),
        (
            "trimafter",
            "{{x -}}\n{{y}}",
            vec![
                ("LeftDelim", 0, "{{", 1),
                ("Identifier", 2, "x", 1),
                ("RightDelim", 5, "}}", 1),
                ("LeftDelim", 8, "{{", 2),
                ("Identifier", 10, "y", 2),
                ("RightDelim", 11, "}}", 2),
                ("Eof", 13, "", 2),
            ],
        ),
        (
            "trimbefore",
            "{{x}}\n{{- y}}",
            vec![
                ("LeftDelim", 0, "{{", 1),
                ("Identifier", 2, "x", 1),
                ("RightDelim", 3, "}}", 1),
                ("LeftDelim", 6, "{{", 2),
                ("Identifier", 10, "y", 2),
                ("RightDelim", 11, "}}", 2),
                ("Eof", 13, "", 2),
            ],
        ),
        (
            "longcomment",
            "{{/*\n*/}}\n{{undefinedFunction \"test\"}}",
            vec![
                ("Comment", 2, "/*\n*/", 1),
                ("Text", 9, "\n", 2),
                ("LeftDelim", 10, "{{", 3),
                ("Identifier", 12, "undefinedFunction", 3),
                ("Space", 29, " ", 3),
                ("String", 30, "\"test\"", 3),
                ("RightDelim", 36, "}}", 3),
                ("Eof", 38, "", 3),
            ],
        ),
    ];
    for (name, input, want) in cases {
        let want: Vec<(String, usize, String, usize)> = want
            .into_iter()
            .map(|(k, p, v, l)| (k.to_string(), p, v.to_string(), l))
            .collect();
        assert_eq!(lex_pos(input), want, "{name}");
    }
}
