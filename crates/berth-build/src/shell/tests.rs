use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// (input, env, expected result or None for an error, matched, unmatched): BuildKit's
/// `TestProcessWithMatches` vectors.
#[allow(clippy::type_complexity)]
const MATCH_CASES: &[(&str, &[(&str, &str)], Option<&str>, &[&str], &[&str])] = &[
    ("x", &[("DUMMY", "dummy")], Some("x"), &[], &[]),
    (
        "x ${UNUSED}",
        &[("DUMMY", "dummy")],
        Some("x "),
        &[],
        &["UNUSED"],
    ),
    ("x ${FOO}", &[("FOO", "y")], Some("x y"), &["FOO"], &[]),
    (
        "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
        &[("FOO", "xxx"), ("BAR", "")],
        Some("xxx  ccc"),
        &["FOO", "BAR"],
        &["BAZ"],
    ),
    (
        "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
        &[("FOO", "xxx"), ("BAR", "")],
        Some("xxx bbb ccc"),
        &["FOO", "BAR"],
        &["BAZ"],
    ),
    (
        "${FOO:-}",
        &[("FOO", "xxx"), ("BAR", "")],
        Some("xxx"),
        &["FOO"],
        &[],
    ),
    ("${FOO:-}", &[], Some(""), &[], &["FOO"]),
    (
        "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
        &[("FOO", "xxx"), ("BAR", "")],
        Some("aaa bbb "),
        &["FOO", "BAR"],
        &["BAZ"],
    ),
    (
        "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
        &[("FOO", "xxx"), ("BAR", "")],
        Some("aaa  "),
        &["FOO", "BAR"],
        &["BAZ"],
    ),
    (
        "${FOO?aaa}",
        &[("FOO", "xxx"), ("BAR", "")],
        Some("xxx"),
        &["FOO"],
        &[],
    ),
    (
        "${BAR?bbb}",
        &[("FOO", "xxx"), ("BAR", "")],
        Some(""),
        &["BAR"],
        &[],
    ),
    ("${BAZ?ccc}", &[("FOO", "xxx"), ("BAR", "")], None, &[], &[]),
    (
        "${FOO:?aaa}",
        &[("FOO", "xxx"), ("BAR", "")],
        Some("xxx"),
        &["FOO"],
        &[],
    ),
    (
        "${BAR:?bbb}",
        &[("FOO", "xxx"), ("BAR", "")],
        None,
        &[],
        &[],
    ),
    (
        "${BAZ:?ccc}",
        &[("FOO", "xxx"), ("BAR", "")],
        None,
        &[],
        &[],
    ),
    ("${BAZ:?}", &[("FOO", "xxx"), ("BAR", "")], None, &[], &[]),
    ("${FOO=aaa}", &[("FOO", "xxx"), ("BAR", "")], None, &[], &[]),
    (
        "${FOO=:aaa}",
        &[("FOO", "xxx"), ("BAR", "")],
        None,
        &[],
        &[],
    ),
    ("${FOO=}", &[], None, &[], &[]),
    (
        "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
        &[("FOO", "()[]{}^$.*?|\\x")],
        Some("x"),
        &["FOO"],
        &[],
    ),
    (
        "${FOO%%\\**}",
        &[("FOO", "xx**")],
        Some("xx"),
        &["FOO"],
        &[],
    ),
    ("${FOO#*x*y}", &[("FOO", "xxyy")], Some("y"), &["FOO"], &[]),
    ("${FOO#*}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    (
        "${FOO#$BAR}",
        &[("FOO", "xxyy"), ("BAR", "x")],
        Some("xyy"),
        &["FOO", "BAR"],
        &[],
    ),
    (
        "${FOO#$BAR}",
        &[("FOO", "xxyy"), ("BAR", "")],
        Some("xxyy"),
        &["FOO", "BAR"],
        &[],
    ),
    ("${FOO#}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    ("${FOO##*x}", &[("FOO", "xxyy")], Some("yy"), &["FOO"], &[]),
    ("${FOO##}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    ("${FOO#?\\?}", &[("FOO", "???y")], Some("?y"), &["FOO"], &[]),
    (
        "${ABC:-.}${FOO%x}${ABC:-.}",
        &[("FOO", "xxyy")],
        Some(".xxyy."),
        &["FOO"],
        &["ABC"],
    ),
    (
        "${FOO%%\\**\\*}",
        &[("FOO", "a***yy*")],
        Some("a"),
        &["FOO"],
        &[],
    ),
    ("${FOO%}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    (
        "${FOO%%$BAR}",
        &[("FOO", "xxyy"), ("BAR", "")],
        Some("xxyy"),
        &["FOO", "BAR"],
        &[],
    ),
    ("${FOO:#}", &[], None, &[], &[]),
    ("${FOO:##}", &[], None, &[], &[]),
    ("${FOO:%}", &[], None, &[], &[]),
    ("${FOO:%%}", &[], None, &[], &[]),
    (
        "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
        &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
        Some("/foo.*/*.txt - /foo..*.txt"),
        &["FOO", "NEEDLE"],
        &[],
    ),
    (
        "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
        &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
        Some("/tmp/bar.txt - /bar.txt"),
        &["FOO", "NEEDLE"],
        &[],
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
        &[
            ("FOO", "/a/foo/b/c.txt"),
            ("NEEDLE", "/?/"),
            ("REPLACEMENT", "/"),
        ],
        Some("/foo/b/c.txt - /foo/c.txt"),
        &["FOO", "NEEDLE", "REPLACEMENT"],
        &[],
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT}",
        &[
            ("FOO", "http://google.de"),
            ("NEEDLE", "http://"),
            ("REPLACEMENT", "https://"),
        ],
        Some("https://google.de"),
        &["FOO", "NEEDLE", "REPLACEMENT"],
        &[],
    ),
    (
        "${FOO//\\//\\/}",
        &[("FOO", "/tmp/foo.txt")],
        Some("\\/tmp\\/foo.txt"),
        &["FOO"],
        &[],
    ),
    (
        "${FOO/$BAR/ww}",
        &[("FOO", "xxyy"), ("BAR", "")],
        Some("wwxxyy"),
        &["FOO", "BAR"],
        &[],
    ),
    ("${FOO//ww}", &[("FOO", "xxyy")], None, &[], &[]),
    ("${FOO//}", &[("FOO", "xxyy")], None, &[], &[]),
    ("${FOO///}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    ("${FOO///}", &[], Some(""), &[], &["FOO"]),
];

#[test]
fn buildkit_process_with_matches_vectors() {
    let lex = Lexer::new('\\');
    for (input, vars, expected, matched, unmatched) in MATCH_CASES {
        let e = env(vars);
        let r = lex.process_word(input, &e);
        match expected {
            None => assert!(r.is_err(), "{input:?} should fail, got {r:?}"),
            Some(want) => {
                let r = r.unwrap_or_else(|e| panic!("{input:?}: {e}"));
                assert_eq!(&r.result, want, "{input:?}");
                assert_eq!(r.matched, set(matched), "{input:?} matched");
                assert_eq!(r.unmatched, set(unmatched), "{input:?} unmatched");
            }
        }
    }
}

#[test]
fn mandatory_variables_carry_their_message() {
    let lex = Lexer::new('\\');
    let set_ = env(&[("VAR", "plain"), ("ARG", "x")]);
    let empty = env(&[("VAR", ""), ("ARG", "x")]);
    let unset = env(&[("ARG", "x")]);
    assert_eq!(
        lex.process_word("${VAR:?message here$ARG}", &set_)
            .unwrap()
            .result,
        "plain"
    );
    for e in [&empty, &unset] {
        let err = lex.process_word("${VAR:?message here$ARG}", e).unwrap_err();
        assert!(err.message.contains("message herex"), "{err}");
    }
    assert_eq!(
        lex.process_word("${VAR?message here$ARG}", &empty)
            .unwrap()
            .result,
        ""
    );
    assert!(lex
        .process_word("${VAR?message here$ARG}", &unset)
        .unwrap_err()
        .message
        .contains("message herex"));
}

#[test]
fn platform_release_name_vector() {
    let lex = Lexer::new('\\');
    let word =
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
    let e = env(&[
        ("VERSION", "v1.2.3"),
        ("TARGETOS", "linux"),
        ("TARGETARCH", "arm"),
        ("TARGETVARIANT", "v7"),
    ]);
    assert_eq!(
        lex.process_word(word, &e).unwrap().result,
        "something-v1.2.3.linux-arm-v7.tar.gz"
    );
    let e = env(&[
        ("VERSION", "v1.2.3"),
        ("TARGETOS", "linux"),
        ("TARGETARCH", "arm64"),
        ("TARGETVARIANT", ""),
    ]);
    assert_eq!(
        lex.process_word(word, &e).unwrap().result,
        "something-v1.2.3.linux-arm64.tar.gz"
    );
}

#[test]
fn backtick_escape_token() {
    let lex = Lexer::new('`');
    let e = env(&[("A", "1")]);
    assert_eq!(lex.process_word("`$A\\$A", &e).unwrap().result, "$A\\1");
    assert_eq!(lex.process_word("\"`\"x\"", &e).unwrap().result, "\"x");
}

#[test]
fn skip_unset_leaves_references_as_written() {
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let e = env(&[("A", "1")]);
    assert_eq!(
        lex.process_word("$A $B ${C} ${D:-x} ${E/a/b}", &e)
            .unwrap()
            .result,
        "1 $B ${C} ${D:-x} ${E/a/b}"
    );
}

#[test]
fn doubling_expansion_is_bounded() {
    let mut lex = Lexer::new('\\');
    lex.max_word = 1000;
    let e = env(&[("A", &"x".repeat(600))]);
    assert!(lex.process_word("$A", &e).is_ok());
    assert!(lex.process_word("$A$A", &e).is_err());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let lex = Lexer::new('\\');
    let word = "${A:-".repeat(100_000);
    assert!(lex.process_word(&word, &NoEnv).is_err());
}

#[test]
fn words_do_not_lose_text_before_a_nested_default() {
    // BuildKit's lexer shares one word buffer with nested ${…} and drops "80" here; we do not.
    let lex = Lexer::new('\\');
    assert_eq!(
        lex.process_words("80${X:-0} 443", &NoEnv).unwrap(),
        vec!["800", "443"]
    );
}
