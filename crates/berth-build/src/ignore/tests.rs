use super::*;

/// moby/patternmatcher's `TestMatches` vectors: (pattern, path, matched).
const SINGLE: &[(&str, &str, bool)] = &[
    ("**", "file", true),
    ("**", "file/", true),
    ("**/", "file", true),
    ("**/", "file/", true),
    ("**", "/", true),
    ("**/", "/", true),
    ("**", "dir/file", true),
    ("**/", "dir/file", true),
    ("**", "dir/file/", true),
    ("**/", "dir/file/", true),
    ("**/**", "dir/file", true),
    ("**/**", "dir/file/", true),
    ("dir/**", "dir/file", true),
    ("dir/**", "dir/file/", true),
    ("dir/**", "dir/dir2/file", true),
    ("dir/**", "dir/dir2/file/", true),
    ("**/dir", "dir", true),
    ("**/dir", "dir/file", true),
    ("**/dir2/*", "dir/dir2/file", true),
    ("**/dir2/*", "dir/dir2/file/", true),
    ("**/dir2/**", "dir/dir2/dir3/file", true),
    ("**/dir2/**", "dir/dir2/dir3/file/", true),
    ("**file", "file", true),
    ("**file", "dir/file", true),
    ("**/file", "dir/file", true),
    ("**file", "dir/dir/file", true),
    ("**/file", "dir/dir/file", true),
    ("**/file*", "dir/dir/file", true),
    ("**/file*", "dir/dir/file.txt", true),
    ("**/file*txt", "dir/dir/file.txt", true),
    ("**/file*.txt", "dir/dir/file.txt", true),
    ("**/file*.txt*", "dir/dir/file.txt", true),
    ("**/**/*.txt", "dir/dir/file.txt", true),
    ("**/**/*.txt2", "dir/dir/file.txt", false),
    ("**/*.txt", "file.txt", true),
    ("**/**/*.txt", "file.txt", true),
    ("a**/*.txt", "a/file.txt", true),
    ("a**/*.txt", "a/dir/file.txt", true),
    ("a**/*.txt", "a/dir/dir/file.txt", true),
    ("a/*.txt", "a/dir/file.txt", false),
    ("a/*.txt", "a/file.txt", true),
    ("a/*.txt**", "a/file.txt", true),
    ("a[b-d]e", "ae", false),
    ("a[b-d]e", "ace", true),
    ("a[b-d]e", "aae", false),
    ("a[^b-d]e", "aze", true),
    (".*", ".foo", true),
    (".*", "foo", false),
    ("abc.def", "abcdef", false),
    ("abc.def", "abc.def", true),
    ("abc.def", "abcZdef", false),
    ("abc?def", "abcZdef", true),
    ("abc?def", "abcdef", false),
    ("a\\\\", "a\\", true),
    ("**/foo/bar", "foo/bar", true),
    ("**/foo/bar", "dir/foo/bar", true),
    ("**/foo/bar", "dir/dir2/foo/bar", true),
    ("abc/**", "abc", false),
    ("abc/**", "abc/def", true),
    ("abc/**", "abc/def/ghi", true),
    ("**/.foo", ".foo", true),
    ("**/.foo", "bar.foo", false),
    ("a(b)c/def", "a(b)c/def", true),
    ("a(b)c/def", "a(b)c/xyz", false),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    (
        "dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    ("a\\*b", "a*b", true),
];

const MULTI: &[(&[&str], &str, bool)] = &[
    (&["**", "!util/docker/web"], "util/docker/web/foo", false),
    (
        &["**", "!util/docker/web", "util/docker/web/foo"],
        "util/docker/web/foo",
        true,
    ),
    (
        &[
            "**",
            "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        ],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    (
        &["**", "!dist/*.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    (&["*"], "fileutils.go", true),
    (&["*.go"], "fileutils.go", true),
    (&["!fileutils.go", "*.go"], "fileutils.go", true),
    (&["docs", "!docs/README.md"], "docs/README.md", false),
    (&["docs/", "!docs/README.md"], "docs/README.md", false),
    (&["docs/*", "!docs/README.md"], "docs/README.md", false),
    (&["*.go", "!fileutils.go"], "fileutils.go", false),
    (&["*.go"], ".", false),
    (&[], "/any/path/there", false),
];

/// Go's filepath.Match vectors as patternmatcher runs them: (pattern, path, matched, bad pattern).
const GLOB: &[(&str, &str, bool, bool)] = &[
    ("abc", "abc", true, false),
    ("*", "abc", true, false),
    ("*c", "abc", true, false),
    ("a*", "a", true, false),
    ("a*", "abc", true, false),
    ("a*", "ab/c", true, false),
    ("a*/b", "abc/b", true, false),
    ("a*/b", "a/c/b", false, false),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", true, false),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true, false),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false, false),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false, false),
    ("a*b?c*x", "abxbbxdbxebxczzx", true, false),
    ("a*b?c*x", "abxbbxdbxebxczzy", false, false),
    ("ab[c]", "abc", true, false),
    ("ab[b-d]", "abc", true, false),
    ("ab[e-g]", "abc", false, false),
    ("ab[^c]", "abc", false, false),
    ("ab[^b-d]", "abc", false, false),
    ("ab[^e-g]", "abc", true, false),
    ("a\\*b", "a*b", true, false),
    ("a\\*b", "ab", false, false),
    ("a?b", "a☺b", true, false),
    ("a[^a]b", "a☺b", true, false),
    ("a???b", "a☺b", false, false),
    ("a[^a][^a][^a]b", "a☺b", false, false),
    ("[a-ζ]*", "α", true, false),
    ("*[a-ζ]", "A", false, false),
    ("a?b", "a/b", false, false),
    ("a*b", "a/b", false, false),
    ("[\\]a]", "]", true, false),
    ("[\\-]", "-", true, false),
    ("[x\\-]", "x", true, false),
    ("[x\\-]", "-", true, false),
    ("[x\\-]", "z", false, false),
    ("[\\-x]", "x", true, false),
    ("[\\-x]", "-", true, false),
    ("[\\-x]", "a", false, false),
    ("[]a]", "]", false, true),
    ("[-]", "-", false, true),
    ("[x-]", "x", false, true),
    ("[x-]", "-", false, true),
    ("[x-]", "z", false, true),
    ("[-x]", "x", false, true),
    ("[-x]", "-", false, true),
    ("[-x]", "a", false, true),
    ("\\", "a", false, true),
    ("[a-b-c]", "a", false, true),
    ("[", "a", false, true),
    ("[^", "a", false, true),
    ("[^bc", "a", false, true),
    ("a[", "a", false, true),
    ("a[", "ab", false, true),
    ("*x", "xxx", true, false),
];

fn walk_check(pm: &PatternMatcher, path: &str) -> bool {
    let mut info = MatchInfo::default();
    if let Some(i) = path.rfind('/') {
        let dirs: Vec<&str> = path[..i].split('/').collect();
        for k in 1..=dirs.len() {
            info = pm.matches_with_parent(&dirs[..k].join("/"), &info).1;
        }
    }
    pm.matches_with_parent(path, &info).0
}

#[test]
fn patternmatcher_vectors() {
    for (pat, path, want) in SINGLE {
        let pm = PatternMatcher::new(&[pat]).unwrap();
        assert_eq!(pm.matches(path), *want, "pattern {pat:?} path {path:?}");
        assert_eq!(
            walk_check(&pm, path),
            *want,
            "walk: pattern {pat:?} path {path:?}"
        );
        assert_eq!(
            pm.matches_with_parent(path, &MatchInfo::default()).0,
            *want,
            "no context: {pat:?} {path:?}"
        );
    }
    for (pats, path, want) in MULTI {
        let pm = PatternMatcher::new(pats).unwrap();
        assert_eq!(pm.matches(path), *want, "patterns {pats:?} path {path:?}");
    }
}

#[test]
fn filepath_match_vectors() {
    for (pat, path, want, bad) in GLOB {
        match PatternMatcher::new(&[pat]) {
            Err(_) => assert!(*bad, "{pat:?} refused"),
            Ok(pm) => {
                assert!(!bad, "{pat:?} should be refused");
                assert_eq!(pm.matches(path), *want, "pattern {pat:?} path {path:?}");
            }
        }
    }
}

#[test]
fn single_bang_and_blank_patterns() {
    assert!(PatternMatcher::new(&["!"]).is_err());
    assert_eq!(
        PatternMatcher::new(&["docs", "config", ""])
            .unwrap()
            .patterns()
            .len(),
        2
    );
    assert!(PatternMatcher::new(&["docs", "  !docs/README.md"])
        .unwrap()
        .has_exclusions());
    assert!(PatternMatcher::new(&["docs", "!docs/README.md  "])
        .unwrap()
        .has_exclusions());
}

#[test]
fn ignore_file_cleaning() {
    let f =
        b"\xef\xbb\xbf# comment\n  \n/abs/path\n./rel//x/\n! /neg \n*.md\n  # not a comment\n!\n";
    assert_eq!(
        read_ignore_file(f),
        vec!["abs/path", "rel/x", "!neg", "*.md", "# not a comment", "!"]
    );
}
