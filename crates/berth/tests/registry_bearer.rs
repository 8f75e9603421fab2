//! The bearer-token flow end to end through the `berth` CLI: a real docker-registry (no auth of its
//! own) behind a token-gating proxy that is also the token server (common/token_proxy.rs). Anonymous
//! pulls fetch one token per scope, a private repository needs `berth login` and sends Basic
//! credentials to the token endpoint, a wrong password is refused there, and a push asks for
//! `pull,push`.

mod common;
#[path = "common/token_proxy.rs"]
mod token_proxy;

use common::image::{Compression, Image, Layer, LayerTar};
use common::registry::Registry;
use common::Berth;
use token_proxy::{base64, basic, TokenField, TokenProxy, TokenRequest, SERVICE};

fn config(b: &Berth) -> serde_json::Value {
    match std::fs::read(b.docker_config.join("config.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("config.json is JSON"),
        Err(_) => serde_json::json!({}),
    }
}

fn request(scope: Option<&str>, authorization: Option<String>, status: u16) -> TokenRequest {
    TokenRequest {
        scope: scope.map(str::to_string),
        service: Some(SERVICE.to_string()),
        authorization,
        status,
    }
}

fn one_file_image(name: &str, data: &[u8]) -> Image {
    let tar = LayerTar::new().file(name, data, 0o644).finish();
    Image::new(vec![Layer::new(&tar, Compression::Gzip)])
}

#[test]
fn anonymous_bearer_pull_works_and_fetches_one_token_per_scope_not_per_blob() {
    let reg = Registry::start();
    let proxy = TokenProxy::anonymous(&reg.addr, TokenField::Token);
    // An index (two platforms) over a three-layer image: the pull makes six requests in one scope.
    let layers: Vec<Layer> = (0..3)
        .map(|i| {
            let tar = LayerTar::new()
                .file(
                    &format!("layer{i}"),
                    format!("content {i}").as_bytes(),
                    0o644,
                )
                .finish();
            Layer::new(&tar, Compression::Gzip)
        })
        .collect();
    let amd64 = Image::new(layers);
    let arm64 = Image::for_platform(
        one_file_image("arm", b"other platform").layers,
        "linux",
        "arm64",
    );
    reg.push_index("bearer/app", "1", &[&amd64, &arm64]);
    let name = proxy.reference("bearer/app", "1");
    let b = Berth::new();

    b.ok(&["pull", &name]);
    let dirs = b.diff_dirs(&name);
    assert_eq!(dirs.len(), 3);
    for (i, d) in dirs.iter().enumerate() {
        assert_eq!(
            std::fs::read(d.join(format!("layer{i}"))).unwrap(),
            format!("content {i}").as_bytes()
        );
    }
    assert_eq!(b.inspect(&name)["Id"], amd64.id());

    assert_eq!(
        proxy.token_requests(),
        vec![request(Some("repository:bearer/app:pull"), None, 200)],
        "one anonymous token for the one scope"
    );
    assert_eq!(
        proxy.challenges(),
        vec![format!(
            "Bearer realm=\"http://{}/token\",service=\"{SERVICE}\",scope=\"repository:bearer/app:pull\"",
            proxy.addr
        )],
        "only the first request went without the token"
    );
    // Index, manifest, config and three layers all reached the registry with that token.
    assert_eq!(proxy.forwarded(), 6, "registry log:\n{}", reg.log());
}

#[test]
fn private_repository_pull_fails_without_login_then_works_with_basic_credentials_at_the_token_endpoint(
) {
    let reg = Registry::start();
    // This token server spells its answer `{"access_token": …}` (OAuth2).
    let proxy = TokenProxy::private(&reg.addr, "berth", "s3cret-pass", TokenField::AccessToken);
    let img = one_file_image("secret", b"behind a token");
    reg.push_image("private/app", "1", &img);
    let name = proxy.reference("private/app", "1");
    let scope = "repository:private/app:pull";
    let creds = basic("berth", "s3cret-pass");
    let b = Berth::new();

    // Without login: the token endpoint refuses the anonymous request; one line, exit non-zero.
    let err = b.fails(&["pull", &name]);
    assert!(err.contains("authentication required"), "{err}");
    assert!(
        err.contains(&proxy.addr),
        "the error names the registry: {err}"
    );
    assert_eq!(
        proxy.token_requests(),
        vec![request(Some(scope), None, 401)]
    );
    assert_eq!(proxy.forwarded(), 0);
    b.assert_nothing_left(&Default::default());

    // Login checks the credentials through the same flow: `GET /v2/` → token (no scope) → `/v2/`.
    let out = b.run_with_stdin(
        &["login", "-u", "berth", "--password-stdin", &proxy.addr],
        b"s3cret-pass\n",
    );
    assert_eq!(out.success("login").stdout, "Login Succeeded\n");
    assert_eq!(
        proxy.token_requests()[1..],
        [request(None, Some(creds.clone()), 200)]
    );
    assert_eq!(
        config(&b)["auths"][&proxy.addr]["auth"],
        base64(b"berth:s3cret-pass").as_str()
    );

    b.ok(&["pull", &name]);
    let diff = &b.diff_dirs(&name)[0];
    assert_eq!(
        std::fs::read(diff.join("secret")).unwrap(),
        b"behind a token"
    );
    assert_eq!(
        proxy.token_requests()[2..],
        [request(Some(scope), Some(creds), 200)],
        "the pull sent the stored credentials to the token endpoint, once"
    );
}

/// A refusal names the registry and says why, without repeating the (wrong) password.
#[track_caller]
fn assert_refused(err: &str, addr: &str) {
    assert!(
        err.contains("unauthorized: wrong username or password") && err.contains(addr),
        "{err}"
    );
    assert!(
        !err.contains("not-the-pass") && !err.contains("Basic "),
        "the password stays out of errors: {err}"
    );
}

#[test]
fn wrong_password_is_refused_at_the_token_endpoint_with_a_clear_error() {
    let reg = Registry::start();
    let proxy = TokenProxy::private(&reg.addr, "berth", "s3cret-pass", TokenField::Token);
    reg.push_image("private/app", "1", &one_file_image("f", b"x"));
    let name = proxy.reference("private/app", "1");
    let wrong = basic("berth", "not-the-pass");
    let b = Berth::new();

    let out = b.run_with_stdin(
        &["login", "-u", "berth", "--password-stdin", &proxy.addr],
        b"not-the-pass\n",
    );
    let err = common::expect_failure(out, "login with a wrong password");
    assert_refused(&err, &proxy.addr);
    assert_eq!(
        config(&b)["auths"].get(&proxy.addr),
        None,
        "a refused login stores nothing"
    );
    assert_eq!(
        proxy.token_requests(),
        vec![request(None, Some(wrong.clone()), 401)]
    );

    // Stale credentials in config.json (the password changed since): the pull fails as clearly.
    std::fs::create_dir_all(&b.docker_config).unwrap();
    std::fs::write(
        b.docker_config.join("config.json"),
        serde_json::to_vec(&serde_json::json!({
            "auths": {proxy.addr.clone(): {"auth": base64(b"berth:not-the-pass")}}
        }))
        .unwrap(),
    )
    .unwrap();
    let err = b.fails(&["pull", &name]);
    assert_refused(&err, &proxy.addr);
    assert_eq!(
        proxy.token_requests()[1..],
        [request(
            Some("repository:private/app:pull"),
            Some(wrong),
            401
        )]
    );
    assert_eq!(proxy.forwarded(), 0, "nothing got past the proxy");
    b.assert_nothing_left(&Default::default());
}

#[test]
fn push_through_the_bearer_flow_asks_for_pull_and_push_scope() {
    let reg = Registry::start();
    let proxy = TokenProxy::anonymous(&reg.addr, TokenField::Token);
    let b = Berth::new();
    let rootfs = LayerTar::new()
        .dir("etc", 0o755)
        .file("etc/pushed", b"through a token\n", 0o644)
        .finish();
    let tarball = b.path("rootfs.tar");
    std::fs::write(&tarball, &rootfs).unwrap();
    let id = b.ok(&["import", tarball.to_str().unwrap(), "local/app:1"]);
    let id = id.trim().to_string();
    let remote = proxy.reference("bearer/pushed", "v1");
    b.ok(&["tag", "local/app:1", &remote]);

    let pushed = b.ok(&["push", &remote]);
    let digest = pushed
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("v1: digest: "))
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("push ends with 'v1: digest: … size: …':\n{pushed}"))
        .to_string();
    assert_eq!(
        proxy.token_requests(),
        vec![request(
            Some("repository:bearer/pushed:pull,push"),
            None,
            200
        )],
        "one token, for pull and push"
    );
    // The first request (a blob HEAD) was challenged for pull only: berth asks for what a push needs.
    assert_eq!(
        proxy.challenges(),
        vec![format!(
            "Bearer realm=\"http://{}/token\",service=\"{SERVICE}\",scope=\"repository:bearer/pushed:pull\"",
            proxy.addr
        )]
    );
    // What the proxy let through is in the registry itself.
    assert_eq!(reg.manifest_digest("bearer/pushed", "v1"), digest);

    // And back through the flow into a fresh store, with a pull-only token.
    let b2 = Berth::new();
    b2.ok(&["pull", &remote]);
    assert_eq!(b2.inspect(&remote)["Id"], id.as_str());
    let diff = &b2.diff_dirs(&remote)[0];
    assert_eq!(
        std::fs::read(diff.join("etc/pushed")).unwrap(),
        b"through a token\n"
    );
    assert_eq!(
        proxy.token_requests()[1..],
        [request(Some("repository:bearer/pushed:pull"), None, 200)]
    );
}
