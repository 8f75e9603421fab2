//! `berth`: Docker's everyday commands without a daemon. This file parses the command line and
//! dispatches; each command's work lives in the library crates, its printing in the modules here.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

mod buildcmd;
mod buildprogress;
mod changecmd;
mod completion;
mod containercmd;
mod containeropscmd;
mod containers;
mod dfcmd;
mod execcmd;
mod format;
mod imagecmd;
mod logincmd;
mod networkcmd;
mod observe;
mod progress;
mod prompt;
mod prunecmd;
mod runflags;
mod servecmd;
mod statscmd;
mod systemcmd;
mod transfer;
mod volumecmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A daemonless container engine with Docker's command line",
    disable_help_subcommand = true
)]
struct Cli {
    /// Where images, layers and containers are stored [default: /var/lib/berth; an ordinary
    /// user's: $XDG_DATA_HOME/berth or ~/.local/share/berth]
    #[arg(long, global = true, env = "BERTH_ROOT")]
    root: Option<PathBuf>,
    /// Where runtime state of live containers is kept (emptied by a reboot) [default: /run/berth;
    /// an ordinary user's: $XDG_RUNTIME_DIR/berth or /tmp/berth-run-UID]
    #[arg(long, global = true, env = "BERTH_RUNROOT")]
    runroot: Option<PathBuf>,
    /// A registry (host[:port]) that may be reached over plain HTTP; repeatable
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    insecure_registries: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create and run a new container from an image
    Run(Box<containers::RunArgs>),
    /// Create a new container
    Create(Box<containers::RunArgs>),
    /// Start one or more stopped containers
    Start(containers::StartArgs),
    /// Stop one or more running containers
    Stop(containers::StopArgs),
    /// Restart one or more containers
    Restart(containers::StopArgs),
    /// Kill one or more running containers
    Kill(containers::KillArgs),
    /// Remove one or more containers
    Rm(containers::RmArgs),
    /// List containers
    Ps(containers::PsArgs),
    /// Fetch the logs of a container
    Logs(containers::LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(containers::WaitArgs),
    /// Follow a running container's output and forward signals to it
    Attach(containers::AttachArgs),
    /// Execute a command in a running container
    Exec(Box<execcmd::ExecArgs>),
    /// Show a running container's isolation at a glance: namespaces, cgroup limits and usage,
    /// layers, capabilities and seccomp
    Explain(observe::ExplainArgs),
    /// Display the running processes of a container
    Top(observe::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(statscmd::StatsArgs),
    /// Pause all processes within one or more containers
    Pause(observe::PauseArgs),
    /// Unpause all processes within one or more containers
    Unpause(observe::PauseArgs),
    /// Download an image from a registry
    Pull(transfer::PullArgs),
    /// Upload an image to a registry
    Push(transfer::PushArgs),
    /// List images
    Images(imagecmd::ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(imagecmd::TagArgs),
    /// Remove one or more images
    Rmi(imagecmd::RmiArgs),
    /// Show the history of an image
    History(imagecmd::HistoryArgs),
    /// Return low-level information on Docker objects
    Inspect(imagecmd::ObjectInspectArgs),
    /// Load an image from a tar archive (docker-save or OCI layout)
    Load(transfer::LoadArgs),
    /// Save one or more images to a tar archive (loadable by docker and podman)
    Save(transfer::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(transfer::ImportArgs),
    /// Manage berth
    #[command(subcommand)]
    System(SystemCommand),
    /// Authenticate to a registry (Docker Hub if no server is given)
    Login(logincmd::LoginArgs),
    /// Log out from a registry (Docker Hub if no server is given)
    Logout(logincmd::LogoutArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(changecmd::DiffArgs),
    /// Create a new image from a container's changes
    Commit(changecmd::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(changecmd::CpArgs),
    /// Rename a container
    Rename(containercmd::RenameArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(containercmd::ContainerCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volumecmd::VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(networkcmd::NetworkCommand),
    /// List port mappings or a specific mapping for the container
    Port(containers::PortArgs),
    /// Serve the Docker Engine API on a socket, for docker, docker-py and compose
    Serve(servecmd::ServeArgs),
    /// Show the berth version information
    Version(systemcmd::VersionArgs),
    /// Display system-wide information
    Info(systemcmd::InfoArgs),
    /// Get real time events from berth's commands and containers
    Events(systemcmd::EventsArgs),
    /// Export a container's filesystem as a tar archive
    Export(containeropscmd::ExportArgs),
    /// Update the resources and restart policy of one or more containers
    Update(containeropscmd::UpdateArgs),
    /// Build an image from a Dockerfile
    Build(Box<buildcmd::BuildArgs>),
    /// Docker Buildx's build command
    #[command(subcommand)]
    Buildx(buildcmd::BuildxCommand),
    /// Manage the build cache
    #[command(subcommand)]
    Builder(buildcmd::BuilderCommand),
    /// Generate the autocompletion script for the specified shell
    Completion(completion::CompletionArgs),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(imagecmd::ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(imagecmd::InspectArgs),
    /// Show the history of an image
    History(imagecmd::HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(imagecmd::TagArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(imagecmd::RmiArgs),
    /// Remove unused images
    Prune(imagecmd::PruneArgs),
    /// Download an image from a registry
    Pull(transfer::PullArgs),
    /// Upload an image to a registry
    Push(transfer::PushArgs),
    /// Load an image from a tar archive
    Load(transfer::LoadArgs),
    /// Save one or more images to a tar archive
    Save(transfer::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(transfer::ImportArgs),
    /// Build an image from a Dockerfile
    Build(Box<buildcmd::BuildArgs>),
}

#[derive(Subcommand)]
enum SystemCommand {
    /// Show docker disk usage
    Df(dfcmd::DfArgs),
    /// Remove unused data
    Prune(prunecmd::SystemPruneArgs),
    /// Display system-wide information
    Info(systemcmd::InfoArgs),
    /// Get real time events from berth's commands and containers
    Events(systemcmd::EventsArgs),
    /// Rootless: end your pause process (no container may run), so the next command makes your
    /// user namespace anew (after /etc/subuid or /etc/subgid changed)
    Migrate(systemcmd::MigrateArgs),
}

/// What every command gets: the parsed globals.
pub struct Ctx {
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub insecure: Vec<String>,
}

impl Ctx {
    /// The engine over this store and runroot.
    pub fn engine(&self) -> Result<berth_engine::Engine, CliError> {
        let mut e = berth_engine::Engine::open(&self.root, &self.runroot)?;
        e.insecure = self.insecure.clone();
        Ok(e)
    }
}

/// A failed command: the one line printed after `berth: `, and the status to exit with.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    pub fn new(message: impl Into<String>, code: u8) -> CliError {
        CliError {
            message: message.into(),
            code,
        }
    }

    /// A bad flag or argument: Docker's 125.
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(message, 125)
    }

    /// A failure already reported on stderr (one line per object, as Docker prints them): only
    /// the status is left to give.
    pub fn reported(code: u8) -> CliError {
        CliError::new("", code)
    }

    /// An engine failure in a command that exits 1 on failure (the image commands, as Docker).
    pub fn status1(e: berth_engine::EngineError) -> CliError {
        CliError::new(e.to_string(), 1)
    }
}

/// An engine failure in a container command: Docker's 125, or 126/127 when the container's
/// program could not be run.
impl From<berth_engine::EngineError> for CliError {
    fn from(e: berth_engine::EngineError) -> CliError {
        CliError::new(e.to_string(), e.exit_code())
    }
}

/// What a command returns: the status to exit with, or why it failed.
pub type CliResult = Result<u8, CliError>;

/// The store and runroot: root's defaults, or an ordinary user's, who then runs in their
/// rootless namespaces (joined here, while the process has one thread). Both paths go into the
/// environment, so helpers this command starts use the same ones.
fn rootless_or_root(mut cli: Cli) -> Result<Cli, String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let rootless = unsafe { libc::geteuid() } != 0;
    let root = match cli.root.take() {
        Some(r) => r,
        None if rootless => berth_engine::rootless::default_root()
            .ok_or("rootless: no home directory: give --root or set XDG_DATA_HOME")?,
        None => PathBuf::from("/var/lib/berth"),
    };
    let runroot = match cli.runroot.take() {
        Some(r) => r,
        None if rootless => berth_engine::rootless::default_runroot(),
        None => PathBuf::from("/run/berth"),
    };
    if rootless {
        berth_engine::rootless::enter(&runroot).map_err(|e| e.to_string())?;
    }
    std::env::set_var("BERTH_ROOT", &root);
    std::env::set_var("BERTH_RUNROOT", &runroot);
    cli.root = Some(root);
    cli.runroot = Some(runroot);
    Ok(cli)
}

/// Docker's end of a command over several names: every name was tried; success, or one error
/// naming each failure.
pub fn all_done(failed: Vec<String>) -> CliResult {
    match failed.is_empty() {
        true => Ok(0),
        false => Err(CliError::new(failed.join("; "), 1)),
    }
}

fn run(cli: Cli) -> CliResult {
    let mut insecure = cli.insecure_registries;
    if let Ok(list) = std::env::var("BERTH_INSECURE_REGISTRIES") {
        insecure.extend(
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    let ctx = Ctx {
        root: cli.root.unwrap_or_default(),
        runroot: cli.runroot.unwrap_or_default(),
        insecure,
    };
    let plain = |r: Result<(), CliError>| r.map(|()| 0);
    match cli.command {
        Command::Run(a) => containers::run(&ctx, a.split()),
        Command::Create(a) => containers::create(&ctx, a.split()),
        Command::Start(a) => containers::start(&ctx, a),
        Command::Stop(a) => containers::stop(&ctx, a),
        Command::Restart(a) => containers::restart(&ctx, a),
        Command::Kill(a) => containers::kill(&ctx, a),
        Command::Rm(a) => containers::rm(&ctx, a),
        Command::Ps(a) => containers::ps(&ctx, a),
        Command::Logs(a) => containers::logs(&ctx, a),
        Command::Wait(a) => containers::wait(&ctx, a),
        Command::Attach(a) => containers::attach(&ctx, a),
        Command::Exec(a) => execcmd::exec(&ctx, *a),
        Command::Explain(a) => observe::explain(&ctx, a),
        Command::Top(a) => observe::top(&ctx, a),
        Command::Stats(a) => statscmd::stats(&ctx, a),
        Command::Pause(a) => observe::pause(&ctx, a, false),
        Command::Unpause(a) => observe::pause(&ctx, a, true),
        Command::Inspect(a) => plain(imagecmd::inspect_any(&ctx, a)),
        Command::Diff(a) => changecmd::diff(&ctx, a),
        Command::Commit(a) => changecmd::commit(&ctx, a),
        Command::Cp(a) => changecmd::cp(&ctx, a),
        Command::Rename(a) => containercmd::rename(&ctx, a),
        Command::Container(c) => containercmd::run(&ctx, c),
        Command::Volume(c) => volumecmd::run(&ctx, c),
        Command::Network(c) => networkcmd::run(&ctx, c),
        Command::Port(a) => containers::port(&ctx, a),
        Command::Serve(a) => servecmd::serve(&ctx, a),
        Command::Version(a) => systemcmd::version(&ctx, a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => systemcmd::info(&ctx, a),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => {
            systemcmd::events(&ctx, a)
        }
        Command::Export(a) => containeropscmd::export(&ctx, a),
        Command::Update(a) => containeropscmd::update(&ctx, a),
        Command::Build(a)
        | Command::Image(ImageCommand::Build(a))
        | Command::Buildx(buildcmd::BuildxCommand::Build(a)) => buildcmd::build(&ctx, *a),
        Command::Builder(buildcmd::BuilderCommand::Prune(a)) => plain(buildcmd::prune(&ctx, a)),
        Command::System(SystemCommand::Prune(a)) => prunecmd::system_prune(&ctx, a),
        Command::System(SystemCommand::Migrate(a)) => systemcmd::migrate(&ctx, a),
        Command::Completion(a) => completion::completion(a),
        other => plain(run_images(&ctx, other)),
    }
}

fn run_images(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => transfer::pull(ctx, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => transfer::push(ctx, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => imagecmd::images(ctx, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => imagecmd::tag(ctx, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => imagecmd::rmi(ctx, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => imagecmd::history(ctx, a),
        Command::Image(ImageCommand::Inspect(a)) => imagecmd::inspect(ctx, a),
        Command::Image(ImageCommand::Prune(a)) => imagecmd::prune(ctx, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => transfer::load(ctx, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => transfer::save(ctx, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => transfer::import(ctx, a),
        Command::System(SystemCommand::Df(a)) => dfcmd::df(ctx, a),
        Command::Login(a) => logincmd::login(ctx, a),
        Command::Logout(a) => logincmd::logout(ctx, a),
        _ => unreachable!("container commands are dispatched in run"),
    }
}

fn main() -> ExitCode {
    // A closed stdout (`berth images | head -1`) is not worth a panic message.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A detached container's keeper or watcher (hidden command lines the engine decodes).
    let argv: Vec<String> = std::env::args().collect();
    if let Some(code) = berth_engine::monitor::entry(&argv) {
        return ExitCode::from(code as u8);
    }
    // An exec run for the API service (`berth __exec ID REQUEST`).
    if let Some(code) = berth_engine::exec_spawn::entry(&argv) {
        return ExitCode::from(code as u8);
    }
    // A build's RUN step (`berth … __build-step DIR`).
    if let Some(code) = berth_engine::build::helper::entry(&argv) {
        return ExitCode::from(code as u8);
    }
    // A user network's resolver (`berth __dns CONFIG`).
    if let Some(code) = berth_engine::network::entry(&argv) {
        return ExitCode::from(code as u8);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let cli = match rootless_or_root(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth: {e}");
            return ExitCode::from(125);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("berth: {}", e.message);
            }
            ExitCode::from(e.code)
        }
    }
}
