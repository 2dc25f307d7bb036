//! Sign-in, sessions, and the admin's routes for users, API tokens and the audit log.

use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use seal_shared as wire;
use wire::auth::{
    AuditEntry, NewToken, NewTokenRequest, NewUser, SessionInfo, SignIn, TokenInfo, UserChange, UserInfo,
};

use super::{read, ApiError, AppState, JsonBody};
use crate::pipeline::accounts::{self, Actor, Principal, Via, SESSION_COOKIE};

/// The principal the access check found (every non-public route has one).
pub(super) fn principal_of(req: &HttpRequest) -> Option<Principal> {
    req.extensions().get::<Principal>().cloned()
}

/// The client's address (through the trusted proxies), for the audit log.
pub(super) fn peer_of(req: &HttpRequest) -> Option<String> {
    client_of(req).map(|ip| ip.to_string())
}

/// The client's address, through the trusted proxies (`server.trusted_proxies`).
fn client_of(req: &HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => state.access.client_ip(peer, req.headers()),
        None => peer,
    }
}

fn session_info(state: &AppState, p: &Principal) -> SessionInfo {
    SessionInfo {
        user: p.user.clone(),
        role: p.role,
        mode: state.access.mode,
        via: p.via.name().into(),
        csrf_token: match &p.via {
            Via::Session { csrf_token, .. } => Some(csrf_token.clone()),
            _ => None,
        },
    }
}

fn session_cookie(state: &AppState, value: String, age: CookieAge) -> Cookie<'static> {
    let path = if state.base_path.is_empty() { "/".to_owned() } else { state.base_path.clone() };
    Cookie::build(SESSION_COOKIE, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.access.secure_cookies)
        .max_age(age)
        .finish()
}

/// Signs in with a name and password.
///
/// Sets the session cookie (HttpOnly, SameSite=Lax, Secure when the server's public URL is
/// https); the session id is new at every sign-in. The answer holds the CSRF token that writes
/// must send in `X-CSRF-Token`. A wrong name and a wrong password get the same 401; too many
/// attempts for one name or from one address get 429.
#[utoipa::path(
    post,
    path = "/api/session",
    tag = "accounts",
    operation_id = "signIn",
    request_body = wire::auth::SignIn,
    security(()),
    responses(
        (status = 200, description = "Signed in; the cookie is set", body = wire::auth::SessionInfo),
        (status = 400, description = "The body is not a name and password", body = wire::ApiError),
        (status = 401, description = "Wrong user name or password", body = wire::ApiError),
        (status = 403, description = "The request came from another site's page (Origin)", body = wire::ApiError),
        (status = 429, description = "Too many sign-ins; wait a minute", body = wire::ApiError),
    )
)]
pub(super) async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    JsonBody(body): JsonBody<SignIn>,
) -> Result<HttpResponse, ApiError> {
    let access = &state.access;
    if let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let host = req.headers().get(actix_web::http::header::HOST).and_then(|h| h.to_str().ok());
        if !access.same_origin(origin, host) {
            return Err(super::error(wire::ErrorCode::Forbidden, "sign in from this server's own pages (Origin)"));
        }
    }
    if !access.sign_in_allowed(&body.name, client_of(&req)) {
        return Err(super::error(
            wire::ErrorCode::TooManyRequests,
            "too many sign-in attempts; wait a minute and try again",
        ));
    }
    let replaces = req.cookie(SESSION_COOKIE).map(|c| accounts::sha256_hex(c.value()));
    let (hours, peer, st) = (access.session_hours, peer_of(&req), state.clone());
    let session = read(&state, move |s| {
        let out = accounts::sign_in(s, &body.name, &body.password, hours, replaces.as_deref(), peer.as_deref());
        // A failed sign-in changes no account; a successful one adds a session.
        if out.is_ok() {
            st.access.directory.reload(s)?;
        }
        out
    })
    .await?;
    let principal = access
        .directory
        .check_session(&session.cookie)
        .ok_or_else(|| super::internal("the new session is not in the directory"))?;
    let cookie = session_cookie(&state, session.cookie, CookieAge::hours(i64::from(hours)));
    Ok(HttpResponse::Ok().cookie(cookie).json(session_info(&state, &principal)))
}

/// Who is signed in, with which role, and how.
#[utoipa::path(
    get,
    path = "/api/session",
    tag = "accounts",
    operation_id = "whoAmI",
    security(("token" = ["viewer"]), ("session" = ["viewer"]), ("share" = ["pair", "view", "report"])),
    responses((status = 200, body = wire::auth::SessionInfo))
)]
pub(super) async fn who_am_i(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let p = principal_of(&req).ok_or_else(|| super::internal("no principal"))?;
    Ok(HttpResponse::Ok().json(session_info(&state, &p)))
}

/// Signs out: the session ends and the cookie is cleared.
#[utoipa::path(
    delete,
    path = "/api/session",
    tag = "accounts",
    operation_id = "signOut",
    security(("session" = ["viewer"])),
    responses((status = 204, description = "Signed out"))
)]
pub(super) async fn sign_out(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let p = principal_of(&req).ok_or_else(|| super::internal("no principal"))?;
    if let Via::Session { id_sha256, .. } = p.via {
        let (st, peer) = (state.clone(), peer_of(&req));
        read(&state, move |s| {
            let actor = Actor { name: p.user.as_deref(), peer: peer.as_deref() };
            let record = crate::store::AuditRecord {
                actor: actor.name,
                action: "sign_out",
                target: actor.name,
                detail: None,
                peer: actor.peer,
            };
            s.end_session(&id_sha256, &record)?;
            st.access.directory.reload(s)
        })
        .await?;
    }
    let cookie = session_cookie(&state, String::new(), CookieAge::ZERO);
    Ok(HttpResponse::NoContent().cookie(cookie).finish())
}

/// Runs an account change as the request's user and reloads the directory after it; jobs
/// whose owners may no longer run them stop ([`crate::pipeline::jobs::Jobs::owners_changed`]).
async fn change<T: Send + 'static>(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    f: impl FnOnce(&crate::store::Store, Actor<'_>) -> crate::pipeline::PipelineResult<T> + Send + 'static,
) -> Result<T, ApiError> {
    let principal = principal_of(req);
    let local = principal.as_ref().is_some_and(|p| p.via == accounts::Via::Local);
    // The audit log's actor: the user, `local` for a command of the server's own machine.
    let user = principal.and_then(|p| p.user).unwrap_or_else(|| if local { "local" } else { "open" }.to_owned());
    let (peer, st) = (peer_of(req), state.clone());
    read(state, move |s| {
        // One change at a time: each checks the accounts before it writes (the last admin is
        // neither removed nor demoted), which two at once could each pass.
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        // Reloaded whatever the outcome: a change of several steps may fail after one of them
        // was stored (a role set, then a password refused).
        let out = f(s, Actor { name: Some(&user), peer: peer.as_deref() });
        st.access.directory.reload(s)?;
        // The jobs of a user removed or no longer an editor stop. The change is stored
        // whatever becomes of this: its answer stands (a new token's secret is shown once).
        if let Err(e) = st.jobs.owners_changed(s) {
            tracing::error!("stopping the jobs of users who may no longer run them: {e:#}");
        }
        out
    })
    .await
}

/// Every user.
#[utoipa::path(
    get,
    path = "/api/users",
    tag = "accounts",
    operation_id = "listUsers",
    security(("token" = ["admin"]), ("session" = ["admin"])),
    responses((status = 200, body = Vec<wire::auth::UserInfo>))
)]
pub(super) async fn users(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let users: Vec<UserInfo> = read(&state, |s| Ok(s.users()?.iter().map(accounts::user_info).collect())).await?;
    Ok(HttpResponse::Ok().json(users))
}

/// Adds a user.
#[utoipa::path(
    post,
    path = "/api/users",
    tag = "accounts",
    operation_id = "addUser",
    request_body = wire::auth::NewUser,
    security(("token" = ["admin"]), ("session" = ["admin"])),
    responses(
        (status = 201, body = wire::auth::UserInfo),
        (status = 400, description = "A bad name, role or password", body = wire::ApiError),
        (status = 409, description = "The name is taken", body = wire::ApiError),
    )
)]
pub(super) async fn add_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    JsonBody(u): JsonBody<NewUser>,
) -> Result<HttpResponse, ApiError> {
    let info =
        change(&state, &req, move |s, actor| accounts::add_user(s, &u.name, u.role, u.password.as_deref(), actor))
            .await?;
    Ok(HttpResponse::Created().json(info))
}

/// Changes a user's role or password; either ends the user's sessions. A role below editor
/// stops the user's queued and running jobs.
#[utoipa::path(
    patch,
    path = "/api/users/{name}",
    tag = "accounts",
    operation_id = "changeUser",
    params(("name" = String, Path)),
    request_body = wire::auth::UserChange,
    security(("token" = ["admin"]), ("session" = ["admin"])),
    responses(
        (status = 200, body = wire::auth::UserInfo),
        (status = 400, description = "A bad role or password", body = wire::ApiError),
        (status = 404, description = "No such user", body = wire::ApiError),
        (status = 409, description = "The only admin would be demoted", body = wire::ApiError),
    )
)]
pub(super) async fn change_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    JsonBody(c): JsonBody<UserChange>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let info = change(&state, &req, move |s, actor| {
        // Checked before anything changes: a refused password leaves the role as it was.
        if let Some(pw) = &c.password {
            accounts::check_password(pw)?;
        }
        if let Some(role) = c.role {
            accounts::set_role(s, &name, role, actor)?;
        }
        if let Some(pw) = &c.password {
            accounts::set_password(s, &name, pw, actor)?;
        }
        let u = s.user(&name)?.ok_or_else(|| crate::pipeline::Error::not_found(format!("no user named `{name}`")))?;
        Ok(accounts::user_info(&u))
    })
    .await?;
    Ok(HttpResponse::Ok().json(info))
}

/// Removes a user: their sessions end, their tokens and share links are revoked, and their
/// queued and running jobs stop.
#[utoipa::path(
    delete,
    path = "/api/users/{name}",
    tag = "accounts",
    operation_id = "removeUser",
    params(("name" = String, Path)),
    security(("token" = ["admin"]), ("session" = ["admin"])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such user", body = wire::ApiError),
        (status = 409, description = "The only admin would be removed", body = wire::ApiError),
    )
)]
pub(super) async fn remove_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    change(&state, &req, move |s, actor| accounts::remove_user(s, &name, actor)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every API token (without secrets).
#[utoipa::path(
    get,
    path = "/api/tokens",
    tag = "accounts",
    operation_id = "listTokens",
    security(("token" = ["admin"]), ("session" = ["admin"])),
    responses((status = 200, body = Vec<wire::auth::TokenInfo>))
)]
pub(super) async fn tokens(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let t: Vec<TokenInfo> = read(&state, accounts::list_tokens).await?;
    Ok(HttpResponse::Ok().json(t))
}

/// Creates an API token; the answer is the only place its secret appears.
#[utoipa::path(
    post,
    path = "/api/tokens",
    tag = "accounts",
    operation_id = "createToken",
    request_body = wire::auth::NewTokenRequest,
    security(("token" = ["admin"]), ("session" = ["admin"])),
    responses(
        (status = 201, body = wire::auth::NewToken),
        (status = 400, description = "A cap above the owner's role", body = wire::ApiError),
        (status = 404, description = "No such user", body = wire::ApiError),
    )
)]
pub(super) async fn create_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    JsonBody(t): JsonBody<NewTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let token: NewToken = change(&state, &req, move |s, actor| {
        let expires = t.expires_in_days.map(|d| std::time::Duration::from_secs(u64::from(d) * 86_400));
        accounts::create_token(s, &t.user, t.name.as_deref(), expires, t.role, actor)
    })
    .await?;
    Ok(HttpResponse::Created().json(token))
}

/// Revokes an API token at once.
#[utoipa::path(
    delete,
    path = "/api/tokens/{id}",
    tag = "accounts",
    operation_id = "revokeToken",
    params(("id" = String, Path)),
    security(("token" = ["admin"]), ("session" = ["admin"])),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such token", body = wire::ApiError))
)]
pub(super) async fn revoke_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    change(&state, &req, move |s, actor| accounts::revoke_token(s, &id, actor)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// At most this many rows, newest first (default 200, at most 10,000).
    limit: Option<u64>,
}

/// The audit log, newest first: sign-ins and failures, account and role changes, tokens, jobs.
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "accounts",
    operation_id = "auditLog",
    params(AuditQuery),
    security(("token" = ["admin"]), ("session" = ["admin"])),
    responses((status = 200, body = Vec<wire::auth::AuditEntry>))
)]
pub(super) async fn audit(state: web::Data<AppState>, q: web::Query<AuditQuery>) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(200).min(10_000);
    let rows: Vec<AuditEntry> = read(&state, move |s| Ok(s.audit_log(limit)?)).await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// The base of links to this server: `server.public_url`, or the address the request came to.
fn base_url(state: &AppState, req: &HttpRequest) -> String {
    match &state.access.public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let info = req.connection_info();
            format!("{}://{}{}", info.scheme(), info.host(), state.base_path)
        }
    }
}

/// Creates a share link: read-only access to one pair, one example-browser view or one report
/// for anyone who has the link, until it expires or is revoked.
#[utoipa::path(
    post,
    path = "/api/shares",
    tag = "shares",
    operation_id = "createShare",
    request_body = wire::auth::NewShare,
    security(("token" = ["reviewer"]), ("session" = ["reviewer"])),
    responses(
        (status = 201, description = "The link; its token and URL are shown this once", body = wire::auth::CreatedShare),
        (status = 404, description = "The target does not exist", body = wire::ApiError),
    )
)]
pub(super) async fn create_share(
    state: web::Data<AppState>,
    req: HttpRequest,
    JsonBody(body): JsonBody<wire::auth::NewShare>,
) -> Result<HttpResponse, ApiError> {
    if !state.access.shares_enabled {
        return Err(super::error(wire::ErrorCode::Forbidden, "sharing is turned off on this server (shares.enabled)"));
    }
    let (max_days, base) = (state.access.share_max_days, base_url(&state, &req));
    let created = change(&state, &req, move |s, actor| {
        accounts::create_share(s, body.target, body.expires_in_days, max_days, &base, actor)
    })
    .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Share links: your own, or every one for an admin; newest first.
#[utoipa::path(
    get,
    path = "/api/shares",
    tag = "shares",
    operation_id = "listShares",
    security(("token" = ["reviewer"]), ("session" = ["reviewer"])),
    responses((status = 200, body = Vec<wire::auth::ShareInfo>))
)]
pub(super) async fn shares(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let p = principal_of(&req).ok_or_else(|| super::internal("no principal"))?;
    let user = if p.role == wire::Role::Admin { None } else { p.user.clone() };
    let list = read(&state, move |s| accounts::list_shares(s, user.as_deref())).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Revokes a share link at once (your own; an admin's any).
#[utoipa::path(
    delete,
    path = "/api/shares/{id}",
    tag = "shares",
    operation_id = "revokeShare",
    params(("id" = String, Path)),
    security(("token" = ["reviewer"]), ("session" = ["reviewer"])),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such link of yours", body = wire::ApiError))
)]
pub(super) async fn revoke_share(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let any = principal_of(&req).is_some_and(|p| p.role == wire::Role::Admin);
    change(&state, &req, move |s, actor| accounts::revoke_share(s, &id, any, actor)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The share link the request was made with: what it shows and until when.
///
/// 404 once it is revoked, 410 once it has expired.
#[utoipa::path(
    get,
    path = "/api/share",
    tag = "shares",
    operation_id = "currentShare",
    security(("share" = ["pair", "view", "report"])),
    responses(
        (status = 200, body = wire::auth::ShareInfo),
        (status = 404, description = "The link was revoked or never existed", body = wire::ApiError),
        (status = 410, description = "The link has expired", body = wire::ApiError),
    )
)]
pub(super) async fn current_share(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let Some(Principal { via: Via::Share { id, .. }, .. }) = principal_of(&req) else {
        return Err(super::internal("no share principal"));
    };
    let info = read(&state, move |s| {
        let r = s.share(&id)?.ok_or_else(|| crate::pipeline::Error::not_found("this share link does not exist"))?;
        accounts::share_info(&r)
    })
    .await?;
    Ok(HttpResponse::Ok().json(info))
}
