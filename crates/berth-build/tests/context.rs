//! The build context against hostile inputs: symlinks out of the context, `..` and absolute COPY
//! sources, ignore rules, content digests for cache keys, and tar contexts that try to write
//! outside their scratch directory.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use berth_build::context::tar::{read_stdin_context, StdinContext};
use berth_build::context::{Context, ContextError, ContextLimits, EntryKind};
use berth_build::plan::{CopyStep, Source};

fn write(p: &Path, data: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

fn copy_step(sources: &[&str]) -> CopyStep {
    CopyStep {
        add: false,
        from: Source::Context,
        sources: sources.iter().map(|s| s.to_string()).collect(),
        remote: vec![],
        inline: vec![],
        dest: "/dst/".into(),
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        excludes: vec![],
        unpack: false,
        keep_git_dir: None,
        checksum: None,
    }
}

fn names(ctx: &Context, srcs: &[&str]) -> Vec<(String, String)> {
    let srcs: Vec<String> = srcs.iter().map(|s| s.to_string()).collect();
    ctx.copy_sources(&srcs, &[])
        .unwrap()
        .into_iter()
        .flat_map(|s| s.items)
        .map(|(n, r, _)| (n, r))
        .collect()
}

#[test]
fn symlinks_are_entries_and_never_lead_out() {
    let t = tempfile::tempdir().unwrap();
    let ctx_dir = t.path().join("ctx");
    write(&ctx_dir.join("app/main.c"), "int main;");
    write(&t.path().join("secret"), "outside");
    symlink("/etc/passwd", ctx_dir.join("passwd")).unwrap();
    symlink("../../", ctx_dir.join("up")).unwrap();
    symlink("../secret", ctx_dir.join("sibling")).unwrap();
    symlink("app", ctx_dir.join("applink")).unwrap();
    let ctx = Context::open(&ctx_dir, None).unwrap();
    assert_eq!(
        ctx.entries()["passwd"].kind,
        EntryKind::Symlink("/etc/passwd".into())
    );
    assert_eq!(
        ctx.entries()["up"].kind,
        EntryKind::Symlink("../../".into())
    );
    // The walk did not descend through "up" or "applink".
    assert!(ctx
        .entries()
        .keys()
        .all(|k| !k.starts_with("up/") && !k.starts_with("applink/")));
    // COPY passwd: the link resolves inside the context (to <ctx>/etc/passwd), which is missing.
    assert!(matches!(
        ctx.copy_sources(&["passwd".into()], &[]),
        Err(ContextError::NotFound(_))
    ));
    assert!(matches!(
        ctx.copy_sources(&["sibling".into()], &[]),
        Err(ContextError::NotFound(_))
    ));
    // "up" resolves to the context root itself.
    let up = names(&ctx, &["up/app/main.c"]);
    assert_eq!(up, vec![("main.c".to_string(), "app/main.c".to_string())]);
    assert_eq!(names(&ctx, &["applink/main.c"]), up);
    assert!(ctx.open_file("passwd").is_err());
}

#[test]
fn dotdot_and_absolute_sources_stay_in_the_context() {
    let t = tempfile::tempdir().unwrap();
    let ctx_dir = t.path().join("ctx");
    write(&ctx_dir.join("etc/passwd"), "the context's own");
    write(&ctx_dir.join("a/b"), "b");
    let ctx = Context::open(&ctx_dir, None).unwrap();
    for src in [
        "../../../../etc/passwd",
        "/etc/passwd",
        "a/../../etc/passwd",
        "./etc/./passwd",
    ] {
        assert_eq!(
            names(&ctx, &[src]),
            vec![("passwd".to_string(), "etc/passwd".to_string())],
            "{src}"
        );
    }
    let whole = names(&ctx, &[".."]);
    assert!(whole.contains(&("a/b".to_string(), "a/b".to_string())));
}

#[test]
fn symlink_loops_are_errors() {
    let t = tempfile::tempdir().unwrap();
    symlink("b", t.path().join("a")).unwrap();
    symlink("a", t.path().join("b")).unwrap();
    let ctx = Context::open(t.path(), None).unwrap();
    assert!(matches!(
        ctx.copy_sources(&["a/x".into()], &[]),
        Err(ContextError::SymlinkLoop { .. })
    ));
}

#[test]
fn dockerignore_filters_the_walk_with_exceptions() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(&d.join(".dockerignore"), "# build outputs\n**/*.o\nnode_modules\ndocs/\n!docs/README.md\nDockerfile\n.dockerignore\n");
    write(&d.join("Dockerfile"), "FROM scratch");
    write(&d.join("src/a.c"), "a");
    write(&d.join("src/a.o"), "obj");
    write(&d.join("node_modules/x/index.js"), "x");
    write(&d.join("docs/README.md"), "readme");
    write(&d.join("docs/other.md"), "other");
    let ctx = Context::open(d, None).unwrap();
    let keys: Vec<&str> = ctx.entries().keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["docs", "docs/README.md", "src", "src/a.c"]);
    // A Dockerfile-specific ignore file wins over .dockerignore.
    write(&d.join("build.Dockerfile.dockerignore"), "src\n");
    let ctx = Context::open(d, Some(&d.join("build.Dockerfile"))).unwrap();
    assert!(!ctx.entries().contains_key("src/a.c"));
    assert!(ctx.entries().contains_key("docs/other.md"));
}

#[test]
fn wildcards_and_excludes() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for f in ["a.txt", "b.txt", "c.md", "sub/d.txt", "dir.txt/inner"] {
        write(&d.join(f), f);
    }
    let ctx = Context::open(d, None).unwrap();
    let got = names(&ctx, &["*.txt"]);
    assert_eq!(
        got.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        vec!["a.txt", "b.txt", "dir.txt/inner"]
    );
    assert!(names(&ctx, &["*.nothing"]).is_empty());
    let src = ctx
        .copy_sources(&[".".into()], &["*.md".into(), "sub".into()])
        .unwrap();
    let n: Vec<&str> = src[0].items.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(n, vec!["a.txt", "b.txt", "dir.txt", "dir.txt/inner"]);
}

#[test]
fn content_digest_ignores_mtime_but_not_content_or_mode() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(&d.join("app/main.c"), "int main;");
    write(&d.join("app/util.c"), "int util;");
    let step = copy_step(&["app"]);
    let digest = || {
        Context::open(d, None)
            .unwrap()
            .content_digest(&step)
            .unwrap()
    };
    let first = digest();
    // Touch without change: same key.
    let f = fs::File::options()
        .append(true)
        .open(d.join("app/main.c"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
        .unwrap();
    drop(f);
    assert_eq!(digest(), first);
    // One byte changed: a different key.
    fs::write(d.join("app/main.c"), "int mair;").unwrap();
    let changed = digest();
    assert_ne!(changed, first);
    fs::write(d.join("app/main.c"), "int main;").unwrap();
    assert_eq!(digest(), first);
    // Mode change: a different key.
    fs::set_permissions(d.join("app/util.c"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(digest(), first);
    // A file the step does not read changes nothing.
    fs::set_permissions(d.join("app/util.c"), fs::Permissions::from_mode(0o644)).unwrap();
    let before = Context::open(d, None)
        .unwrap()
        .content_digest(&copy_step(&["app/main.c"]))
        .unwrap();
    fs::write(d.join("app/util.c"), "changed").unwrap();
    let after = Context::open(d, None)
        .unwrap()
        .content_digest(&copy_step(&["app/main.c"]))
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn walk_limits() {
    let t = tempfile::tempdir().unwrap();
    for i in 0..20 {
        write(&t.path().join(format!("f{i}")), "x");
    }
    let limits = ContextLimits {
        max_entries: 10,
        ..Default::default()
    };
    assert!(matches!(
        Context::open_with(t.path(), &[], &limits),
        Err(ContextError::TooManyEntries(10))
    ));
}

// ---- tar contexts ----

/// A raw tar header: name bytes as given (no validation), type, size, optional link target.
fn header(name: &[u8], kind: u8, size: u64, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// (name, type, data, link target).
type TarEntry<'a> = (&'a [u8], u8, &'a [u8], &'a [u8]);

fn tar_of(entries: &[TarEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data, link) in entries {
        out.extend_from_slice(&header(name, *kind, data.len() as u64, link));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A parent with a scratch directory and a canary file beside it; checks afterwards that the
/// parent holds nothing else and the canary is untouched.
struct Jail {
    dir: tempfile::TempDir,
}

impl Jail {
    fn new() -> Jail {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("scratch")).unwrap();
        fs::write(dir.path().join("canary"), "untouched").unwrap();
        Jail { dir }
    }

    fn scratch(&self) -> std::path::PathBuf {
        self.dir.path().join("scratch")
    }

    fn unpack(&self, tar: &[u8]) -> Result<StdinContext, ContextError> {
        read_stdin_context(tar, &self.scratch(), &ContextLimits::default(), 1 << 20)
    }

    fn assert_nothing_outside(&self) {
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["canary", "scratch"]);
        assert_eq!(
            fs::read_to_string(self.dir.path().join("canary")).unwrap(),
            "untouched"
        );
    }
}

#[test]
fn tar_context_unpacks_files_dirs_links() {
    let j = Jail::new();
    let tar = tar_of(&[
        (b"./", b'5', b"", b""),
        (b"Dockerfile", b'0', b"FROM scratch\n", b""),
        (b"/abs/file", b'0', b"abs", b""),
        (b"dir/", b'5', b"", b""),
        (b"dir/link", b'2', b"", b"/etc/passwd"),
        (b"dir/hard", b'1', b"", b"Dockerfile"),
    ]);
    assert_eq!(j.unpack(&tar).unwrap(), StdinContext::Unpacked);
    let s = j.scratch();
    assert_eq!(
        fs::read_to_string(s.join("Dockerfile")).unwrap(),
        "FROM scratch\n"
    );
    assert_eq!(fs::read_to_string(s.join("abs/file")).unwrap(), "abs");
    assert_eq!(
        fs::read_link(s.join("dir/link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::read_to_string(s.join("dir/hard")).unwrap(),
        "FROM scratch\n"
    );
    j.assert_nothing_outside();
}

#[test]
fn tar_path_traversal_is_refused() {
    for name in [&b"../evil"[..], b"a/../../evil", b"./../canary"] {
        let j = Jail::new();
        let e = j
            .unpack(&tar_of(&[(name, b'0', b"pwned", b"")]))
            .unwrap_err();
        assert!(e.to_string().contains("points outside the context"), "{e}");
        j.assert_nothing_outside();
    }
}

#[test]
fn tar_symlink_then_write_cannot_escape() {
    let j = Jail::new();
    let outside = j.dir.path().to_str().unwrap().as_bytes().to_vec();
    let tar = tar_of(&[
        (b"link", b'2', b"", &outside),
        (b"link/canary", b'0', b"pwned", b""),
    ]);
    assert!(j.unpack(&tar).is_err());
    j.assert_nothing_outside();
    // A relative link climbing out, then a write through it.
    let j = Jail::new();
    let tar = tar_of(&[
        (b"up", b'2', b"", b".."),
        (b"up/canary", b'0', b"pwned", b""),
    ]);
    assert!(j.unpack(&tar).is_err());
    j.assert_nothing_outside();
    // A symlink replaced by a file is a plain file in the scratch dir.
    let j = Jail::new();
    let tar = tar_of(&[(b"x", b'2', b"", b"../canary"), (b"x", b'0', b"plain", b"")]);
    j.unpack(&tar).unwrap();
    assert_eq!(fs::read_to_string(j.scratch().join("x")).unwrap(), "plain");
    j.assert_nothing_outside();
}

#[test]
fn tar_hard_links_outside_are_refused() {
    let j = Jail::new();
    let e = j
        .unpack(&tar_of(&[(b"h", b'1', b"", b"../canary")]))
        .unwrap_err();
    assert!(e.to_string().contains("points outside"), "{e}");
    let e = j
        .unpack(&tar_of(&[(b"h", b'1', b"", b"/etc/passwd")]))
        .unwrap_err();
    assert!(e.to_string().contains("link target"), "{e}");
    j.assert_nothing_outside();
}

#[test]
fn tar_bounds() {
    let j = Jail::new();
    let limits = ContextLimits {
        max_entries: 3,
        ..Default::default()
    };
    let many: Vec<(Vec<u8>, u8)> = (0..10)
        .map(|i| (format!("f{i}").into_bytes(), b'0'))
        .collect();
    let entries: Vec<TarEntry> = many
        .iter()
        .map(|(n, k)| (n.as_slice(), *k, &b"x"[..], &b""[..]))
        .collect();
    let e = read_stdin_context(&tar_of(&entries)[..], &j.scratch(), &limits, 1 << 20).unwrap_err();
    assert!(matches!(e, ContextError::TooManyEntries(3)));
    let limits = ContextLimits {
        max_total_bytes: 100,
        ..Default::default()
    };
    let big = vec![b'x'; 1000];
    let e = read_stdin_context(
        &tar_of(&[(b"big", b'0', &big, b"")])[..],
        &j.scratch(),
        &limits,
        1 << 20,
    )
    .unwrap_err();
    assert!(e.to_string().contains("larger than 100 bytes"), "{e}");
    // A GNU long name record claiming a huge size is refused before it is read.
    let mut tar = header(b"././@LongLink", b'L', 1 << 32, b"").to_vec();
    tar.extend_from_slice(&[0u8; 1024]);
    let e = j.unpack(&tar).unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");
    j.assert_nothing_outside();
}

#[test]
fn tar_gzip_and_bare_dockerfile() {
    use std::io::Write;
    let j = Jail::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_of(&[(b"Dockerfile", b'0', b"FROM a\n", b"")]))
        .unwrap();
    assert_eq!(
        j.unpack(&gz.finish().unwrap()).unwrap(),
        StdinContext::Unpacked
    );
    assert!(j.scratch().join("Dockerfile").exists());
    let j = Jail::new();
    assert_eq!(
        j.unpack(b"FROM busybox\nRUN true\n").unwrap(),
        StdinContext::Dockerfile(b"FROM busybox\nRUN true\n".to_vec())
    );
    assert!(j.unpack(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2]).is_err());
    j.assert_nothing_outside();
}
