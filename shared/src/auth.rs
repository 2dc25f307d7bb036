//! Accounts, sessions, API tokens and the audit log on the wire.

use serde::{Deserialize, Serialize};

use crate::{AuthMode, Role};

/// Body of `POST /api/session` (sign-in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub name: String,
    pub password: String,
}

/// `GET /api/session`: who is asking, and what they may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionInfo {
    /// The signed-in user; absent in the open single-user mode.
    pub user: Option<String>,
    pub role: Role,
    pub mode: AuthMode,
    /// How this request was authenticated: `open`, `session`, `token` or `proxy`.
    pub via: String,
    /// The token a browser session sends in `X-CSRF-Token` with every write; only for
    /// cookie sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    /// `local` (created by an admin) or `proxy` (first seen through the reverse proxy).
    pub source: String,
    /// Whether the user can sign in with a password.
    pub has_password: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// An API token, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// The public part of the token (`seal_pat_<id>_…`).
    pub id: String,
    pub user: String,
    /// A label for people (`--name`).
    pub name: Option<String>,
    /// The role the token acts with: its own cap, or its owner's role when lower.
    pub role: Role,
    /// The cap set at creation, if any.
    pub role_cap: Option<Role>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A token just created: `token` is shown this once and never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    pub token: String,
    pub info: TokenInfo,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    /// Who did it: a user name, `cli` for the command line on the server's machine, or absent
    /// for an anonymous request (a failed sign-in).
    pub actor: Option<String>,
    /// e.g. `sign_in`, `sign_in_failed`, `user_added`, `role_changed`, `token_created`,
    /// `job_started`.
    pub action: String,
    /// What it was done to: a user, a token id, a job.
    pub target: Option<String>,
    /// More about it (the new role, the job's kind).
    pub detail: Option<String>,
    /// The client address, for requests.
    pub peer: Option<String>,
}

/// Body of `POST /api/users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    /// At least 10 characters; without one the user can only sign in through the proxy.
    #[serde(default)]
    pub password: Option<String>,
}

/// Body of `PATCH /api/users/{name}`: what to change. Either change ends the user's sessions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub password: Option<String>,
}

/// Body of `POST /api/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    /// The owner.
    pub user: String,
    /// A label for people.
    #[serde(default)]
    pub name: Option<String>,
    /// Days until it expires; absent: never.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
    /// A cap on the role it acts with (at most its owner's).
    #[serde(default)]
    pub role: Option<Role>,
}

/// What a share link shows: exactly one of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShareTarget {
    /// One pair.
    Pair { dataset: String, pair_id: String },
    /// One example-browser view: its query string (`dataset=hh&regime=resisted&…`); paging
    /// and sorting stay free, the filters do not.
    View(String),
    /// One study's report.
    Report {
        dataset: String,
        pre: String,
        post: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        labels: Option<String>,
    },
}

impl ShareTarget {
    pub fn kind(&self) -> crate::ShareKind {
        match self {
            ShareTarget::Pair { .. } => crate::ShareKind::Pair,
            ShareTarget::View(_) => crate::ShareKind::View,
            ShareTarget::Report { .. } => crate::ShareKind::Report,
        }
    }
}

/// Body of `POST /api/shares`: a target and a lifetime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShare {
    pub target: ShareTarget,
    /// Days until the link stops working (default 7, at most the server's `shares.max_days`);
    /// fractions are allowed.
    #[serde(default)]
    pub expires_in_days: Option<f64>,
}

/// A share link, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShareInfo {
    pub id: String,
    pub kind: crate::ShareKind,
    pub target: ShareTarget,
    pub created_by: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

/// A share link just created: `token` and `url` hold its secret and are shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedShare {
    pub id: String,
    /// `seal_shr_…`: sent as `Authorization: Bearer` it reads exactly the target.
    pub token: String,
    /// The page that opens the target for someone without an account (`/s/<token>`).
    pub url: String,
    pub share: ShareInfo,
}
