//! TCP only with TLS and client certificates: certificates made by openssl for this test (a CA,
//! the service's for 127.0.0.1, a client's and a stranger's), `berth serve -H tcp://…
//! --tlsverify`, the real docker CLI with its certificate served, without one refused, with
//! one of another CA refused.

mod common;
#[path = "common/container_fixture.rs"]
mod fixture;
#[path = "common/service.rs"]
mod service;

use fixture::Sandbox;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(dir);
    common::run(cmd, None).success(&format!("openssl {}", args.join(" ")));
}

/// A CA named `name` and a certificate it signs for `cn` (server or client use).
fn pki(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=berth-test-ca",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=stranger-ca",
            "-keyout",
            "other-ca-key.pem",
            "-out",
            "other-ca.pem",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (who, ca) in [("server", "ca"), ("client", "ca"), ("stranger", "other-ca")] {
        let ext = if who == "server" {
            "server.ext"
        } else {
            "client.ext"
        };
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={who}"),
                "-keyout",
                &format!("{who}-key.pem"),
                "-out",
                &format!("{who}.csr"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}-key.pem"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &format!("{who}-cert.pem"),
            ],
        );
    }
}

#[test]
fn tcp_serves_only_clients_with_a_certificate_of_its_ca() {
    let sb = Sandbox::new();
    let pki_dir = sb.dir().join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    pki(&pki_dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = |f: &str| pki_dir.join(f).display().to_string();
    let mut serve = sb.b.command(&[
        "serve",
        "-H",
        &format!("tcp://127.0.0.1:{port}"),
        "--tlsverify",
        "--tlscacert",
        &p("ca.pem"),
        "--tlscert",
        &p("server-cert.pem"),
        "--tlskey",
        &p("server-key.pem"),
    ]);
    serve
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _svc = common::Reaped(serve.spawn().expect("berth serve"));
    fixture::wait_until("the service listens", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let docker = |cert: Option<&str>| {
        let mut cmd = Command::new(service::DOCKER);
        cmd.args([
            "-H",
            &format!("tcp://127.0.0.1:{port}"),
            "--tlsverify",
            "--tlscacert",
            &p("ca.pem"),
        ]);
        if let Some(who) = cert {
            cmd.args([
                "--tlscert",
                &p(&format!("{who}-cert.pem")),
                "--tlskey",
                &p(&format!("{who}-key.pem")),
            ]);
        }
        cmd.args(["version", "--format", "{{.Server.Platform.Name}}"])
            .env("DOCKER_CONFIG", sb.dir())
            .env_remove("DOCKER_HOST");
        common::run(cmd, None)
    };
    let ok = docker(Some("client"));
    assert!(ok.status.success(), "{}", ok.stderr);
    assert_eq!(ok.stdout.trim(), "berth");
    assert!(
        !docker(None).status.success(),
        "a client without a certificate was served"
    );
    assert!(
        !docker(Some("stranger")).status.success(),
        "a certificate of another CA was accepted"
    );
    sb.assert_clean();
}
