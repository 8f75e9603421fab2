//! `login [SERVER]` and `logout [SERVER]` as Docker's CLI runs them: Docker Hub without a
//! server; the username and password asked on a terminal (the password unechoed), or given
//! with `-u` and `--password-stdin`; stored credentials tried first when no flag is given.

use crate::transfer::engine;
use crate::{CliError, Ctx};
use berth_image::registry::auth::Credentials;
use clap::{ArgAction, Args};
use std::io::Read;

#[derive(Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short, long)]
    password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long)]
    password_stdin: bool,
    /// Require HTTPS and verify the registry's certificate (podman's flag; false also allows plain HTTP)
    #[arg(long = "tls-verify", value_name = "BOOL", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    tls_verify: bool,
    /// The registry (host[:port]); Docker Hub when left out
    server: Option<String>,
}

#[derive(Args)]
pub struct LogoutArgs {
    /// The registry (host[:port]); Docker Hub when left out
    server: Option<String>,
}

/// Docker's checks of the flags, before anything is read or asked.
fn check_flags(a: &LoginArgs) -> Result<(), CliError> {
    let fail = |m: &str| Err(CliError::new(m, 1));
    if a.password_stdin {
        if a.password.is_some() {
            return fail(
                "conflicting options: cannot specify both --password and --password-stdin",
            );
        }
        if a.username.is_none() {
            return fail("the --password-stdin option requires --username to be set");
        }
    }
    if a.username.as_deref() == Some("") {
        return fail("username is empty");
    }
    if a.password.as_deref() == Some("") {
        return fail("password is empty");
    }
    Ok(())
}

pub fn login(ctx: &Ctx, a: LoginArgs) -> Result<(), CliError> {
    check_flags(&a)?;
    let mut e = engine(ctx)?;
    if !a.tls_verify {
        e.trust_server(a.server.as_deref());
    }
    let server = a.server.as_deref();
    let mut password = a.password.clone();
    if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if a.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|x| CliError::new(format!("reading the password from stdin: {x}"), 1))?;
        let p = s.strip_suffix('\n').unwrap_or(&s);
        password = Some(p.strip_suffix('\r').unwrap_or(p).to_string());
    }
    let target = e.login_target(server);
    if a.username.is_none() && password.is_none() {
        if let Some(user) = &target.username {
            eprintln!("Authenticating with existing credentials... [Username: {user}]");
            match e.login_stored(server) {
                Ok(_) => return succeeded(&e),
                Err(x) => eprintln!("Login did not succeed, error: {x}"),
            }
        }
    }
    let creds = ask(a.username, password, target.username.as_deref())?;
    e.login(server, creds).map_err(CliError::status1)?;
    succeeded(&e)
}

/// The credentials, asked on the terminal for what the flags did not give.
fn ask(
    username: Option<String>,
    password: Option<String>,
    stored: Option<&str>,
) -> Result<Credentials, CliError> {
    if (username.is_none() || password.is_none()) && !crate::prompt::interactive() {
        return Err(CliError::new(
            "Error: Cannot perform an interactive login from a non TTY device",
            1,
        ));
    }
    let io = |x: std::io::Error| CliError::new(x.to_string(), 1);
    let username = match username {
        Some(u) => u.trim().to_string(),
        None => {
            let label = match stored {
                Some(s) => format!("Username ({s}): "),
                None => "Username: ".to_string(),
            };
            let typed = crate::prompt::read_line(&label).map_err(io)?;
            let typed = typed.trim();
            match (typed.is_empty(), stored) {
                (false, _) => typed.to_string(),
                (true, Some(s)) => s.to_string(),
                (true, None) => return Err(CliError::new("Error: Non-null Username Required", 1)),
            }
        }
    };
    let password = match password {
        Some(p) => p,
        None => {
            let typed = crate::prompt::read_password("Password: ").map_err(io)?;
            if typed.trim().is_empty() {
                return Err(CliError::new("Error: Password Required", 1));
            }
            typed.trim().to_string()
        }
    };
    Ok(Credentials { username, password })
}

/// Docker's closing lines: the warning about plain-text storage, then `Login Succeeded`.
fn succeeded(e: &berth_engine::Engine) -> Result<(), CliError> {
    eprintln!(
        "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
        e.credentials_file().display()
    );
    println!("Login Succeeded");
    Ok(())
}

/// `logout [SERVER]`: Docker prints the line whether or not credentials were stored.
pub fn logout(ctx: &Ctx, a: LogoutArgs) -> Result<(), CliError> {
    let (target, _removed) = engine(ctx)?
        .logout(a.server.as_deref())
        .map_err(CliError::status1)?;
    println!("Removing login credentials for {}", target.shown);
    Ok(())
}
