//! No input panics: every corpus Dockerfile (ours and BuildKit's), truncated at many points and
//! mutated byte by byte, goes through parsing and planning; random words go through the lexer and
//! the pattern matcher. Deterministic (a fixed LCG), so a failure reproduces.

use std::panic::catch_unwind;
use std::path::Path;

use berth_build::ignore::PatternMatcher;
use berth_build::plan::{plan, BuildOptions, ImageConfig, ImageResolver, Platform, ResolvedImage};
use berth_build::shell::Lexer;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

struct Images;

impl ImageResolver for Images {
    fn resolve(&mut self, r: &str, _: &Platform) -> Result<ResolvedImage, String> {
        // Base images with ONBUILD triggers so triggers get fuzzed too.
        let config = ImageConfig {
            on_build: vec![format!("RUN echo {r}"), "COPY . /x".into()],
            ..Default::default()
        };
        Ok(ResolvedImage {
            id: "sha256:00".into(),
            config,
        })
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dockerfiles");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .contains("Dockerfile")
            {
                out.push(std::fs::read(p).unwrap());
            }
        }
    }
    out
}

fn exercise(src: &[u8]) {
    let Ok(df) = berth_build::parse(src) else {
        return;
    };
    let o = BuildOptions {
        build_platform: Platform::parse("linux/amd64").unwrap(),
        ..Default::default()
    };
    let _ = plan(&df, &o, &mut Images);
}

const SPICE: &[&[u8]] = &[
    b"\\", b"`", b"\n", b"\"", b"'", b"$", b"${", b"}", b"<<", b"EOF", b"[", b"]", b"--", b"=",
    b"#", b" ", b"\t", b"\r", b"\xff", b"\xc3",
];

#[test]
fn truncated_and_mutated_corpus_never_panics() {
    let files = corpus();
    assert!(files.len() > 40);
    let mut rng = Lcg(0x5eed);
    let mut runs = 0;
    for src in &files {
        let step = (src.len() / 40).max(1);
        for cut in (0..src.len()).step_by(step) {
            let s = &src[..cut];
            assert!(
                catch_unwind(|| exercise(s)).is_ok(),
                "panic on truncation at {cut} of {:?}",
                String::from_utf8_lossy(src)
            );
            runs += 1;
        }
        for _ in 0..60 {
            let mut m = src.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(m.len() + 1);
                match rng.below(3) {
                    0 if at < m.len() => {
                        m.remove(at);
                    }
                    1 => {
                        let spice = SPICE[rng.below(SPICE.len())];
                        m.splice(at..at, spice.iter().copied());
                    }
                    _ if at < m.len() => m[at] = rng.next() as u8,
                    _ => {}
                }
            }
            let mm = m.clone();
            assert!(
                catch_unwind(|| exercise(&mm)).is_ok(),
                "panic on {:?}",
                String::from_utf8_lossy(&m)
            );
            runs += 1;
        }
    }
    assert!(runs > 2000);
}

#[test]
fn random_words_never_panic_the_lexer_or_matchers() {
    let alphabet: Vec<char> = "ab$\\`{}:-+?#%/*'\"<> \t\n0é".chars().collect();
    let mut rng = Lcg(42);
    let env: Vec<(String, String)> =
        vec![("a".into(), "a*b/c".into()), ("b".into(), String::new())];
    for _ in 0..20_000 {
        let len = rng.below(24);
        let w: String = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let ww = w.clone();
        let e = env.clone();
        let r = catch_unwind(move || {
            for esc in ['\\', '`'] {
                let mut lex = Lexer::new(esc);
                let _ = lex.process_word(&ww, &e);
                let _ = lex.process_words(&ww, &e);
                lex.raw_quotes = true;
                lex.raw_escapes = true;
                lex.skip_unset_env = true;
                let _ = lex.process_word(&ww, &e);
            }
            if let Ok(pm) = PatternMatcher::new(&[ww.as_str(), "!x"]) {
                let _ = pm.matches("a/b*c/d");
            }
            let _ = berth_build::ignore::glob_match(&ww, "a/b");
        });
        assert!(r.is_ok(), "panic on {w:?}");
    }
}
