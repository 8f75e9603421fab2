//! The commands that move images: pull, push, load, save, import, login, logout.

use crate::progress::Reporter;
use crate::Ctx;
use berth_image::manifest::Platform;
use berth_image::pull::{Progress, PullOptions};
use berth_image::reference::Reference;
use berth_image::registry::{auth, Client};
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

fn parse_ref(name: &str) -> Result<Reference, String> {
    Reference::parse(name).map_err(|e| e.to_string())
}

pub fn pull(ctx: &Ctx, a: PullArgs) -> Result<(), String> {
    let reference = parse_ref(&a.name)?;
    let platform = match &a.platform {
        Some(p) => Platform::parse(p)
            .ok_or_else(|| format!("invalid platform {p:?}: expected os/arch[/variant]"))?,
        None => Platform::host(),
    };
    let store = ctx.store()?;
    let reporter = Reporter::new(a.quiet);
    if reference.tag.as_deref() == Some("latest")
        && !a.name.contains(":latest")
        && reference.digest.is_none()
        && !a.quiet
    {
        reporter.note("Using default tag: latest");
    }
    let opts = PullOptions {
        platform,
        insecure: ctx.insecure.clone(),
        progress: &reporter,
        parallel: 4,
    };
    let pulled = berth_image::pull::pull(&store, &reference, &opts)
        .map_err(|e| format!("pull {}: {e}", a.name))?;
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
        reporter.note(&format!("Status: {what} for {}", display_ref(&reference)));
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

pub fn push(ctx: &Ctx, a: PushArgs) -> Result<(), String> {
    let target = parse_ref(&a.name)?;
    let store = ctx.store()?;
    let image = store
        .find(&a.name)
        .map_err(|_| format!("An image does not exist locally with the tag: {}", a.name))?;
    let reporter = Reporter::new(a.quiet);
    reporter.note(&format!(
        "The push refers to repository [{}]",
        target.name()
    ));
    let digest = berth_image::push::push(&store, &image, &target, &ctx.insecure, &reporter)
        .map_err(|e| format!("push {}: {e}", a.name))?;
    let size = store.content.size(&digest).unwrap_or(0);
    if !a.quiet {
        println!(
            "{}: digest: {digest} size: {size}",
            target.tag.as_deref().unwrap_or("latest")
        );
    }
    store
        .update_index(|idx| {
            if let Some(r) = idx.images.get_mut(&image.id.to_string()) {
                let rd = format!("{}@{digest}", target.name());
                if !r.repo_digests.contains(&rd) {
                    r.repo_digests.push(rd);
                }
            }
            Ok(())
        })
        .map_err(|e| e.to_string())
}

pub fn load(ctx: &Ctx, a: LoadArgs) -> Result<(), String> {
    let store = ctx.store()?;
    let input: Box<dyn Read> = match &a.input {
        Some(p) => {
            Box::new(std::fs::File::open(p).map_err(|e| format!("open {}: {e}", p.display()))?)
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err("requested load from stdin, but stdin is empty (use -i FILE)".into());
            }
            Box::new(std::io::stdin().lock())
        }
    };
    let loaded = berth_image::archive::load(&store, input).map_err(|e| format!("load: {e}"))?;
    if !a.quiet {
        for (img, tags) in loaded {
            if tags.is_empty() {
                println!("Loaded image ID: {}", img.id);
            }
            for t in tags {
                let r = parse_ref(&t)?;
                println!("Loaded image: {}", display_ref(&r));
            }
        }
    }
    Ok(())
}

pub fn save(ctx: &Ctx, a: SaveArgs) -> Result<(), String> {
    let store = ctx.store()?;
    let mut images = Vec::new();
    for name in &a.images {
        let img = store.find(name).map_err(|e| e.to_string())?;
        let tags: Vec<String> = match Reference::parse(name) {
            Ok(r) if img.repo_tags.contains(&r.to_string()) => vec![r.to_string()],
            _ => img.repo_tags.clone(),
        };
        images.push((img, tags));
    }
    match &a.output {
        Some(p) => {
            let tmp = p.with_extension("berth-partial");
            let f = std::fs::File::create(&tmp)
                .map_err(|e| format!("create {}: {e}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(f);
            let r = berth_image::archive::save(&store, &images, &mut w)
                .map_err(|e| format!("save: {e}"));
            let r = r.and_then(|_| {
                use std::io::Write;
                w.flush().map_err(|e| format!("save: {e}"))
            });
            if let Err(e) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, p).map_err(|e| format!("save {}: {e}", p.display()))
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                );
            }
            berth_image::archive::save(&store, &images, std::io::stdout().lock())
                .map_err(|e| format!("save: {e}"))
        }
    }
}

pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<(), String> {
    let store = ctx.store()?;
    let tag = a.reference.as_deref().map(parse_ref).transpose()?;
    let input: Box<dyn Read> = if a.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(&a.file).map_err(|e| format!("open {}: {e}", a.file))?)
    };
    let img = berth_image::archive::import(&store, input, tag.as_ref(), a.message.as_deref())
        .map_err(|e| format!("import {}: {e}", a.file))?;
    println!("{}", img.id);
    Ok(())
}

fn registry_host(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let s = s.split('/').next().unwrap_or(s);
    if s == "index.docker.io" || s == "registry-1.docker.io" {
        "docker.io".into()
    } else {
        s.into()
    }
}

pub fn login(ctx: &Ctx, a: LoginArgs) -> Result<(), String> {
    let registry = registry_host(&a.server);
    let username = a
        .username
        .ok_or("login: --username is required (no interactive prompt yet)")?;
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => {
            return Err("--password and --password-stdin are mutually exclusive".into())
        }
        (Some(p), false) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("reading password: {e}"))?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => return Err("login: give --password-stdin or --password".into()),
    };
    let creds = auth::Credentials { username, password };
    let api = if registry == "docker.io" {
        berth_image::reference::DOCKER_HUB_API.to_string()
    } else {
        registry.clone()
    };
    Client::new(&api, &ctx.insecure, Some(creds.clone()))
        .ping()
        .map_err(|e| format!("login {registry}: {e}"))?;
    auth::store(&registry, &creds).map_err(|e| {
        format!(
            "saving credentials to {}: {e}",
            auth::config_path().display()
        )
    })?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(_ctx: &Ctx, a: LogoutArgs) -> Result<(), String> {
    let registry = registry_host(&a.server);
    let removed = auth::remove(&registry).map_err(|e| format!("logout {registry}: {e}"))?;
    if removed {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(())
}
