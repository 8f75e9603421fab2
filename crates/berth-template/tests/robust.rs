//! Hostile and malformed templates end in errors, never in panics, stack overflows or
//! unbounded work: every prefix of every vector, random token soup, and templates built to
//! recurse or multiply work.

mod vectors;

use berth_template::{Format, Template};
use serde_json::{json, Value};

fn data() -> Value {
    json!({"ID": "abc", "Names": ["a", "b"], "Labels": {"k": "v"}, "N": 3, "F": 1.5, "Nil": null,
           "Mixed": [1, "x", null, {"y": [true]}], "Ports": [{"P": 80}]})
}

/// Parses and, if it parses, executes; a panic fails the test.
fn exercise(text: &str, data: &Value) {
    if let Ok(t) = Template::parse(text) {
        let _ = t.execute(data);
    }
    if let Ok(f) = Format::parse(text) {
        let _ = f.render_rows(
            std::slice::from_ref(data),
            &[("ID", "ID")].into_iter().collect(),
        );
    }
}

#[test]
fn every_prefix_of_every_vector_template_is_handled() {
    let d = data();
    let rows = vectors::go_exec::GO_EXEC
        .iter()
        .chain(vectors::berth::BERTH);
    for (_, tmpl, ..) in rows {
        for (i, _) in tmpl.char_indices() {
            exercise(&tmpl[..i], &d);
            exercise(&tmpl[i..], &d);
        }
    }
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

#[test]
fn random_token_soup_is_handled() {
    const TOKENS: &[&str] = &[
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        "\n",
        ".",
        ".ID",
        ".Names",
        ".Labels.k",
        ".Nil.x",
        "$",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "if",
        "else",
        "end",
        "range",
        "with",
        "break",
        "continue",
        "define",
        "template",
        "block",
        "\"t\"",
        "`r`",
        "'c'",
        "1",
        "-2",
        "0x1F",
        "1.5e3",
        "1i",
        "nil",
        "true",
        "printf",
        "\"%d %s %v %q %x %5.2f %-3s %[2]d %*d\"",
        "index",
        "slice",
        "len",
        "eq",
        "lt",
        "and",
        "or",
        "not",
        "json",
        "split",
        "join",
        "upper",
        "pad",
        "truncate",
        "call",
        "html",
        "js",
        "urlquery",
        "println",
        ",",
        "/*",
        "*/",
        "#",
        "\\",
        "é",
        "\t",
        "table ",
    ];
    let d = data();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let n = 1 + rng.next() % 24;
        let text: String = (0..n).map(|_| rng.pick(TOKENS)).collect();
        exercise(&text, &d);
    }
}

#[test]
fn random_bytes_are_handled() {
    let d = data();
    let mut rng = Rng(42);
    for _ in 0..5_000 {
        let n = rng.next() % 40;
        let alphabet = b"{}.$|()\"`'-:= \n\tabc019\\/*x";
        let bytes: Vec<u8> = (0..n)
            .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
            .collect();
        exercise(&String::from_utf8_lossy(&bytes), &d);
    }
}

#[test]
fn infinite_template_recursion_stops_at_the_depth_bound() {
    let t = Template::parse(r#"{{define "r"}}{{if 1}}{{with 1}}{{template "r" .}}{{end}}{{end}}{{end}}{{template "r" .}}"#).unwrap();
    let e = t.execute(&Value::Null).unwrap_err().to_string();
    assert!(e.contains("exceeded maximum template depth (1000)"), "{e}");
}

#[test]
fn exponential_work_stops_at_the_work_bound() {
    // Each level calls the next twice: 2^60 calls if nothing stopped it.
    let mut text = String::new();
    for i in 0..60 {
        text.push_str(&format!(
            r#"{{{{define "t{i}"}}}}{{{{template "t{n}"}}}}{{{{template "t{n}"}}}}{{{{end}}}}"#,
            n = i + 1
        ));
    }
    text.push_str(r#"{{define "t60"}}x{{end}}{{template "t0"}}"#);
    let started = std::time::Instant::now();
    let e = Template::parse(&text)
        .unwrap()
        .execute(&Value::Null)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exceeded maximum template work"), "{e}");
    assert!(
        started.elapsed().as_secs() < 120,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn many_tabs_in_a_table_do_not_recurse_per_column() {
    let f = Format::parse(r"table {{range .}}{{.}}\t{{end}}").unwrap();
    let row = Value::Array((0..20_000).map(|i| json!(i)).collect());
    let out = f.render_rows(&[row], &Default::default()).unwrap();
    assert!(out.lines().count() == 2 && out.len() > 100_000);
}
