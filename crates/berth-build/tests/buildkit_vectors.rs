//! BuildKit's own parser and lexer test vectors (transcribed as data under `tests/dockerfiles` and
//! `tests/vectors`), run against berth-build.

use std::path::Path;

use berth_build::parser::parse_ast;
use berth_build::shell::Lexer;
use berth_build::Limits;

fn dirs(p: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn parser_testfiles_dump_as_buildkit() {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dockerfiles/buildkit-parser/positive");
    let mut n = 0;
    for dir in dirs(&root) {
        let src = std::fs::read(dir.join("Dockerfile")).unwrap();
        let want = std::fs::read_to_string(dir.join("result")).unwrap();
        let ast = parse_ast(&src, &Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert_eq!(ast.dump(), want, "{}", dir.display());
        n += 1;
    }
    assert!(n >= 30);
}

#[test]
fn parser_negative_testfiles_are_refused() {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dockerfiles/buildkit-parser/negative");
    for dir in dirs(&root) {
        let src = std::fs::read(dir.join("Dockerfile")).unwrap();
        assert!(
            parse_ast(&src, &Limits::default()).is_err(),
            "{}",
            dir.display()
        );
    }
}

#[test]
fn env_var_vectors() {
    let text = include_str!("vectors/envVarTest");
    let env: Vec<(String, String)> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let lex = Lexer::new('\\');
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 3, "line {}", i + 1);
        let (platform, source, expected) = (parts[0].trim(), parts[1].trim(), parts[2].trim());
        if platform == "W" {
            continue;
        }
        let got = lex.process_word(source, &env);
        if expected == "error" {
            assert!(got.is_err(), "line {}: {source:?} gave {got:?}", i + 1);
        } else {
            let got = got.unwrap_or_else(|e| panic!("line {}: {source:?}: {e}", i + 1));
            assert_eq!(got.result, expected, "line {}: {source:?}", i + 1);
        }
        n += 1;
    }
    assert!(n > 200);
}

#[test]
fn words_vectors_in_both_modes() {
    let text = include_str!("vectors/wordsTest");
    for raw_mode in [false, true] {
        let mut lex = Lexer::new('\\');
        if raw_mode {
            lex.raw_quotes = true;
            lex.skip_unset_env = true;
        }
        let mut env: Vec<(String, String)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("ENV ") {
                let rest = rest.trim_start_matches(' ');
                let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                env.push((k.to_string(), v.to_string()));
                continue;
            }
            let parts: Vec<&str> = line.split('|').collect();
            assert_eq!(parts.len(), 2, "line {}", i + 1);
            let test = parts[0].trim();
            let expected: Vec<&str> = parts[1].trim_start_matches(' ').split(',').collect();
            let got = lex
                .process_words(test, &env)
                .unwrap_or_else(|_| vec!["error".into()]);
            if raw_mode {
                // The raw mode keeps quotes; BuildKit checks only that it agrees on the word count.
                assert_eq!(
                    got.len(),
                    expected.len(),
                    "line {}: {test:?} gave {got:?}",
                    i + 1
                );
            } else {
                assert_eq!(got, expected, "line {}: {test:?}", i + 1);
            }
        }
    }
}
