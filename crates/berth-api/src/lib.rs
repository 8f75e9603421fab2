//! berth's Docker Engine API: `berth serve` answers Docker's clients (the docker CLI, docker-py,
//! compose) on a unix socket — or on TCP only with TLS and client certificates. Each endpoint
//! parses the request into one of the engine's calls and serializes the answer in Docker's
//! shapes; the engine does all the work, on the blocking pool, as it does for the CLI. The
//! tokio runtime lives only in this crate. Containers never depend on the service: each has its
//! own monitor, so stopping or killing the service stops none.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

mod build;
mod config;
mod containers;
mod docker;
mod error;
mod exec;
mod hijack;
mod http;
mod images;
mod networks;
mod progress;
mod router;
mod server;
mod state;
mod stopping;
mod streams;
mod system;
mod tls;
mod transfer;
mod volumes;

pub use server::{serve, ServeError, ServeOptions, DEFAULT_HOST};
pub use tls::TlsFiles;
