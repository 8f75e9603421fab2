//! Basic auth against a registry behind htpasswd: anonymous pulls get a clear 401 error, `login`
//! stores Docker-format credentials in `$DOCKER_CONFIG/config.json`, `logout` removes them, and a
//! wrong password is refused ("unauthorized: wrong username or password") without being stored.

mod common;

use common::image::{Compression, Image, Layer, LayerTar};
use common::registry::Registry;
use common::Berth;

fn config(b: &Berth) -> serde_json::Value {
    match std::fs::read(b.docker_config.join("config.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("config.json is JSON"),
        Err(_) => serde_json::json!({}),
    }
}

#[test]
fn basic_auth_login_pull_logout_and_wrong_password() {
    let reg = Registry::start_with_auth("berth", "s3cret-pass");
    let tar = LayerTar::new()
        .file("secret", b"behind auth", 0o644)
        .finish();
    let img = Image::new(vec![Layer::new(&tar, Compression::Gzip)]);
    reg.push_image("private/app", "1", &img);
    let name = reg.reference("private/app", "1");
    let b = Berth::new();

    let err = b.fails(&["pull", &name]);
    assert!(err.contains("authentication required"), "{err}");
    assert!(
        err.contains(&reg.addr),
        "the error names the registry: {err}"
    );
    b.assert_nothing_left(&Default::default());

    let out = b.run_with_stdin(
        &["login", "-u", "berth", "--password-stdin", &reg.addr],
        b"wrong\n",
    );
    let err = common::expect_failure(out, "login with a wrong password");
    assert!(
        err.contains("unauthorized: wrong username or password") && err.contains(&reg.addr),
        "{err}"
    );
    assert_eq!(
        config(&b)["auths"].get(&reg.addr),
        None,
        "a refused login stores nothing"
    );

    let out = b.run_with_stdin(
        &["login", "-u", "berth", "--password-stdin", &reg.addr],
        b"s3cret-pass\n",
    );
    assert_eq!(out.success("login").stdout, "Login Succeeded\n");
    // Docker's format: auths.<host>.auth = base64("user:password").
    assert_eq!(
        config(&b)["auths"][&reg.addr]["auth"],
        "YmVydGg6czNjcmV0LXBhc3M="
    );

    b.ok(&["pull", &name]);
    let diff = &b.diff_dirs(&name)[0];
    assert_eq!(std::fs::read(diff.join("secret")).unwrap(), b"behind auth");

    assert_eq!(
        b.ok(&["logout", &reg.addr]),
        format!("Removing login credentials for {}\n", reg.addr)
    );
    assert_eq!(config(&b)["auths"].get(&reg.addr), None);
    // Docker prints the same line whether or not anything was stored.
    assert_eq!(
        b.ok(&["logout", &reg.addr]),
        format!("Removing login credentials for {}\n", reg.addr)
    );

    b.ok(&["rmi", &name]);
    let err = b.fails(&["pull", &name]);
    assert!(err.contains("authentication required"), "{err}");
}
