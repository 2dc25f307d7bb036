//! Users, API tokens, browser sessions and the audit log: the tables of `0008_accounts.sql`.
//! Secrets never reach the store: passwords as argon2id PHC strings, token secrets and session
//! ids as their SHA-256. Times are Unix seconds.

use duckdb::{params, OptionalExt};
use seal_shared::auth::AuditEntry;
use seal_shared::Role;

use super::{word_at, Context, Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub name: String,
    pub role: Role,
    pub password_hash: Option<String>,
    /// `local` or `proxy`.
    pub source: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub user: String,
    pub label: Option<String>,
    pub role_cap: Option<Role>,
    pub secret_sha256: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id_sha256: String,
    pub user: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShareRecord {
    pub id: String,
    pub secret_sha256: String,
    pub created_by: String,
    pub kind: seal_shared::ShareKind,
    /// `ShareTarget` as JSON.
    pub target: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

const SHARE_COLUMNS: &str = "id, secret_sha256, created_by, kind, target, created_at, expires_at, revoked_at";

fn share_row(r: &duckdb::Row<'_>) -> duckdb::Result<ShareRecord> {
    Ok(ShareRecord {
        id: r.get(0)?,
        secret_sha256: r.get(1)?,
        created_by: r.get(2)?,
        kind: word_at(r, 3)?,
        target: r.get(4)?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

const USER_COLUMNS: &str = "name, role, password_hash, source, created_at";
const TOKEN_COLUMNS: &str = "id, user_name, label, role_cap, secret_sha256, created_at, expires_at, revoked_at";

fn user_row(r: &duckdb::Row<'_>) -> duckdb::Result<UserRecord> {
    Ok(UserRecord {
        name: r.get(0)?,
        role: word_at(r, 1)?,
        password_hash: r.get(2)?,
        source: r.get(3)?,
        created_at: r.get(4)?,
    })
}

fn token_row(r: &duckdb::Row<'_>) -> duckdb::Result<TokenRecord> {
    let cap: Option<String> = r.get(3)?;
    let role_cap = cap
        .map(|w| w.parse::<Role>())
        .transpose()
        .map_err(|e| duckdb::Error::FromSqlConversionFailure(3, duckdb::types::Type::Text, Box::new(e)))?;
    Ok(TokenRecord {
        id: r.get(0)?,
        user: r.get(1)?,
        label: r.get(2)?,
        role_cap,
        secret_sha256: r.get(4)?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

/// A row of the audit log to write.
#[derive(Debug, Clone, Default)]
pub struct AuditRecord<'a> {
    pub actor: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub peer: Option<&'a str>,
}

impl Store {
    pub fn users(&self) -> Result<Vec<UserRecord>> {
        self.rows(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"), user_row, "read users")
    }

    pub fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        self.conn
            .query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?"), params![name], user_row)
            .optional()
            .ctx("read user")
    }

    pub fn count_users(&self) -> Result<u64> {
        let n: i64 = self.conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).ctx("count users")?;
        Ok(n as u64)
    }

    /// Adds a user and its audit row; a taken name is a conflict.
    pub fn add_user(&self, u: &UserRecord, audit: &AuditRecord<'_>) -> Result<()> {
        if self.user(&u.name)?.is_some() {
            return Err(StoreError::Conflict(format!("a user named `{}` exists", u.name)));
        }
        let added = self.in_transaction("add user", |s| {
            s.conn
                .execute(
                    &format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?)"),
                    params![u.name, u.role.as_str(), u.password_hash, u.source, u.created_at],
                )
                .ctx("add user")?;
            s.audit(audit)
        });
        // Another connection may have added the same name since the check above.
        match added {
            Err(StoreError::Db { .. }) if self.user(&u.name)?.is_some() => {
                Err(StoreError::Conflict(format!("a user named `{}` exists", u.name)))
            }
            other => other,
        }
    }

    fn require_user(&self, name: &str) -> Result<UserRecord> {
        self.user(name)?.ok_or_else(|| StoreError::NotFound(format!("no user named `{name}`")))
    }

    /// Changes a user's role and ends their sessions.
    pub fn set_role(&self, name: &str, role: Role, audit: &AuditRecord<'_>) -> Result<()> {
        self.require_user(name)?;
        self.in_transaction("set role", |s| {
            s.conn.execute("UPDATE users SET role = ? WHERE name = ?", params![role.as_str(), name]).ctx("set role")?;
            s.conn.execute("DELETE FROM sessions WHERE user_name = ?", params![name]).ctx("end sessions")?;
            s.audit(audit)
        })
    }

    /// Replaces a user's password hash and ends their sessions.
    pub fn set_password(&self, name: &str, hash: &str, audit: &AuditRecord<'_>) -> Result<()> {
        self.require_user(name)?;
        self.in_transaction("set password", |s| {
            s.conn
                .execute("UPDATE users SET password_hash = ? WHERE name = ?", params![hash, name])
                .ctx("set password")?;
            s.conn.execute("DELETE FROM sessions WHERE user_name = ?", params![name]).ctx("end sessions")?;
            s.audit(audit)
        })
    }

    /// Removes a user: their sessions end, and their tokens and share links are revoked.
    pub fn remove_user(&self, name: &str, now: i64, audit: &AuditRecord<'_>) -> Result<()> {
        self.require_user(name)?;
        self.in_transaction("remove user", |s| {
            s.conn.execute("DELETE FROM users WHERE name = ?", params![name]).ctx("remove user")?;
            s.conn.execute("DELETE FROM sessions WHERE user_name = ?", params![name]).ctx("end sessions")?;
            s.conn
                .execute(
                    "UPDATE api_tokens SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL",
                    params![now, name],
                )
                .ctx("revoke tokens")?;
            s.conn
                .execute(
                    "UPDATE shares SET revoked_at = ? WHERE created_by = ? AND revoked_at IS NULL",
                    params![now, name],
                )
                .ctx("revoke share links")?;
            s.audit(audit)
        })
    }

    pub fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.rows(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"), token_row, "read tokens")
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        self.conn
            .query_row(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = ?"), params![id], token_row)
            .optional()
            .ctx("read token")
    }

    pub fn add_token(&self, t: &TokenRecord, audit: &AuditRecord<'_>) -> Result<()> {
        self.require_user(&t.user)?;
        self.in_transaction("add token", |s| {
            s.conn
                .execute(
                    &format!("INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                    params![
                        t.id,
                        t.user,
                        t.label,
                        t.role_cap.map(Role::as_str),
                        t.secret_sha256,
                        t.created_at,
                        t.expires_at,
                        t.revoked_at
                    ],
                )
                .ctx("add token")?;
            s.audit(audit)
        })
    }

    /// Revokes a token; revoking it again changes nothing and writes no audit row. Returns
    /// whether it was revoked now.
    pub fn revoke_token(&self, id: &str, now: i64, audit: &AuditRecord<'_>) -> Result<bool> {
        let t = self.token(id)?.ok_or_else(|| StoreError::NotFound(format!("no token `{id}`")))?;
        self.mark_revoked("api_tokens", id, t.revoked_at, now, audit)
    }

    /// Sets `revoked_at` of row `id` of `table` with its audit row, unless it is revoked already.
    fn mark_revoked(
        &self,
        table: &str,
        id: &str,
        revoked_at: Option<i64>,
        now: i64,
        audit: &AuditRecord<'_>,
    ) -> Result<bool> {
        if revoked_at.is_some() {
            return Ok(false);
        }
        let what = format!("revoke in {table}");
        self.in_transaction(&what, |s| {
            s.conn.execute(&format!("UPDATE {table} SET revoked_at = ? WHERE id = ?"), params![now, id]).ctx(&what)?;
            s.audit(audit)
        })?;
        Ok(true)
    }

    /// Sessions that have not expired at `now`.
    pub fn sessions(&self, now: i64) -> Result<Vec<SessionRecord>> {
        self.rows_with(
            "SELECT id_sha256, user_name, csrf_token, created_at, expires_at FROM sessions WHERE expires_at > ?",
            params![now],
            |r| {
                Ok(SessionRecord {
                    id_sha256: r.get(0)?,
                    user: r.get(1)?,
                    csrf_token: r.get(2)?,
                    created_at: r.get(3)?,
                    expires_at: r.get(4)?,
                })
            },
            "read sessions",
        )
    }

    /// Starts a session (ending the one it replaces, if any) and writes the sign-in's audit row.
    pub fn add_session(&self, s: &SessionRecord, replaces: Option<&str>, audit: &AuditRecord<'_>) -> Result<()> {
        self.in_transaction("add session", |st| {
            st.conn.execute("DELETE FROM sessions WHERE expires_at <= ?", params![s.created_at]).ctx("prune sessions")?;
            if let Some(old) = replaces {
                st.conn.execute("DELETE FROM sessions WHERE id_sha256 = ?", params![old]).ctx("end session")?;
            }
            st.conn
                .execute(
                    "INSERT INTO sessions (id_sha256, user_name, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                    params![s.id_sha256, s.user, s.csrf_token, s.created_at, s.expires_at],
                )
                .ctx("add session")?;
            st.audit(audit)
        })
    }

    /// Ends a session (sign-out) and writes its audit row.
    pub fn end_session(&self, id_sha256: &str, audit: &AuditRecord<'_>) -> Result<()> {
        self.in_transaction("end session", |s| {
            s.conn.execute("DELETE FROM sessions WHERE id_sha256 = ?", params![id_sha256]).ctx("end session")?;
            s.audit(audit)
        })
    }

    pub fn shares(&self) -> Result<Vec<ShareRecord>> {
        self.rows(&format!("SELECT {SHARE_COLUMNS} FROM shares ORDER BY created_at, id"), share_row, "read shares")
    }

    pub fn share(&self, id: &str) -> Result<Option<ShareRecord>> {
        self.conn
            .query_row(&format!("SELECT {SHARE_COLUMNS} FROM shares WHERE id = ?"), params![id], share_row)
            .optional()
            .ctx("read share")
    }

    pub fn add_share(&self, sh: &ShareRecord, audit: &AuditRecord<'_>) -> Result<()> {
        self.in_transaction("add share", |s| {
            s.conn
                .execute(
                    &format!("INSERT INTO shares ({SHARE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                    params![
                        sh.id,
                        sh.secret_sha256,
                        sh.created_by,
                        sh.kind.as_str(),
                        sh.target,
                        sh.created_at,
                        sh.expires_at,
                        sh.revoked_at
                    ],
                )
                .ctx("add share")?;
            s.audit(audit)
        })
    }

    /// Revokes a share link; revoking it again changes nothing and writes no audit row.
    pub fn revoke_share(&self, id: &str, now: i64, audit: &AuditRecord<'_>) -> Result<bool> {
        let sh = self.share(id)?.ok_or_else(|| StoreError::NotFound(format!("no share link `{id}`")))?;
        self.mark_revoked("shares", id, sh.revoked_at, now, audit)
    }

    /// Appends one row to the audit log.
    pub fn audit(&self, a: &AuditRecord<'_>) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO audit_log (occurred_at, actor, action, target, detail, peer) VALUES (?, ?, ?, ?, ?, ?)",
                params![unix_now(), a.actor, a.action, a.target, a.detail, a.peer],
            )
            .ctx("write audit log")?;
        Ok(())
    }

    /// The newest `limit` rows of the audit log, newest first.
    pub fn audit_log(&self, limit: u64) -> Result<Vec<AuditEntry>> {
        self.rows_with(
            "SELECT id, strftime(make_timestamp(occurred_at * 1000000), '%Y-%m-%dT%H:%M:%SZ'), actor, action, target,
                    detail, peer
             FROM audit_log ORDER BY id DESC LIMIT ?",
            params![limit as i64],
            |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    detail: r.get(5)?,
                    peer: r.get(6)?,
                })
            },
            "read audit log",
        )
    }

    fn rows<T>(&self, sql: &str, f: impl FnMut(&duckdb::Row<'_>) -> duckdb::Result<T>, what: &str) -> Result<Vec<T>> {
        self.rows_with(sql, [], f, what)
    }

    fn rows_with<T>(
        &self,
        sql: &str,
        params: impl duckdb::Params,
        f: impl FnMut(&duckdb::Row<'_>) -> duckdb::Result<T>,
        what: &str,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare(sql).ctx(what)?;
        let rows = stmt.query_map(params, f).ctx(what)?.collect::<std::result::Result<Vec<_>, _>>().ctx(what)?;
        Ok(rows)
    }

    /// Runs `f` in one transaction: all of its writes land, or none.
    fn in_transaction<T>(&self, what: &str, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let tx = self.conn.unchecked_transaction().ctx(what)?;
        let out = f(self)?;
        tx.commit().ctx(what)?;
        Ok(out)
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
