//! The commands that move images: pull, push, load, save, import, login, logout.

use crate::progress::Reporter;
use crate::{CliError, Ctx};
use berth_engine::Engine;
use berth_image::pull::Progress;
use berth_image::reference::Reference;
use berth_image::registry::auth;
use clap::Args;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

#[derive(Args)]
pub struct PullArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long)]
    platform: Option<String>,
    /// NAME[:TAG|@DIGEST]
    name: String,
}

#[derive(Args)]
pub struct PushArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// NAME[:TAG]
    name: String,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// IMAGE...
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// Set commit message for imported image
    #[arg(short, long)]
    message: Option<String>,
    /// A tarball file, or - for STDIN
    file: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

#[derive(Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin)
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    /// The registry (host[:port])
    server: String,
}

#[derive(Args)]
pub struct LogoutArgs {
    /// The registry (host[:port])
    server: String,
}

fn engine(ctx: &Ctx) -> Result<Engine, CliError> {
    ctx.engine().map_err(|e| CliError::new(e.message, 1))
}

pub fn pull(ctx: &Ctx, a: PullArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    let reporter = Reporter::new(a.quiet);
    let reference = Reference::parse(&a.name).map_err(|x| CliError::new(x.to_string(), 1))?;
    if reference.tag.as_deref() == Some("latest")
        && !a.name.contains(":latest")
        && reference.digest.is_none()
        && !a.quiet
    {
        reporter.note("Using default tag: latest");
    }
    let pulled = e
        .pull(&a.name, a.platform.as_deref(), &reporter)
        .map_err(CliError::status1)?;
    let reference = &pulled.reference;
    if !a.quiet {
        if pulled.up_to_date {
            reporter.note(&format!(
                "{}: Pulling from {}",
                reference.manifest_ref(),
                reference.familiar_name()
            ));
        }
        reporter.note(&format!("Digest: {}", pulled.digest));
        let what = if pulled.up_to_date {
            "Image is up to date"
        } else {
            "Downloaded newer image"
        };
        reporter.note(&format!("Status: {what} for {}", display_ref(reference)));
    }
    println!("{reference}");
    Ok(())
}

fn display_ref(r: &Reference) -> String {
    match (&r.tag, &r.digest) {
        (_, Some(d)) => format!("{}@{d}", r.familiar_name()),
        (Some(t), None) => format!("{}:{t}", r.familiar_name()),
        _ => r.familiar_name(),
    }
}

pub fn push(ctx: &Ctx, a: PushArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    let target = Reference::parse(&a.name).map_err(|x| CliError::new(x.to_string(), 1))?;
    let reporter = Reporter::new(a.quiet);
    reporter.note(&format!(
        "The push refers to repository [{}]",
        target.name()
    ));
    let pushed = e.push(&a.name, &reporter).map_err(CliError::status1)?;
    if !a.quiet {
        println!(
            "{}: digest: {} size: {}",
            pushed.tag, pushed.digest, pushed.size
        );
    }
    Ok(())
}

pub fn load(ctx: &Ctx, a: LoadArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    let input: Box<dyn Read> = match &a.input {
        Some(p) => Box::new(
            std::fs::File::open(p)
                .map_err(|x| CliError::new(format!("open {}: {x}", p.display()), 1))?,
        ),
        None => {
            if std::io::stdin().is_terminal() {
                return Err(CliError::new(
                    "requested load from stdin, but stdin is empty (use -i FILE)",
                    1,
                ));
            }
            Box::new(std::io::stdin().lock())
        }
    };
    let loaded = e.load(input).map_err(CliError::status1)?;
    if !a.quiet {
        for (img, tags) in loaded {
            if tags.is_empty() {
                println!("Loaded image ID: {}", img.id);
            }
            for t in tags {
                let r = Reference::parse(&t).map_err(|x| CliError::new(x.to_string(), 1))?;
                println!("Loaded image: {}", display_ref(&r));
            }
        }
    }
    Ok(())
}

pub fn save(ctx: &Ctx, a: SaveArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    match &a.output {
        Some(p) => e.save_to_file(&a.images, p).map_err(CliError::status1),
        None => {
            if std::io::stdout().is_terminal() {
                return Err(CliError::new(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                    1,
                ));
            }
            e.save(&a.images, std::io::stdout().lock())
                .map_err(CliError::status1)
        }
    }
}

pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    let input: Box<dyn Read> = if a.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&a.file)
                .map_err(|x| CliError::new(format!("open {}: {x}", a.file), 1))?,
        )
    };
    let img = e
        .import(input, &a.file, a.reference.as_deref(), a.message.as_deref())
        .map_err(CliError::status1)?;
    println!("{}", img.id);
    Ok(())
}

pub fn login(ctx: &Ctx, a: LoginArgs) -> Result<(), CliError> {
    let e = engine(ctx)?;
    let username = a.username.ok_or_else(|| {
        CliError::new(
            "login: --username is required (no interactive prompt yet)",
            1,
        )
    })?;
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => {
            return Err(CliError::new(
                "--password and --password-stdin are mutually exclusive",
                1,
            ))
        }
        (Some(p), false) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|x| CliError::new(format!("reading password: {x}"), 1))?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            return Err(CliError::new(
                "login: give --password-stdin or --password",
                1,
            ))
        }
    };
    e.login(&a.server, auth::Credentials { username, password })
        .map_err(CliError::status1)?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(ctx: &Ctx, a: LogoutArgs) -> Result<(), CliError> {
    let (registry, removed) = engine(ctx)?.logout(&a.server).map_err(CliError::status1)?;
    if removed {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(())
}
