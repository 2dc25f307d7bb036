//! Accounts: users and their roles, passwords (argon2id), API tokens, browser sessions, and
//! the [`Directory`] a running server checks credentials against.
//!
//! A credential is an id plus a secret. API tokens read `seal_pat_<id>_<secret>`: the store keeps
//! the SHA-256 of the secret and finds the token by id, so checking one costs a hash and a map
//! lookup (argon2 is for passwords only). A session cookie is one random value, stored as its
//! SHA-256. Nothing that could sign someone in is stored in the clear.

use std::collections::HashMap;
use std::sync::RwLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::distr::{Alphanumeric, SampleString};
use rand::TryRngCore;
use seal_shared::auth::{CreatedShare, NewToken, ShareInfo, ShareTarget, TokenInfo, UserInfo};
use seal_shared::Role;
use sha2::{Digest, Sha256};

use super::{Error, PipelineResult as Result};
use crate::store::{unix_now, AuditRecord, SessionRecord, ShareRecord, Store, TokenRecord, UserRecord};

/// The prefix of API tokens.
pub const TOKEN_PREFIX: &str = "seal_pat_";
/// The prefix of share-link tokens.
pub const SHARE_PREFIX: &str = "seal_shr_";
/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "seal_session";
/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

const TOKEN_ID_LEN: usize = 12;
const SECRET_LEN: usize = 40;

/// Who is asking, and how they proved it.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The user; `None` in the open single-user mode.
    pub user: Option<String>,
    pub role: Role,
    pub via: Via,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Via {
    /// The open single-user mode: no accounts, loopback only.
    Open,
    /// A browser session: writes must also carry its CSRF token.
    Session { id_sha256: String, csrf_token: String },
    /// An API token.
    Token { id: String },
    /// The trusted reverse proxy named the user.
    Proxy,
    /// A share link: read-only, exactly its target.
    Share { id: String, target: ShareTarget },
    /// A `seal` command on the server's own machine, with the secret of the server's control
    /// file (readable by its owner only): the machine's user, as an admin, not an account.
    Local,
}

impl Via {
    pub fn name(&self) -> &'static str {
        match self {
            Via::Open => "open",
            Via::Session { .. } => "session",
            Via::Token { .. } => "token",
            Via::Proxy => "proxy",
            Via::Share { .. } => "share",
            Via::Local => "local",
        }
    }
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The prefix of a server's control secret as a bearer credential.
pub const LOCAL_PREFIX: &str = "seal_local_";

/// A fresh control secret for a server's control file.
pub fn new_local_secret() -> String {
    format!("{LOCAL_PREFIX}{}", random_alphanumeric(43))
}

/// A random string of letters and digits from the operating system's generator.
fn random_alphanumeric(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng.unwrap_err(), len)
}

/// A fresh 16-byte salt from the operating system's generator.
fn new_salt() -> Result<SaltString> {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng.unwrap_err(), &mut bytes);
    SaltString::encode_b64(&bytes).map_err(|e| Error::Internal(anyhow::anyhow!("salt: {e}")))
}

/// Whether a password may be set.
pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::invalid(format!("the password must have at least {MIN_PASSWORD_LEN} characters")));
    }
    Ok(())
}

/// The argon2id PHC string of a password, with a fresh salt.
pub fn hash_password(password: &str) -> Result<String> {
    check_password(password)?;
    let salt = new_salt()?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(anyhow::anyhow!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `hash` (any argon2 variant and parameters).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the user does not exist, so that a wrong name takes as long
/// to refuse as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        new_salt()
            .ok()
            .and_then(|salt| {
                Argon2::default().hash_password(b"no user has this password", &salt).ok().map(|h| h.to_string())
            })
            .unwrap_or_default()
    });
    &DECOY
}

/// User names: 1–64 letters, digits, `.`, `_`, `-` or `@` (e-mail addresses fit, as a proxy
/// may send them).
pub fn check_user_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok {
        return Err(Error::invalid(format!("user name {name:?}: use 1–64 letters, digits, '.', '_', '-' or '@'")));
    }
    // The audit log's names for the machine's own commands and the open mode.
    if matches!(name, "local" | "open" | "cli") {
        return Err(Error::invalid(format!("user name {name:?} is reserved: the audit log names other actors so")));
    }
    Ok(())
}

/// Splits `seal_pat_<id>_<secret>` into id and secret.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    parse_secret(token, TOKEN_PREFIX)
}

/// Splits `<prefix><id>_<secret>` into id and secret.
fn parse_secret<'a>(token: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = token.strip_prefix(prefix)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == TOKEN_ID_LEN && secret.len() == SECRET_LEN).then_some((id, secret))
}

/// Who changes what, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// A user name, or `cli` for the command line.
    pub name: Option<&'a str>,
    pub peer: Option<&'a str>,
}

impl<'a> Actor<'a> {
    pub const CLI: Actor<'static> = Actor { name: Some("cli"), peer: None };

    fn record(self, action: &'a str, target: Option<&'a str>, detail: Option<&'a str>) -> AuditRecord<'a> {
        AuditRecord { actor: self.name, action, target, detail, peer: self.peer }
    }
}

pub fn user_info(u: &UserRecord) -> UserInfo {
    UserInfo {
        name: u.name.clone(),
        role: u.role,
        source: u.source.clone(),
        has_password: u.password_hash.is_some(),
        created_at: rfc3339(u.created_at),
    }
}

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(secs: i64) -> String {
    // RFC 3339 has four-digit years: the last second of 9999 at most.
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.clamp(0, LAST_RFC3339_SECOND) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// 9999-12-31T23:59:59Z.
const LAST_RFC3339_SECOND: i64 = 253_402_300_799;

/// The longest lifetime a token may be given (a token without one does not expire).
pub const MAX_TOKEN_DAYS: u64 = 36_500;

/// `seal users add`.
pub fn add_user(store: &Store, name: &str, role: Role, password: Option<&str>, actor: Actor<'_>) -> Result<UserInfo> {
    check_user_name(name)?;
    let hash = password.map(hash_password).transpose()?;
    let user =
        UserRecord { name: name.to_owned(), role, password_hash: hash, source: "local".into(), created_at: unix_now() };
    store.add_user(&user, &actor.record("user_added", Some(name), Some(role.as_str())))?;
    Ok(user_info(&user))
}

/// Refuses a change that would leave the server without an admin (and, for the only user,
/// without accounts: a running server would turn open).
fn keep_an_admin(store: &Store, name: &str, what: &str) -> Result<()> {
    let users = store.users()?;
    let admins: Vec<&UserRecord> = users.iter().filter(|u| u.role == Role::Admin).collect();
    if admins.len() == 1 && admins[0].name == name {
        return Err(Error::Conflict(format!(
            "`{name}` is the only admin; {what} would leave nobody to manage the server (make another admin first)"
        )));
    }
    Ok(())
}

/// `seal users set-role`: the user's sessions end.
pub fn set_role(store: &Store, name: &str, role: Role, actor: Actor<'_>) -> Result<()> {
    if role != Role::Admin {
        keep_an_admin(store, name, "demoting them")?;
    }
    Ok(store.set_role(name, role, &actor.record("role_changed", Some(name), Some(role.as_str())))?)
}

/// `seal users set-password`: the user's sessions end.
pub fn set_password(store: &Store, name: &str, password: &str, actor: Actor<'_>) -> Result<()> {
    let hash = hash_password(password)?;
    Ok(store.set_password(name, &hash, &actor.record("password_changed", Some(name), None))?)
}

/// `seal users remove`: sessions end, tokens and share links are revoked.
pub fn remove_user(store: &Store, name: &str, actor: Actor<'_>) -> Result<()> {
    keep_an_admin(store, name, "removing them")?;
    Ok(store.remove_user(name, unix_now(), &actor.record("user_removed", Some(name), None))?)
}

/// The role a token acts with: its owner's, capped by its own.
fn token_role(owner: Role, cap: Option<Role>) -> Role {
    cap.map_or(owner, |c| c.min(owner))
}

pub fn token_info(t: &TokenRecord, owner_role: Option<Role>) -> TokenInfo {
    TokenInfo {
        id: t.id.clone(),
        user: t.user.clone(),
        name: t.label.clone(),
        role: token_role(owner_role.unwrap_or(Role::Viewer), t.role_cap),
        role_cap: t.role_cap,
        created_at: rfc3339(t.created_at),
        expires_at: t.expires_at.map(rfc3339),
        revoked_at: t.revoked_at.map(rfc3339),
    }
}

/// `seal tokens create`: the token is in the answer and nowhere else.
pub fn create_token(
    store: &Store,
    user: &str,
    label: Option<&str>,
    expires_in: Option<std::time::Duration>,
    cap: Option<Role>,
    actor: Actor<'_>,
) -> Result<NewToken> {
    let owner = store.user(user)?.ok_or_else(|| Error::not_found(format!("no user named `{user}`")))?;
    if expires_in.is_some_and(|d| d.as_secs() > MAX_TOKEN_DAYS * 86_400) {
        return Err(Error::invalid(format!(
            "a token's lifetime is at most {MAX_TOKEN_DAYS} days; leave it out for a token that does not expire"
        )));
    }
    if let Some(c) = cap {
        if c > owner.role {
            return Err(Error::invalid(format!(
                "--role {c}: a token cannot have more rights than its owner `{user}` ({})",
                owner.role
            )));
        }
    }
    let now = unix_now();
    let id = random_alphanumeric(TOKEN_ID_LEN);
    let secret = random_alphanumeric(SECRET_LEN);
    let record = TokenRecord {
        id: id.clone(),
        user: user.to_owned(),
        label: label.map(str::to_owned),
        role_cap: cap,
        secret_sha256: sha256_hex(&secret),
        created_at: now,
        expires_at: expires_in.map(|d| now.saturating_add(d.as_secs() as i64)),
        revoked_at: None,
    };
    let detail = cap.map(|c| format!("role cap {c}"));
    store.add_token(&record, &actor.record("token_created", Some(&id), detail.as_deref()))?;
    Ok(NewToken { token: format!("{TOKEN_PREFIX}{id}_{secret}"), info: token_info(&record, Some(owner.role)) })
}

/// Every token, with the role each acts with now.
pub fn list_tokens(store: &Store) -> Result<Vec<TokenInfo>> {
    let roles: HashMap<String, Role> = store.users()?.into_iter().map(|u| (u.name, u.role)).collect();
    Ok(store.tokens()?.iter().map(|t| token_info(t, roles.get(&t.user).copied())).collect())
}

/// `seal tokens revoke`: takes effect on the next request. Accepts the id or the whole token.
pub fn revoke_token(store: &Store, id_or_token: &str, actor: Actor<'_>) -> Result<bool> {
    let id = parse_token(id_or_token).map_or(id_or_token, |(id, _)| id);
    Ok(store.revoke_token(id, unix_now(), &actor.record("token_revoked", Some(id), None))?)
}

/// A session just started: the cookie's value goes to the browser, the record to the store.
pub struct NewSession {
    pub cookie: String,
    pub record: SessionRecord,
}

/// Checks a name and password and starts a session, ending `replaces` (the session the
/// browser held before: the id always changes at sign-in). A wrong name and a wrong password
/// get the same answer and take about as long; both are audited.
pub fn sign_in(
    store: &Store,
    name: &str,
    password: &str,
    hours: u32,
    replaces: Option<&str>,
    peer: Option<&str>,
) -> Result<NewSession> {
    let user = store.user(name)?;
    let exists = user.is_some();
    let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let ok = verify_password(password, hash.unwrap_or_else(|| decoy_hash())) && hash.is_some();
    let Some(user) = user.filter(|_| ok) else {
        let actor = Actor { name: None, peer };
        // The name only when it is an account's: what people type into the wrong field is
        // often a password, which the log must not keep.
        let target = if exists { name } else { "(no such user)" };
        store.audit(&actor.record("sign_in_failed", Some(target), None))?;
        return Err(Error::Unauthorized("wrong user name or password".into()));
    };
    let cookie = random_alphanumeric(SECRET_LEN);
    let now = unix_now();
    let record = SessionRecord {
        id_sha256: sha256_hex(&cookie),
        user: user.name.clone(),
        csrf_token: random_alphanumeric(32),
        created_at: now,
        expires_at: now + i64::from(hours) * 3600,
    };
    let actor = Actor { name: Some(&user.name), peer };
    store.add_session(&record, replaces, &actor.record("sign_in", Some(&user.name), None))?;
    Ok(NewSession { cookie, record })
}

/// A user the reverse proxy names: found, or created with the configured role.
pub fn proxy_user(store: &Store, name: &str, default_role: Role, peer: Option<&str>) -> Result<UserRecord> {
    check_user_name(name).map_err(|e| Error::Unauthorized(format!("the proxy's user header: {e}")))?;
    if let Some(u) = store.user(name)? {
        return Ok(u);
    }
    let user = UserRecord {
        name: name.to_owned(),
        role: default_role,
        password_hash: None,
        source: "proxy".into(),
        created_at: unix_now(),
    };
    let actor = Actor { name: Some(name), peer };
    match store.add_user(&user, &actor.record("user_added", Some(name), Some(default_role.as_str()))) {
        Ok(()) => Ok(user),
        // Two first requests at once: the other one created it.
        Err(crate::store::StoreError::Conflict(_)) => store.user(name)?.ok_or_else(|| Error::not_found(name)),
        Err(e) => Err(e.into()),
    }
}

pub fn share_info(r: &ShareRecord) -> Result<ShareInfo> {
    let target: ShareTarget = serde_json::from_str(&r.target)
        .map_err(|e| Error::Internal(anyhow::anyhow!("share {}: stored target: {e}", r.id)))?;
    Ok(ShareInfo {
        id: r.id.clone(),
        kind: r.kind,
        target,
        created_by: r.created_by.clone(),
        created_at: rfc3339(r.created_at),
        expires_at: rfc3339(r.expires_at),
        revoked_at: r.revoked_at.map(rfc3339),
    })
}

/// Checks that a share's target exists (and a view reads as one).
fn check_target(store: &Store, target: &ShareTarget) -> Result<()> {
    match target {
        ShareTarget::Pair { dataset, pair_id } => {
            store.require_dataset(dataset)?;
            store.pair_record(dataset, pair_id)?;
        }
        ShareTarget::View(query) => {
            let q = seal_shared::browse::PairQuery::from_query(query)
                .map_err(|e| Error::invalid(format!("target `view`: {e}")))?;
            if q.dataset.is_empty() {
                return Err(Error::invalid("target `view`: the view names no dataset"));
            }
            store.require_dataset(&q.dataset)?;
        }
        ShareTarget::Report { dataset, pre, post, labels } => {
            store.require_dataset(dataset)?;
            store.model(pre)?;
            store.model(post)?;
            if let Some(l) = labels {
                store.require_label_set(dataset, l)?;
            }
        }
    }
    Ok(())
}

/// Creates a share link to `target` for `days` days (default 7, at most `max_days`). The token
/// is in the answer and nowhere else; `base` is the server's address for the link.
pub fn create_share(
    store: &Store,
    target: ShareTarget,
    days: Option<f64>,
    max_days: u32,
    base: &str,
    actor: Actor<'_>,
) -> Result<CreatedShare> {
    let days = days.unwrap_or(7.0);
    if !(days > 0.0 && days <= f64::from(max_days)) {
        return Err(Error::invalid(format!(
            "`expires_in_days` must be more than 0 and at most {max_days} (shares.max_days)"
        )));
    }
    check_target(store, &target)?;
    let now = unix_now();
    let id = random_alphanumeric(TOKEN_ID_LEN);
    let secret = random_alphanumeric(SECRET_LEN);
    let record = ShareRecord {
        id: id.clone(),
        secret_sha256: sha256_hex(&secret),
        created_by: actor.name.unwrap_or("open").to_owned(),
        kind: target.kind(),
        target: serde_json::to_string(&target).map_err(|e| Error::Internal(e.into()))?,
        created_at: now,
        expires_at: now + (days * 86_400.0).round().max(1.0) as i64,
        revoked_at: None,
    };
    store.add_share(&record, &actor.record("share_created", Some(&id), Some(record.kind.as_str())))?;
    let token = format!("{SHARE_PREFIX}{id}_{secret}");
    Ok(CreatedShare {
        id,
        url: format!("{}/s/{token}", base.trim_end_matches('/')),
        token,
        share: share_info(&record)?,
    })
}

/// The share links `user` created, or every one (`None`, for an admin), newest first.
pub fn list_shares(store: &Store, user: Option<&str>) -> Result<Vec<ShareInfo>> {
    let mut out = Vec::new();
    for r in store.shares()?.iter().rev().filter(|r| user.is_none_or(|u| r.created_by == u)) {
        out.push(share_info(r)?);
    }
    Ok(out)
}

/// Revokes a share link at once. Its creator may, and an admin (`any`).
pub fn revoke_share(store: &Store, id: &str, any: bool, actor: Actor<'_>) -> Result<()> {
    let sh = store.share(id)?.ok_or_else(|| Error::not_found(format!("no share link `{id}`")))?;
    if !any && Some(sh.created_by.as_str()) != actor.name {
        return Err(Error::not_found(format!("no share link `{id}` of yours")));
    }
    store.revoke_share(id, unix_now(), &actor.record("share_revoked", Some(id), None))?;
    Ok(())
}

/// What a running server checks credentials against: the users, tokens and live sessions of
/// the store, held in memory and reloaded after every change the server makes. While the
/// server runs it holds the store, so no other process changes these tables behind its back.
#[derive(Default)]
pub struct Directory {
    snapshot: RwLock<Snapshot>,
    /// Held from reading the tables to replacing the snapshot, so that two reloads cannot
    /// finish in the wrong order and put back what a later change removed.
    reloading: std::sync::Mutex<()>,
}

#[derive(Default)]
struct Snapshot {
    users: HashMap<String, UserRecord>,
    tokens: HashMap<String, TokenRecord>,
    sessions: HashMap<String, SessionRecord>,
    shares: HashMap<String, ShareRecord>,
}

impl Directory {
    pub fn load(store: &Store) -> Result<Directory> {
        let d = Directory::default();
        d.reload(store)?;
        Ok(d)
    }

    /// Reads the tables again (after a sign-in, a role change, a revocation …).
    pub fn reload(&self, store: &Store) -> Result<()> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let snapshot = Snapshot {
            users: store.users()?.into_iter().map(|u| (u.name.clone(), u)).collect(),
            tokens: store.tokens()?.into_iter().map(|t| (t.id.clone(), t)).collect(),
            sessions: store.sessions(unix_now())?.into_iter().map(|s| (s.id_sha256.clone(), s)).collect(),
            shares: store.shares()?.into_iter().map(|s| (s.id.clone(), s)).collect(),
        };
        *self.snapshot.write().map_err(|_| Error::Internal(anyhow::anyhow!("account directory lock poisoned")))? =
            snapshot;
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn has_users(&self) -> bool {
        !self.read().users.is_empty()
    }

    pub fn user(&self, name: &str) -> Option<UserRecord> {
        self.read().users.get(name).cloned()
    }

    /// The principal of an API token, or why it is refused (always 401).
    pub fn check_token(&self, token: &str) -> Result<Principal> {
        let unauthorized = |why: &str| Error::Unauthorized(format!("the API token {why}"));
        let (id, secret) = parse_token(token).ok_or_else(|| unauthorized("is malformed"))?;
        let snap = self.read();
        let t = snap.tokens.get(id).ok_or_else(|| unauthorized("is unknown"))?;
        let digest = sha256_hex(secret);
        // Compare digests, not secrets: equal-length hex strings leak nothing by their timing
        // that would help guess the secret.
        if digest != t.secret_sha256 {
            return Err(unauthorized("is unknown"));
        }
        if t.revoked_at.is_some() {
            return Err(unauthorized("was revoked"));
        }
        if t.expires_at.is_some_and(|e| e <= unix_now()) {
            return Err(unauthorized("has expired"));
        }
        let owner = snap.users.get(&t.user).ok_or_else(|| unauthorized("belongs to a removed user"))?;
        Ok(Principal {
            user: Some(owner.name.clone()),
            role: token_role(owner.role, t.role_cap),
            via: Via::Token { id: t.id.clone() },
        })
    }

    /// The principal of a share link's token: 404 when it is unknown or revoked, 410 when it
    /// has expired.
    pub fn check_share(&self, token: &str) -> Result<Principal> {
        let missing = || Error::not_found("this share link does not exist or was revoked");
        let (id, secret) = parse_secret(token, SHARE_PREFIX).ok_or_else(missing)?;
        let snap = self.read();
        let sh = snap.shares.get(id).ok_or_else(missing)?;
        if sha256_hex(secret) != sh.secret_sha256 {
            return Err(missing());
        }
        if sh.revoked_at.is_some() {
            return Err(Error::not_found("this share link was revoked"));
        }
        if sh.expires_at <= unix_now() {
            return Err(Error::Gone(format!("this share link expired at {}", rfc3339(sh.expires_at))));
        }
        // A link speaks for its creator: it stops when they are removed or may no longer share
        // (the machine's own commands and the open mode create links under reserved names).
        if check_user_name(&sh.created_by).is_ok()
            && snap.users.get(&sh.created_by).is_none_or(|u| u.role < Role::Reviewer)
        {
            return Err(Error::not_found(
                "this share link no longer works: the account that created it was removed or may no longer share",
            ));
        }
        let target = share_info(sh)?.target;
        Ok(Principal { user: None, role: Role::Viewer, via: Via::Share { id: sh.id.clone(), target } })
    }

    /// The principal of a session cookie, if it names a live session of an existing user.
    pub fn check_session(&self, cookie: &str) -> Option<Principal> {
        let snap = self.read();
        let s = snap.sessions.get(&sha256_hex(cookie))?;
        if s.expires_at <= unix_now() {
            return None;
        }
        let user = snap.users.get(&s.user)?;
        Some(Principal {
            user: Some(user.name.clone()),
            role: user.role,
            via: Via::Session { id_sha256: s.id_sha256.clone(), csrf_token: s.csrf_token.clone() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_083_199), "2026-11-30T23:59:59Z");
        // Beyond four-digit years: the last second RFC 3339 can write, not a panic.
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn the_only_admin_stays_even_when_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("seal.duckdb")).unwrap();
        let actor = Actor { name: None, peer: None };
        add_user(&store, "ana", Role::Admin, None, actor).unwrap();
        // Removing the last account would turn a running server open to anyone on its machine.
        let err = remove_user(&store, "ana", actor).unwrap_err().to_string();
        assert!(err.contains("only admin"), "{err}");
        assert!(set_role(&store, "ana", Role::Viewer, actor).is_err());
        add_user(&store, "bo", Role::Admin, None, actor).unwrap();
        remove_user(&store, "ana", actor).unwrap();
    }

    #[test]
    fn tokens_parse_only_in_their_shape() {
        let t = format!("{TOKEN_PREFIX}{}_{}", "a".repeat(TOKEN_ID_LEN), "b".repeat(SECRET_LEN));
        assert_eq!(parse_token(&t), Some(("aaaaaaaaaaaa", &*"b".repeat(SECRET_LEN))));
        assert_eq!(parse_token(&t[1..]), None);
        assert_eq!(parse_token(&format!("{t}x")), None);
    }

    #[test]
    fn passwords_are_argon2id_and_verified() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse battery!", &h));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn a_token_acts_with_the_lower_of_its_cap_and_its_owners_role() {
        assert_eq!(token_role(Role::Admin, Some(Role::Viewer)), Role::Viewer);
        assert_eq!(token_role(Role::Viewer, Some(Role::Admin)), Role::Viewer);
        assert_eq!(token_role(Role::Editor, None), Role::Editor);
    }
}
