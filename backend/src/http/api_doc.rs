//! The API's OpenAPI 3.1 document, assembled from the handlers' `#[utoipa::path]` attributes and
//! the wire types' schemas, so it cannot drift from what the server does.

use utoipa::openapi::{self, Response};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SEAL Lab API",
        description = "JSON API of `seal serve`. Errors are JSON objects with a stable `code` and a \
            `message`; bad input gets a 4xx that says what was wrong, and an unexpected failure a 500 \
            whose details are in the server log. Each operation's `security` names the least role \
            that may call it (viewer < reviewer < editor < admin) as the scopes of its requirements; \
            an empty requirement means anyone. The server enforces exactly these rules."
    ),
    paths(
        super::health,
        super::overview,
        super::datasets,
        super::models,
        super::add_model,
        super::accuracy,
        super::label_sets,
        super::report,
        super::pairs,
        super::pair,
        super::add_note,
        super::edit_note,
        super::delete_note,
        super::hide_note,
        super::openapi,
        super::jobs,
        super::start_job,
        super::upload,
        super::plan_job,
        super::llm_info,
        super::job,
        super::job_events,
        super::cancel_job,
        super::retry_job,
        super::create_backup,
        super::metrics,
        super::export_pairs,
        super::export_scores,
        super::export_labels,
        super::label_failures,
        super::compare_labels,
        super::rejected_lines,
        super::variants,
        super::accounts::sign_in,
        super::accounts::who_am_i,
        super::accounts::sign_out,
        super::accounts::users,
        super::accounts::add_user,
        super::accounts::change_user,
        super::accounts::remove_user,
        super::accounts::tokens,
        super::accounts::create_token,
        super::accounts::revoke_token,
        super::accounts::audit,
        super::accounts::create_share,
        super::accounts::shares,
        super::accounts::revoke_share,
        super::accounts::current_share,
    ),
    tags(
        (name = "server", description = "The server itself"),
        (name = "data", description = "Datasets, models, label sets and accuracies"),
        (name = "analysis", description = "SEAL reports of studies"),
        (name = "pairs", description = "The example browser: pages of pairs, one pair, reviewer notes"),
        (name = "jobs", description = "Ingest, score and analyze jobs and their progress"),
        (name = "accounts", description = "Sign-in, users, API tokens and the audit log"),
        (name = "shares", description = "Share links: one pair, view or report, read-only, for anyone with the link"),
    ),
    modifiers(&InternalError, &Access)
)]
struct ApiDoc;

/// Every operation may fail unexpectedly: a 500 with the API's error body.
struct InternalError;

impl Modify for InternalError {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let body = openapi::ContentBuilder::new().schema(Some(openapi::Ref::from_schema_name("ApiError"))).build();
        let internal: Response = openapi::ResponseBuilder::new()
            .description("An unexpected failure; the details are in the server log")
            .content("application/json", body)
            .build();
        let misdirected: Response = openapi::ResponseBuilder::new()
            .description("The request's Host is not one this server answers for (server.allowed_hosts)")
            .content(
                "application/json",
                openapi::ContentBuilder::new().schema(Some(openapi::Ref::from_schema_name("ApiError"))).build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete].into_iter().flatten() {
                op.responses.responses.insert("500".into(), internal.clone().into());
                op.responses.responses.insert("421".into(), misdirected.clone().into());
            }
        }
    }
}

/// The credentials the API takes, and the 401 and 403 of every operation that needs them.
struct Access;

impl Modify for Access {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        use openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (`seal_pat_…`) from `seal tokens create` or `POST /api/tokens`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::pipeline::accounts::SESSION_COOKIE,
                "The browser session of `POST /api/session`; writes also need the `Origin` of this server and \
                 the session's CSRF token in `X-CSRF-Token`",
            ))),
        );
        components.add_security_scheme(
            "share",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A share link's token (`seal_shr_…`); its scopes are the kinds of link that may call the \
                         operation, each for its own target only",
                    ))
                    .build(),
            ),
        );
        let error = |description: &str| -> Response {
            openapi::ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    openapi::ContentBuilder::new().schema(Some(openapi::Ref::from_schema_name("ApiError"))).build(),
                )
                .build()
        };
        let unauthorized = error("No valid credentials: sign in or send an API token");
        let forbidden = error("The role does not allow this, or a browser write lacks its Origin or CSRF token");
        let bad = error("A parameter or body the operation cannot read, or a token in the query string");
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete].into_iter().flatten() {
                let public = op.security.as_ref().is_some_and(|reqs| {
                    serde_json::to_value(reqs).is_ok_and(|v| {
                        v.as_array().is_some_and(|a| a.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty())))
                    })
                });
                op.responses.responses.entry("400".into()).or_insert_with(|| bad.clone().into());
                if !public {
                    op.responses.responses.entry("401".into()).or_insert_with(|| unauthorized.clone().into());
                    op.responses.responses.entry("403".into()).or_insert_with(|| forbidden.clone().into());
                }
            }
        }
    }
}

/// The document served at `/api/openapi.json`.
pub fn document() -> openapi::OpenApi {
    ApiDoc::openapi()
}
