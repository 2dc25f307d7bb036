//! Who may call what. Every operation of the API document states its rule as an OpenAPI
//! security requirement whose scopes are role names (`security(("token" = ["editor"]), …)`;
//! an empty requirement is public), and this module enforces exactly those rules: the table is
//! built from the generated document at start, so the documented rule and the enforced one
//! cannot differ. A registered route the document does not describe is refused (fail closed).
//!
//! Credentials, in order: `Authorization: Bearer seal_pat_…` (an API token), `seal_local_…` (the
//! control secret of this server's control file, from this machine only), the session cookie
//! (writes also need a matching `Origin` and the session's `X-CSRF-Token`), the trusted reverse
//! proxy's user header (`auth.mode = "proxy"`), and the open single-user mode (no accounts, a
//! direct loopback request).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use seal_shared as wire;
use wire::auth::ShareTarget;
use wire::browse::PairQuery;
use wire::{AuthMode, Role, ShareKind};

use super::{ApiError, AppState};
use crate::pipeline::accounts::{self, Directory, Principal, Via, SESSION_COOKIE, SHARE_PREFIX, TOKEN_PREFIX};
use crate::settings::Settings;

/// The header a browser session sends its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The rule of one operation: public, or the least role that may call it and the kinds of
/// share link that may (each still held to its own target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub public: bool,
    pub role: Option<Role>,
    pub shares: Vec<ShareKind>,
}

/// The security scheme of share links in the API document; its scopes are share kinds.
pub const SHARE_SCHEME: &str = "share";

/// The rules of the API document: (method, path as documented) → rule.
pub fn rules(doc: &utoipa::openapi::OpenApi) -> Result<HashMap<(Method, String), Rule>, String> {
    let mut out = HashMap::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            (Method::GET, &item.get),
            (Method::POST, &item.post),
            (Method::PUT, &item.put),
            (Method::PATCH, &item.patch),
            (Method::DELETE, &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let requirements = op.security.as_ref().ok_or_else(|| format!("{method} {path} states no access rule"))?;
            let json = serde_json::to_value(requirements).map_err(|e| e.to_string())?;
            let mut rule = Rule { public: false, role: None, shares: Vec::new() };
            for req in json.as_array().into_iter().flatten() {
                let Some(schemes) = req.as_object() else { continue };
                if schemes.is_empty() {
                    rule.public = true;
                }
                for (scheme, scopes) in schemes {
                    for scope in scopes.as_array().into_iter().flatten() {
                        let word = scope.as_str().unwrap_or_default();
                        let bad = |e: wire::UnknownValue| format!("{method} {path}: security scope of {scheme}: {e}");
                        if scheme == SHARE_SCHEME {
                            let kind: ShareKind = word.parse().map_err(bad)?;
                            if !rule.shares.contains(&kind) {
                                rule.shares.push(kind);
                            }
                        } else {
                            let role: Role = word.parse().map_err(bad)?;
                            rule.role = Some(rule.role.map_or(role, |r| r.min(role)));
                        }
                    }
                }
            }
            if !rule.public && rule.role.is_none() && rule.shares.is_empty() {
                return Err(format!("{method} {path}: its security requirement names no role"));
            }
            out.insert((method, path.clone()), rule);
        }
    }
    Ok(out)
}

/// A route pattern as actix registers it (`/datasets/{pair_id:.*}`) in the document's spelling
/// (`/datasets/{pair_id}`).
pub(super) fn documented_path(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let (mut depth, mut in_regex) = (0usize, false);
    for c in pattern.chars() {
        match c {
            '{' => {
                depth += 1;
                if !in_regex {
                    out.push(c);
                }
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_regex = false;
                }
                if !in_regex {
                    out.push(c);
                }
            }
            ':' if depth == 1 => in_regex = true,
            _ if in_regex => {}
            _ => out.push(c),
        }
    }
    out
}

/// The server's access policy and the state it checks against.
pub struct Access {
    rules: HashMap<(Method, String), Rule>,
    pub(super) directory: Arc<Directory>,
    pub(super) mode: AuthMode,
    proxy: Option<Proxy>,
    public_origin: Option<String>,
    pub(super) secure_cookies: bool,
    pub(super) session_hours: u32,
    pub(super) shares_enabled: bool,
    pub(super) share_max_days: u32,
    pub(super) public_url: Option<String>,
    sign_in_by_name: DefaultKeyedRateLimiter<String>,
    sign_in_by_peer: DefaultKeyedRateLimiter<IpAddr>,
    /// `server.trusted_proxies`: the peers whose `X-Forwarded-For` names the client.
    forwarders: Vec<ipnet::IpNet>,
    /// The SHA-256 of this server's control secret (`seal serve` writes the secret to the data
    /// dir's control file), taken from loopback peers only.
    local_secret_sha256: Option<String>,
}

struct Proxy {
    header: header::HeaderName,
    trusted: Vec<ipnet::IpNet>,
    default_role: Role,
}

impl Access {
    pub fn new(settings: &Settings, directory: Arc<Directory>, local_secret: Option<&str>) -> anyhow::Result<Access> {
        let rules = rules(&super::api_doc::document()).map_err(|e| anyhow::anyhow!("the API document: {e}"))?;
        let proxy = (settings.auth.mode == AuthMode::Proxy)
            .then(|| -> anyhow::Result<Proxy> {
                Ok(Proxy {
                    header: header::HeaderName::from_bytes(settings.auth.proxy.header.as_bytes())?,
                    trusted: settings.auth.proxy.trusted_networks(),
                    default_role: settings.auth.proxy.default_role,
                })
            })
            .transpose()?;
        // Five sign-ins per name, then one a minute (Grafana's 5 failures / 5 min, a little
        // stricter); thirty per client address, then one a second.
        let per_name = Quota::per_minute(NonZeroU32::MIN).allow_burst(NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN));
        let per_peer = Quota::per_second(NonZeroU32::MIN).allow_burst(NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN));
        Ok(Access {
            rules,
            directory,
            mode: settings.auth.mode,
            proxy,
            public_origin: settings.public_origin(),
            secure_cookies: settings.https(),
            session_hours: settings.auth.session_hours,
            shares_enabled: settings.shares.enabled,
            share_max_days: settings.shares.max_days,
            public_url: settings.server.public_url.clone(),
            sign_in_by_name: RateLimiter::keyed(per_name),
            sign_in_by_peer: RateLimiter::keyed(per_peer),
            forwarders: settings.server.trusted_proxy_networks(),
            local_secret_sha256: local_secret.map(accounts::sha256_hex),
        })
    }

    /// Whether the server runs without accounts: `auth.mode = "none"`, or local accounts with
    /// none created yet.
    pub fn open(&self) -> bool {
        self.mode == AuthMode::None || (self.mode == AuthMode::Local && !self.directory.has_users())
    }

    /// Whether another sign-in for `name` from `peer` may be tried now. The client's address
    /// is charged first (an IPv6 client by its /64), and only a well-formed name is charged
    /// for itself; the limiters forget keys whose budget has refilled.
    pub fn sign_in_allowed(&self, name: &str, peer: Option<IpAddr>) -> bool {
        self.sign_in_by_name.retain_recent();
        self.sign_in_by_peer.retain_recent();
        let peer = peer.map(|ip| match unmapped(ip) {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            v4 => v4,
        });
        if peer.is_some_and(|p| self.sign_in_by_peer.check_key(&p).is_err()) {
            return false;
        }
        accounts::check_user_name(name).is_err() || self.sign_in_by_name.check_key(&name.to_ascii_lowercase()).is_ok()
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the last address
    /// of `X-Forwarded-For` (all such headers, in order) that is not a trusted proxy — the one
    /// the nearest trusted proxy saw. An entry that is not an address ends the walk at the hop
    /// after it. Decisions about the server's own machine use the peer, never this.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &header::HeaderMap) -> Option<IpAddr> {
        let trusted = |ip: IpAddr| self.forwarders.iter().any(|n| n.contains(&ip));
        let mut client = unmapped(peer?);
        if !trusted(client) {
            return Some(client);
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .flat_map(|v| v.to_str().unwrap_or_default().split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>().map(unmapped) else { break };
            client = ip;
            if !trusted(ip) {
                break;
            }
        }
        Some(client)
    }

    /// Whether `origin` (an `Origin` header) is this server's: the configured public URL's
    /// origin, or else any scheme with the request's own `Host`.
    pub fn same_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = crate::settings::without_default_port(&origin.trim().to_ascii_lowercase());
        match &self.public_origin {
            Some(public) => origin == *public,
            None => {
                let Some(host) = host else { return false };
                let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
                authority == Some(host.trim().to_ascii_lowercase().as_str())
            }
        }
    }
}

fn error(code: wire::ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError(wire::ApiError { code, message: message.into() })
}

fn reply(req: ServiceRequest, e: ApiError) -> ServiceResponse<BoxBody> {
    req.into_response(e.error_response())
}

/// Requests that reached the server through a proxy name the original client or host.
const FORWARDING_HEADERS: [&str; 5] =
    ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"];

/// The peer's address, an IPv4-mapped IPv6 address read as the IPv4 one.
fn peer_ip(req: &ServiceRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| unmapped(a.ip()))
}

/// An IPv4 client of a dual-stack socket arrives as `::ffff:a.b.c.d`: its IPv4 address.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn loopback_host(host: Option<&str>) -> bool {
    let Some(host) = host else { return true };
    let host = host.trim().to_ascii_lowercase();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default().to_owned(),
        None => host.rsplit_once(':').map_or(host.clone(), |(n, _)| n.to_owned()),
    };
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Who is asking; `Ok(None)` for nobody, `Err` for credentials that are refused outright.
async fn principal(
    access: &Access,
    state: &web::Data<AppState>,
    req: &ServiceRequest,
) -> Result<Option<Principal>, ApiError> {
    let headers = req.headers();
    // Only our own tokens are credentials here: other schemes (a proxy's basic auth passed
    // along, an SSO's bearer token) are not ours to judge and prove nothing.
    let authorization = headers.get(header::AUTHORIZATION).and_then(|a| a.to_str().ok()).unwrap_or_default().trim();
    let bearer = authorization.strip_prefix("Bearer ").or_else(|| authorization.strip_prefix("bearer "));
    if let Some(token) = bearer.map(str::trim).filter(|t| t.starts_with(TOKEN_PREFIX)) {
        return access.directory.check_token(token).map(Some).map_err(ApiError::from);
    }
    if let Some(secret) = bearer.map(str::trim).filter(|t| t.starts_with(accounts::LOCAL_PREFIX)) {
        // Hashes compared, not the secrets: equal-length digests, whatever was sent.
        let ours = access.local_secret_sha256.as_deref().is_some_and(|h| h == accounts::sha256_hex(secret));
        // From this machine, and not through a proxy on it (which names the client further away).
        let proxied = FORWARDING_HEADERS.iter().any(|h| headers.contains_key(*h));
        let local = peer_ip(req).is_none_or(|ip| ip.is_loopback()) && !proxied;
        if !(ours && local) {
            return Err(error(
                wire::ErrorCode::Unauthorized,
                "this control secret is not this server's (it is remade at every start), or was sent from another machine",
            ));
        }
        return Ok(Some(Principal { user: None, role: Role::Admin, via: Via::Local }));
    }
    if let Some(token) = bearer.map(str::trim).filter(|t| t.starts_with(SHARE_PREFIX)) {
        if !access.shares_enabled {
            return Err(error(wire::ErrorCode::Forbidden, "sharing is turned off on this server (shares.enabled)"));
        }
        return access.directory.check_share(token).map(Some).map_err(ApiError::from);
    }
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        if let Some(p) = access.directory.check_session(cookie.value()) {
            return Ok(Some(p));
        }
    }
    if let Some(proxy) = &access.proxy {
        let peer = peer_ip(req);
        let trusted = peer.is_some_and(|ip| proxy.trusted.iter().any(|n| n.contains(&ip)));
        if let (true, Some(name)) = (trusted, headers.get(&proxy.header)) {
            let name = name.to_str().unwrap_or_default().trim().to_owned();
            if !name.is_empty() {
                let user = match access.directory.user(&name) {
                    Some(u) => u,
                    None => {
                        let (role, st) = (proxy.default_role, state.clone());
                        let peer = access.client_ip(peer, headers).map(|p| p.to_string());
                        super::read(state, move |s| {
                            let u = accounts::proxy_user(s, &name, role, peer.as_deref())?;
                            st.access.directory.reload(s)?;
                            Ok(u)
                        })
                        .await?
                    }
                };
                return Ok(Some(Principal { user: Some(user.name), role: user.role, via: Via::Proxy }));
            }
        }
    }
    if access.open() {
        let proxied = FORWARDING_HEADERS.iter().any(|h| headers.contains_key(*h));
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        // A request without a peer address is one made in-process (tests).
        let remote = peer_ip(req).is_some_and(|ip| !ip.is_loopback());
        if proxied || remote || !loopback_host(host) {
            return Err(error(
                wire::ErrorCode::Forbidden,
                "this server has no accounts and answers only requests made directly on its own machine; \
                 to publish it, create an admin (`seal users add NAME --role admin`) and restart it",
            ));
        }
        return Ok(Some(Principal { user: None, role: Role::Admin, via: Via::Open }));
    }
    Ok(None)
}

/// A share's target in a sentence.
pub(super) fn describe(target: &ShareTarget) -> String {
    match target {
        ShareTarget::Pair { dataset, pair_id } => format!("the pair {pair_id} of {dataset}"),
        ShareTarget::View(q) => format!("the view `{q}`"),
        ShareTarget::Report { dataset, pre, post, .. } => format!("the report of {dataset}, {pre} → {post}"),
    }
}

/// A view's filters: what a share of it fixes (paging, sorting and the pair the page is
/// around stay free).
fn filters(mut q: PairQuery) -> PairQuery {
    q.sort = None;
    q.dir = None;
    q.limit = None;
    q.offset = None;
    q.around = None;
    q
}

/// Whether a share link's target covers this request (a route its kind may call).
async fn share_allows(
    state: &web::Data<AppState>,
    target: &ShareTarget,
    path: &str,
    req: &ServiceRequest,
) -> Result<bool, actix_web::Error> {
    // As the handlers' `web::Path` reads them: the escapes routing keeps (`%2F`, `%25`, `%2B`)
    // decoded too, so that a link to `a/b` or `100%` is judged by the name it opens.
    let param = |name: &str| {
        req.match_info().get(name).map(|raw| percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned())
    };
    let query = || PairQuery::from_query(req.query_string()).ok();
    let always = matches!(path, "/api/share" | "/api/session");
    Ok(match target {
        _ if always => true,
        ShareTarget::Pair { dataset, pair_id } => {
            path == "/api/datasets/{dataset}/pairs/{pair_id}"
                && param("dataset").as_deref() == Some(dataset)
                && param("pair_id").as_deref() == Some(pair_id)
        }
        ShareTarget::View(view) => {
            let Ok(view) = PairQuery::from_query(view) else { return Ok(false) };
            match path {
                "/api/pairs" => query().is_some_and(|q| filters(q) == filters(view.clone())),
                "/api/datasets/{dataset}/pairs/{pair_id}" => {
                    let (Some(dataset), Some(id)) = (param("dataset"), param("pair_id")) else { return Ok(false) };
                    if dataset != view.dataset {
                        return Ok(false);
                    }
                    // In the view when the view's filters can page around it.
                    let mut around = filters(view);
                    around.around = Some(id);
                    let st = state.clone();
                    super::read(state, move |s| Ok(st.browser.page(s, &around).is_ok())).await?
                }
                _ => false,
            }
        }
        ShareTarget::Report { dataset, pre, post, labels } => {
            let same_study = |q: &PairQuery| {
                q.dataset == *dataset
                    && q.pre.as_ref() == Some(pre)
                    && q.post.as_ref() == Some(post)
                    && q.labels == *labels
            };
            match path {
                "/api/report" | "/api/pairs" => query().is_some_and(|q| same_study(&q)),
                "/api/datasets/{dataset}/pairs/{pair_id}" => param("dataset").as_deref() == Some(dataset),
                "/api/overview" => true,
                "/api/label-sets" => form_dataset(req.query_string()).as_deref() == Some(dataset.as_str()),
                "/api/accuracy/{dataset}/{model}" => {
                    param("dataset").as_deref() == Some(dataset)
                        && param("model").is_some_and(|m| m == *pre || m == *post)
                }
                _ => false,
            }
        }
    })
}

/// The `dataset` parameter of a query string.
fn form_dataset(query: &str) -> Option<String> {
    web::Query::<HashMap<String, String>>::from_query(query).ok().and_then(|q| q.get("dataset").cloned())
}

/// What the access check of one resource knows: its path as documented and the methods it
/// has routes for.
pub(super) struct Guard {
    pub(super) path: String,
    pub(super) methods: Vec<Method>,
}

/// The access check around every `/api` resource, after routing.
pub(super) async fn authorize(
    guard: std::rc::Rc<Guard>,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(reply(req, error(wire::ErrorCode::Internal, "the server has no state")));
    };
    let access = &state.access;
    if !guard.methods.contains(req.method()) {
        // No route of this resource takes the method: the resource answers 405, no handler runs.
        return next.call(req).await;
    }
    let Some(rule) = access.rules.get(&(req.method().clone(), guard.path.clone())).cloned() else {
        tracing::error!("{} {} is registered but not in the API document; refused", req.method(), guard.path);
        return Ok(reply(req, error(wire::ErrorCode::Forbidden, "this route has no access rule")));
    };
    if req.query_string().contains(TOKEN_PREFIX) || req.query_string().contains(SHARE_PREFIX) {
        return Ok(reply(
            req,
            error(
                wire::ErrorCode::InvalidInput,
                "tokens are not accepted in query strings (they end up in logs and histories); send `Authorization: Bearer <token>`",
            ),
        ));
    }
    let who = match principal(access, &state, &req).await {
        Ok(p) => p,
        // A public route answers anyone, whatever credentials come with the request.
        Err(_) if rule.public => None,
        Err(e) => return Ok(reply(req, e)),
    };
    if !rule.public {
        let Some(p) = &who else {
            return Ok(reply(
                req,
                error(wire::ErrorCode::Unauthorized, "sign in, or send `Authorization: Bearer <token>`"),
            ));
        };
        let refusal = match (&p.via, rule.role) {
            (Via::Share { target, .. }, _) => {
                if !rule.shares.contains(&target.kind()) || !share_allows(&state, target, &guard.path, &req).await? {
                    Some(format!("this link shares {} only; sign in to see more", describe(target)))
                } else {
                    None
                }
            }
            (_, None) => Some("this route is for share links".to_owned()),
            (_, Some(role)) if p.role < role => Some(format!("this needs the {role} role; you have {}", p.role)),
            _ => None,
        };
        if let Some(why) = refusal {
            return Ok(reply(req, error(wire::ErrorCode::Forbidden, why)));
        }
    }
    // Writes of a browser must come from this server's pages. A cookie session must say so
    // (Origin) and prove it (its CSRF token); a browser the proxy signed in, or the open mode's,
    // is held to its Origin when it sends one (scripts send none). Sign-in checks its own Origin
    // and acts on no session, whatever cookie comes with it.
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let (true, Some(p), false) = (write, &who, rule.public) {
        let headers = req.headers();
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        let from_here = origin.is_some_and(|o| access.same_origin(o, host));
        let refusal = match &p.via {
            Via::Session { csrf_token, .. } => {
                if !from_here {
                    Some("a write from a browser must come from this server's own pages (Origin)")
                } else if headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) != Some(csrf_token.as_str()) {
                    Some("the X-CSRF-Token header is missing or wrong")
                } else {
                    None
                }
            }
            Via::Proxy | Via::Open if origin.is_some() && !from_here => {
                Some("a write from a browser must come from this server's own pages (Origin)")
            }
            _ => None,
        };
        if let Some(why) = refusal {
            return Ok(reply(req, error(wire::ErrorCode::Forbidden, why)));
        }
    }
    let shared = matches!(&who, Some(Principal { via: Via::Share { .. }, .. }));
    if let Some(p) = who {
        req.extensions_mut().insert(p);
    }
    let mut res = next.call(req).await?;
    if shared {
        // What a share link opens is not for search engines.
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-robots-tag"), header::HeaderValue::from_static("noindex"));
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_patterns_are_read_as_documented() {
        assert_eq!(
            documented_path("/api/datasets/{dataset}/pairs/{pair_id:.*}"),
            "/api/datasets/{dataset}/pairs/{pair_id}"
        );
        assert_eq!(documented_path("/api/jobs/{id}"), "/api/jobs/{id}");
        assert_eq!(documented_path("/api/health"), "/api/health");
        assert_eq!(documented_path("/a/{id:\\d{3}}/b"), "/a/{id}/b");
    }

    #[test]
    fn sign_in_attempts_are_counted_per_client_address() {
        let access = Access::new(&Settings::default(), Arc::default(), None).unwrap();
        let mapped = |last: u8| Some(IpAddr::V6(std::net::Ipv4Addr::new(192, 0, 2, last).to_ipv6_mapped()));
        // Names that are no account's are charged to the address only.
        for i in 0..30 {
            assert!(access.sign_in_allowed(&format!("not a name {i}"), mapped(1)), "attempt {i}");
        }
        assert!(!access.sign_in_allowed("not a name", mapped(1)), "the 31st from one address waits");
        // Another IPv4 client of the same dual-stack socket has a budget of its own (an IPv4
        // address mapped into IPv6 is not cut to its /64, which all of them share).
        assert!(access.sign_in_allowed("not a name", mapped(2)));
        assert!(access.sign_in_allowed("not a name", Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 3)))));
    }

    #[test]
    fn the_client_is_the_last_address_a_trusted_proxy_forwarded() {
        let mut settings = Settings::default();
        settings.server.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
        let access = Access::new(&settings, Arc::default(), None).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let headers = |values: &[&str]| {
            let mut h = header::HeaderMap::new();
            for v in values {
                h.append(header::HeaderName::from_static("x-forwarded-for"), header::HeaderValue::from_str(v).unwrap());
            }
            h
        };
        let client = |peer: &str, values: &[&str]| access.client_ip(Some(ip(peer)), &headers(values));
        // One proxy: the address it saw.
        assert_eq!(client("127.0.0.1", &["203.0.113.7"]), Some(ip("203.0.113.7")));
        // A client's own claim in front is passed over: the last untrusted address counts.
        assert_eq!(client("127.0.0.1", &["198.51.100.1, 203.0.113.7"]), Some(ip("203.0.113.7")));
        // Two trusted proxies in a row, the header split over two lines.
        assert_eq!(client("127.0.0.1", &["198.51.100.1, 203.0.113.7", "10.1.2.3"]), Some(ip("203.0.113.7")));
        // From a peer that is no trusted proxy the header is ignored.
        assert_eq!(client("192.0.2.9", &["203.0.113.7"]), Some(ip("192.0.2.9")));
        // Garbage ends the walk at the hop the proxy vouches for.
        assert_eq!(client("127.0.0.1", &["203.0.113.7, unknown"]), Some(ip("127.0.0.1")));
        assert_eq!(client("127.0.0.1", &["unknown, 203.0.113.7"]), Some(ip("203.0.113.7")));
        // No header: the proxy itself; every hop trusted: the first.
        assert_eq!(client("127.0.0.1", &[]), Some(ip("127.0.0.1")));
        assert_eq!(client("127.0.0.1", &["10.0.0.5, 10.0.0.6"]), Some(ip("10.0.0.5")));
        // IPv4 clients of a dual-stack socket, and addresses written as mapped ones.
        assert_eq!(client("::ffff:127.0.0.1", &["::ffff:203.0.113.7"]), Some(ip("203.0.113.7")));
        assert_eq!(access.client_ip(None, &headers(&["203.0.113.7"])), None);
        // By default no proxy is trusted, loopback included: a local client cannot name itself.
        let plain = Access::new(&Settings::default(), Arc::default(), None).unwrap();
        assert_eq!(plain.client_ip(Some(ip("127.0.0.1")), &headers(&["203.0.113.7"])), Some(ip("127.0.0.1")));
    }

    #[test]
    fn loopback_names_are_told_apart() {
        for ok in [None, Some("localhost:8080"), Some("127.0.0.1"), Some("[::1]:80"), Some("127.0.0.2")] {
            assert!(loopback_host(ok), "{ok:?}");
        }
        for bad in ["seal.lab.example", "10.0.0.1:8080", "[::2]"] {
            assert!(!loopback_host(Some(bad)), "{bad}");
        }
    }
}
