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
            whose details are in the server log."
    ),
    paths(
        super::health,
        super::overview,
        super::datasets,
        super::models,
        super::accuracy,
        super::label_sets,
        super::report,
        super::pairs,
        super::pair,
        super::add_note,
        super::openapi,
        super::jobs,
        super::start_job,
        super::job,
        super::job_events,
    ),
    tags(
        (name = "server", description = "The server itself"),
        (name = "data", description = "Datasets, models, label sets and accuracies"),
        (name = "analysis", description = "SEAL reports of studies"),
        (name = "pairs", description = "The example browser: pages of pairs, one pair, reviewer notes"),
        (name = "jobs", description = "Ingest, score and analyze jobs and their progress"),
    ),
    modifiers(&InternalError)
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
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                op.responses.responses.insert("500".into(), internal.clone().into());
                op.responses.responses.insert("421".into(), misdirected.clone().into());
            }
        }
    }
}

/// The document served at `/api/openapi.json`.
pub fn document() -> openapi::OpenApi {
    ApiDoc::openapi()
}
