//! `seal users`, `seal tokens` and `seal audit`: accounts managed on the server's machine.
//! They open the store, so they run while the server is stopped; a running server offers the
//! same through `/api/users`, `/api/tokens` and `/api/audit` to admins.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use seal_shared::Role;

use super::Ctx;
use crate::pipeline::accounts::{self, Actor};

#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// Add a user. With --password-stdin the first line of standard input is the password;
    /// on a terminal without it you are asked; otherwise the user has no password and signs in
    /// through the reverse proxy only.
    Add {
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users and their roles.
    List,
    /// Change a user's role; their browser sessions end.
    SetRole {
        name: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Set a user's password (from standard input with --password-stdin); their browser
    /// sessions end.
    SetPassword {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user: their sessions end, and their API tokens and share links are revoked.
    Remove { name: String },
}

#[derive(Subcommand, Debug)]
pub enum TokensCmd {
    /// Create an API token and print it once, alone on stdout (`{"token": …}` with --json).
    Create {
        /// The owner.
        #[arg(long)]
        user: String,
        /// A label for people.
        #[arg(long)]
        name: Option<String>,
        /// Lifetime, e.g. `30d`, `12h` (through a server, whole days only); without it the token
        /// does not expire.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<std::time::Duration>,
        /// Act with at most this role (never more than the owner's).
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id (or the whole token).
    Revoke { id: String },
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The newest N rows.
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
}

/// The password from stdin's first line, from a prompt on a terminal, or none.
fn password(from_stdin: bool, required: bool) -> Result<Option<String>> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
        let pw = line.trim_end_matches(['\r', '\n']).to_owned();
        if pw.is_empty() {
            bail!("--password-stdin: standard input held no password");
        }
        return Ok(Some(pw));
    }
    if std::io::stdin().is_terminal() {
        let pw = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if pw != again {
            bail!("the two passwords differ");
        }
        return Ok(Some(pw));
    }
    if required {
        bail!("no password: pass --password-stdin and write it to standard input");
    }
    Ok(None)
}

pub fn users(ctx: &Ctx, cmd: UsersCmd) -> Result<()> {
    let store = match ctx.store_or_server()? {
        Ok(store) => store,
        Err(server) => return users_through(ctx, &server, cmd),
    };
    match cmd {
        UsersCmd::Add { name, role, password_stdin } => {
            let pw = password(password_stdin, false)?;
            let u = accounts::add_user(&store, &name, role, pw.as_deref(), Actor::CLI)?;
            ctx.emit(&u, |u| {
                let how =
                    if u.has_password { "signs in with a password" } else { "has no password (proxy sign-in only)" };
                println!("added {} ({}); {how}", u.name, u.role);
            })
        }
        UsersCmd::List => {
            let users: Vec<_> = store.users()?.iter().map(accounts::user_info).collect();
            ctx.emit(&users, |users| show_users(users))
        }
        UsersCmd::SetRole { name, role } => {
            accounts::set_role(&store, &name, role, Actor::CLI)?;
            ctx.emit(&serde_json::json!({"user": name, "role": role}), |_| {
                println!("{name} is now {role}; their sessions ended")
            })
        }
        UsersCmd::SetPassword { name, password_stdin } => {
            let pw = password(password_stdin, true)?.unwrap_or_default();
            accounts::set_password(&store, &name, &pw, Actor::CLI)?;
            ctx.emit(&serde_json::json!({"user": name}), |_| println!("password of {name} set; their sessions ended"))
        }
        UsersCmd::Remove { name } => {
            accounts::remove_user(&store, &name, Actor::CLI)?;
            ctx.emit(&serde_json::json!({"removed": name}), |_| {
                println!("removed {name}; their sessions ended and tokens were revoked")
            })
        }
    }
}

pub fn tokens(ctx: &Ctx, cmd: TokensCmd) -> Result<()> {
    let store = match ctx.store_or_server()? {
        Ok(store) => store,
        Err(server) => return tokens_through(ctx, &server, cmd),
    };
    match cmd {
        TokensCmd::Create { user, name, expires, role } => {
            let t = accounts::create_token(&store, &user, name.as_deref(), expires, role, Actor::CLI)?;
            show_new_token(ctx, &t);
            Ok(())
        }
        TokensCmd::List => {
            let tokens = accounts::list_tokens(&store)?;
            ctx.emit(&tokens, |tokens| show_tokens(tokens))
        }
        TokensCmd::Revoke { id } => {
            let now = accounts::revoke_token(&store, &id, Actor::CLI)?;
            ctx.emit(&serde_json::json!({"revoked": now}), |_| {
                println!("{}", if now { "revoked" } else { "already revoked" })
            })
        }
    }
}

pub fn audit(ctx: &Ctx, a: &AuditArgs) -> Result<()> {
    let rows = match ctx.store_or_server()? {
        Ok(store) => store.audit_log(a.limit)?,
        Err(server) => server.get(&format!("audit?limit={}", a.limit))?,
    };
    ctx.emit(&rows, |rows| {
        for r in rows {
            println!(
                "{}  {:<16} {:<18} {:<24} {:<16} {}",
                r.at,
                r.actor.as_deref().unwrap_or("-"),
                r.action,
                r.target.as_deref().unwrap_or("-"),
                r.peer.as_deref().unwrap_or("-"),
                r.detail.as_deref().unwrap_or("")
            );
        }
    })
}

fn show_users(users: &[seal_shared::auth::UserInfo]) {
    if users.is_empty() {
        println!("no users: the server runs in the open single-user mode on loopback addresses");
    }
    for u in users {
        let pw = if u.has_password { "password" } else { "no password" };
        println!("{:<24} {:<9} {:<6} {pw:<12} since {}", u.name, u.role, u.source, u.created_at);
    }
}

fn show_tokens(tokens: &[seal_shared::auth::TokenInfo]) {
    for t in tokens {
        let state = match (&t.revoked_at, &t.expires_at) {
            (Some(r), _) => format!("revoked {r}"),
            (None, Some(e)) => format!("expires {e}"),
            (None, None) => "no expiry".into(),
        };
        println!("{}  {:<20} {:<9} {:<20} {state}", t.id, t.user, t.role, t.name.as_deref().unwrap_or("-"));
    }
}

fn show_new_token(ctx: &Ctx, t: &seal_shared::auth::NewToken) {
    if ctx.json {
        println!("{}", serde_json::json!({"token": t.token, "info": t.info}));
    } else {
        // Alone on stdout, so `TOKEN=$(seal tokens create …)` works; the rest on stderr.
        println!("{}", t.token);
        eprintln!(
            "token {} for {} (acts as {}{}); it is shown this once",
            t.info.id,
            t.info.user,
            t.info.role,
            t.info.expires_at.as_deref().map(|e| format!(", expires {e}")).unwrap_or_default()
        );
    }
}

/// `seal users` through the server holding the store (its control secret acts as an admin of
/// this machine), or through `--server` with an admin's token.
fn users_through(ctx: &Ctx, server: &super::remote::Remote, cmd: UsersCmd) -> Result<()> {
    use seal_shared::auth::{UserChange, UserInfo};
    let one = |path: String| format!("users/{}", super::remote::segment(&path));
    match cmd {
        UsersCmd::Add { name, role, password_stdin } => {
            let pw = password(password_stdin, false)?;
            let u: UserInfo = server.send("POST", "users", &seal_shared::auth::NewUser { name, role, password: pw })?;
            ctx.emit(&u, |u| {
                let how =
                    if u.has_password { "signs in with a password" } else { "has no password (proxy sign-in only)" };
                println!("added {} ({}) through the server at {}; {how}", u.name, u.role, server.url);
            })
        }
        UsersCmd::List => {
            let users: Vec<UserInfo> = server.get("users")?;
            ctx.emit(&users, |users| show_users(users))
        }
        UsersCmd::SetRole { name, role } => {
            let _: UserInfo =
                server.send("PATCH", &one(name.clone()), &UserChange { role: Some(role), password: None })?;
            ctx.emit(&serde_json::json!({"user": name, "role": role}), |_| {
                println!("{name} is now {role}; their sessions ended")
            })
        }
        UsersCmd::SetPassword { name, password_stdin } => {
            let pw = password(password_stdin, true)?;
            let _: UserInfo = server.send("PATCH", &one(name.clone()), &UserChange { role: None, password: pw })?;
            ctx.emit(&serde_json::json!({"user": name}), |_| println!("password of {name} set; their sessions ended"))
        }
        UsersCmd::Remove { name } => {
            server.call("DELETE", &one(name.clone()), None)?;
            ctx.emit(&serde_json::json!({"removed": name}), |_| {
                println!("removed {name}; their sessions ended and tokens were revoked")
            })
        }
    }
}

/// `seal tokens` through the server (as [`users_through`]).
fn tokens_through(ctx: &Ctx, server: &super::remote::Remote, cmd: TokensCmd) -> Result<()> {
    use seal_shared::auth::{NewToken, NewTokenRequest, TokenInfo};
    match cmd {
        TokensCmd::Create { user, name, expires, role } => {
            // The API counts a token's lifetime in days.
            let expires_in_days = match expires {
                Some(d) if d.as_secs() % 86_400 != 0 || d.is_zero() => {
                    bail!("--expires: through a server, a token's lifetime is a whole number of days (e.g. 30d)")
                }
                Some(d) => Some(u32::try_from(d.as_secs() / 86_400).context("--expires: too long")?),
                None => None,
            };
            let t: NewToken = server.send("POST", "tokens", &NewTokenRequest { user, name, expires_in_days, role })?;
            show_new_token(ctx, &t);
            Ok(())
        }
        TokensCmd::List => {
            let tokens: Vec<TokenInfo> = server.get("tokens")?;
            ctx.emit(&tokens, |tokens| show_tokens(tokens))
        }
        TokensCmd::Revoke { id } => {
            // A whole token names its id before the secret; only the id travels.
            let id = accounts::parse_token(&id).map_or(id.clone(), |(id, _)| id.to_owned());
            server.call("DELETE", &format!("tokens/{}", super::remote::segment(&id)), None)?;
            ctx.emit(&serde_json::json!({"revoked": true}), |_| println!("revoked"))
        }
    }
}
