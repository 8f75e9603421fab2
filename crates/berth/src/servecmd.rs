//! `berth serve`: the Docker Engine API over this store (`berth_api`). Parsing only.

use crate::{CliError, CliResult, Ctx};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct ServeArgs {
    /// Where to listen: unix:///PATH, tcp://ADDR:PORT (only with --tlsverify), repeatable;
    /// sockets passed by systemd (LISTEN_FDS) are used instead when present
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Group owning the unix socket (mode 0660); default `berth` if it exists, else root only
    #[arg(long)]
    group: Option<String>,
    /// Exit after this many seconds without a connection (0: never)
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    timeout: u64,
    /// Serve TCP with TLS and require client certificates signed by --tlscacert
    #[arg(long = "tlsverify", alias = "tls-verify")]
    tls_verify: bool,
    /// CA that signs the clients' certificates
    #[arg(long = "tlscacert", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The service's certificate
    #[arg(long = "tlscert", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The service's private key
    #[arg(long = "tlskey", value_name = "FILE")]
    tls_key: Option<PathBuf>,
}

pub fn serve(ctx: &Ctx, a: ServeArgs) -> CliResult {
    let tls =
        match (a.tls_verify, a.tls_ca, a.tls_cert, a.tls_key) {
            (false, None, None, None) => None,
            (true, Some(ca), Some(cert), Some(key)) => Some(berth_api::TlsFiles { ca, cert, key }),
            _ => return Err(CliError::usage(
                "--tlsverify needs --tlscacert, --tlscert and --tlskey (and they need --tlsverify)",
            )),
        };
    berth_api::serve(berth_api::ServeOptions {
        root: ctx.root.clone(),
        runroot: ctx.runroot.clone(),
        insecure: ctx.insecure.clone(),
        hosts: a.hosts,
        group: a.group,
        timeout: (a.timeout > 0).then(|| std::time::Duration::from_secs(a.timeout)),
        tls,
    })
    .map_err(|e| CliError::new(e.to_string(), 1))?;
    Ok(0)
}
