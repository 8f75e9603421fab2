//! The commands that move images: pull, push, load, save, import (login and logout are
//! `logincmd`).

use crate::progress::Reporter;
use crate::{CliError, Ctx};
use berth_engine::images::PullReport;
use berth_engine::Engine;
use berth_image::pull::Progress;
use berth_image::reference::Reference;
use clap::{ArgAction, Args};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

/// podman's `--tls-verify`: false skips certificate checks and allows plain HTTP for the
/// registry the command talks to.
#[derive(Args)]
pub struct TlsArgs {
    /// Require HTTPS and verify the registry's certificate (podman's flag; false also allows plain HTTP)
    #[arg(long = "tls-verify", value_name = "BOOL", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: bool,
}

impl TlsArgs {
    /// The engine, told to skip verification for `name`'s registry when asked.
    pub fn engine(&self, ctx: &Ctx, name: &str) -> Result<Engine, CliError> {
        let mut e = engine(ctx)?;
        if !self.tls_verify {
            e.trust_registry_of(name).map_err(CliError::status1)?;
        }
        Ok(e)
    }
}

#[derive(Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short, long)]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long)]
    platform: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
    /// NAME[:TAG|@DIGEST]
    name: String,
}

#[derive(Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short, long = "all-tags")]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Push the image only if it is this platform (os/arch[/variant]; berth keeps one per image)
    #[arg(long)]
    platform: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
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
    /// Load only the given platform's images (os/arch[/variant]; default: an index's entry for
    /// this host, and every image of a docker-save archive)
    #[arg(long)]
    platform: Option<String>,
}

#[derive(Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Save only if each image is this platform (os/arch[/variant]; berth keeps one per image)
    #[arg(long)]
    platform: Option<String>,
    /// IMAGE...
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    message: Option<String>,
    /// Set the image's platform (os/arch[/variant]; default: this host's)
    #[arg(long)]
    platform: Option<String>,
    /// A tarball file, or - for STDIN
    file: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

pub fn engine(ctx: &Ctx) -> Result<Engine, CliError> {
    ctx.engine().map_err(|e| CliError::new(e.message, 1))
}

pub fn pull(ctx: &Ctx, a: PullArgs) -> Result<(), CliError> {
    let e = a.tls.engine(ctx, &a.name)?;
    let reporter = Reporter::new(a.quiet);
    let reference = Reference::parse(&a.name).map_err(|x| CliError::new(x.to_string(), 1))?;
    if a.all_tags {
        return pull_all_tags(&e, &a, &reporter);
    }
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
        note_pulled(&reporter, &pulled);
        reporter.note(&format!(
            "Status: {} for {}",
            status(pulled.up_to_date),
            display_ref(reference)
        ));
    }
    reporter.finish();
    println!("{reference}");
    Ok(())
}

fn status(up_to_date: bool) -> &'static str {
    if up_to_date {
        "Image is up to date"
    } else {
        "Downloaded newer image"
    }
}

/// The lines after one tag's layers: its `Pulling from` when nothing was fetched (the pull
/// said it otherwise), and its digest.
fn note_pulled(reporter: &Reporter, pulled: &PullReport) {
    let reference = &pulled.reference;
    if pulled.up_to_date {
        reporter.note(&format!(
            "{}: Pulling from {}",
            reference.manifest_ref(),
            reference.repository
        ));
    }
    reporter.note(&format!("Digest: {}", pulled.digest));
}

/// `pull -a REPOSITORY`: every tag the registry lists, one after the other, then one status line
/// for the repository, as Docker prints it.
fn pull_all_tags(e: &Engine, a: &PullArgs, reporter: &Reporter) -> Result<(), CliError> {
    let named = a.name.rsplit('/').next().unwrap_or("");
    if named.contains(':') || a.name.contains('@') {
        return Err(CliError::new("tag can't be used with --all-tags/-a", 1));
    }
    let tags = e.local_tags(&a.name).map_err(CliError::status1)?;
    let mut newer = false;
    let mut repository = None;
    for tag in tags {
        let pulled = e
            .pull(
                &format!("{}:{tag}", a.name),
                a.platform.as_deref(),
                reporter,
            )
            .map_err(CliError::status1)?;
        newer |= !pulled.up_to_date;
        if !a.quiet {
            note_pulled(reporter, &pulled);
        }
        repository = Some(pulled.reference.name());
    }
    let Some(repository) = repository else {
        return Err(CliError::new(format!("{}: no tags to pull", a.name), 1));
    };
    let familiar = Reference::parse(&a.name)
        .map(|r| r.familiar_name())
        .unwrap_or_else(|_| a.name.clone());
    if !a.quiet {
        reporter.note(&format!("Status: {} for {familiar}", status(!newer)));
    }
    reporter.finish();
    println!("{repository}");
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
    let e = a.tls.engine(ctx, &a.name)?;
    let target = Reference::parse(&a.name).map_err(|x| CliError::new(x.to_string(), 1))?;
    let named = a.name.rsplit('/').next().unwrap_or("");
    let name_only = !named.contains(':') && !a.name.contains('@');
    let tags = if a.all_tags {
        if !name_only {
            return Err(CliError::new("tag can't be used with --all-tags/-a", 1));
        }
        let tags = e.local_tags(&a.name).map_err(CliError::status1)?;
        if tags.is_empty() {
            return Err(CliError::new(
                format!("An image does not exist locally with the tag: {}", a.name),
                1,
            ));
        }
        tags
    } else {
        if name_only && !a.quiet {
            println!("Using default tag: latest");
        }
        vec![a.name.clone()]
    };
    for tag in &tags {
        e.image_on_platform(tag, a.platform.as_deref())
            .map_err(CliError::status1)?;
    }
    for (n, tag) in tags.iter().enumerate() {
        let reporter = Reporter::new(a.quiet);
        if n == 0 {
            reporter.note(&format!(
                "The push refers to repository [{}]",
                target.name()
            ));
        }
        let pushed = e.push(tag, &reporter).map_err(CliError::status1)?;
        reporter.finish();
        if !a.quiet {
            println!(
                "{}: digest: {} size: {}",
                pushed.tag, pushed.digest, pushed.size
            );
        }
    }
    // Docker's -q prints the reference pushed: the repository alone with -a.
    if a.quiet {
        if a.all_tags {
            println!("{}", target.name());
        } else {
            println!("{target}");
        }
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
    let loaded = e
        .load(input, a.platform.as_deref())
        .map_err(CliError::status1)?;
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
    for name in &a.images {
        e.image_on_platform(name, a.platform.as_deref())
            .map_err(CliError::status1)?;
    }
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
        .import(
            input,
            &a.file,
            a.reference.as_deref(),
            a.message.as_deref(),
            &a.change,
            a.platform.as_deref(),
        )
        .map_err(CliError::status1)?;
    println!("{}", img.id);
    Ok(())
}
