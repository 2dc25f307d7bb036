//! Every API response the tests receive is checked against the OpenAPI document the server
//! generates: the route and status must be documented, and a JSON body must validate against
//! the schema documented for it. `support::get` and `support::post` call [`check`], so a field
//! renamed, retyped or made optional on one side only fails the test that first sees it.

use std::sync::LazyLock;

use serde_json::{json, Value};

static DOCUMENT: LazyLock<Value> =
    LazyLock::new(|| serde_json::to_value(seal::http::openapi_document()).expect("the API document serializes"));

/// A validator of `schema`, whose `$ref`s resolve against `doc`'s components.
fn validator(doc: &Value, schema: Value) -> Result<jsonschema::Validator, String> {
    let root = json!({"allOf": [schema], "components": doc["components"]});
    jsonschema::draft202012::new(&root).map_err(|e| format!("schema {}: {e}", root["allOf"][0]))
}

/// The documented path template that `path` (no query string) is an instance of. A parameter
/// matches one segment, but for a pair id, which holds slashes: as in the server's routes
/// (`{pair_id:.*}`), it takes the rest of the path.
fn template_of(doc: &Value, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let is_param = |p: &str| p.starts_with('{') && p.ends_with('}');
    let fits = |template: &str, rest: bool| {
        let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
        let len_ok = if rest {
            parts.last() == Some(&"{pair_id}") && segments.len() > parts.len()
        } else {
            segments.len() == parts.len()
        };
        len_ok && parts.iter().zip(&segments).all(|(p, s)| if is_param(p) { !s.is_empty() } else { s == p })
    };
    let templates = doc["paths"].as_object()?;
    [false, true].into_iter().find_map(|rest| templates.keys().find(|t| fits(t, rest)).cloned())
}

/// Checks one response of `method url` against `doc`: its route and status are documented, and
/// a JSON body validates against the documented schema. URLs outside `/api/` are not checked.
pub fn check_against(doc: &Value, method: &str, url: &str, status: u16, body: &str) -> Result<(), String> {
    let Some(at) = url.find("/api/") else { return Ok(()) };
    let path = url[at..].split(['?', '#']).next().unwrap_or_default();
    let method = method.to_ascii_lowercase();
    let op = template_of(doc, path).and_then(|t| Some((doc["paths"][&t].get(&method)?.clone(), t)));
    let response = match &op {
        Some((op, template)) => op["responses"]
            .get(status.to_string())
            .ok_or_else(|| format!("{method} {template} answered {status}, which its document does not list"))?
            .clone(),
        // No route: the API's 404 for unknown routes, with the error body.
        None if status == 404 => {
            json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}})
        }
        None => return Err(format!("{method} {path} answered {status} but is not in the API document")),
    };
    let Some(schema) = response["content"].get("application/json").map(|c| c["schema"].clone()) else {
        return Ok(());
    };
    let validator = validator(doc, schema)?;
    let value: Value = serde_json::from_str(body).map_err(|e| format!("{method} {path} ({status}): not JSON: {e}"))?;
    let errors: Vec<String> =
        validator.iter_errors(&value).take(5).map(|e| format!("at `{}`: {e}", e.instance_path())).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{method} {path} ({status}) does not match its documented schema:\n  {}", errors.join("\n  ")))
    }
}

/// [`check_against`] the document this build of the server serves; panics with what differs.
pub fn check(method: &str, url: &str, status: u16, body: &str) {
    if let Err(e) = check_against(&DOCUMENT, method, url, status, body) {
        panic!("{e}");
    }
}

/// Checks `json` against the document's component schema `name` (e.g. each `JobStatus` of a
/// job's event stream); panics with what differs.
pub fn check_schema(name: &str, json: &str) {
    let validator =
        validator(&DOCUMENT, json!({"$ref": format!("#/components/schemas/{name}")})).unwrap_or_else(|e| panic!("{e}"));
    let value: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: not JSON: {e}: {json}"));
    if let Err(e) = validator.validate(&value) {
        panic!("{name} does not match its documented schema at `{}`: {e}\n{json}", e.instance_path());
    }
}

#[test]
fn pair_ids_with_slashes_match_their_template() {
    let doc = &*DOCUMENT;
    assert_eq!(
        template_of(doc, "/api/datasets/hh/pairs/harmless-base/test/3").unwrap(),
        "/api/datasets/{dataset}/pairs/{pair_id}"
    );
    assert_eq!(template_of(doc, "/api/jobs/7/events").unwrap(), "/api/jobs/{id}/events");
    assert_eq!(template_of(doc, "/api/jobs/7").unwrap(), "/api/jobs/{id}");
    assert!(template_of(doc, "/api/jobs/7/nothing").is_none());
    assert!(template_of(doc, "/api/accuracy/hh").is_none());
}

/// The check is not a formality: a response that drifts from the document, a status the
/// document does not list, and a route it lacks each fail it.
#[test]
fn responses_that_drift_from_the_document_are_refused() {
    let doc = &*DOCUMENT;
    let ok = r#"{"status": "ok", "version": "1"}"#;
    check_against(doc, "GET", "http://x/api/health", 200, ok).unwrap();
    let retyped = r#"{"status": "ok", "version": 1}"#;
    let e = check_against(doc, "GET", "http://x/api/health", 200, retyped).unwrap_err();
    assert!(e.contains("/version"), "{e}");
    let missing = r#"{"status": "ok"}"#;
    assert!(check_against(doc, "GET", "http://x/api/health", 200, missing).is_err());
    let e = check_against(doc, "GET", "http://x/api/health", 418, ok).unwrap_err();
    assert!(e.contains("does not list"), "{e}");
    let e = check_against(doc, "GET", "http://x/api/undocumented", 200, "{}").unwrap_err();
    assert!(e.contains("not in the API document"), "{e}");
    // A job state outside the vocabulary, deep inside a list.
    let job = json!([{"id": 1, "kind": "score", "title": "score hh with post", "state": "sleeping", "done": 0,
        "total": 0, "message": null, "elapsed_s": 0.5}]);
    let e = check_against(doc, "GET", "http://x/api/jobs", 200, &job.to_string()).unwrap_err();
    assert!(e.contains("/0/state"), "{e}");
    // Error bodies are checked too.
    let e =
        check_against(doc, "GET", "http://x/api/jobs/9", 404, r#"{"code": "vanished", "message": "x"}"#).unwrap_err();
    assert!(e.contains("/code"), "{e}");
    check_against(doc, "GET", "http://x/api/nowhere", 404, r#"{"code": "not_found", "message": "no such API route"}"#)
        .unwrap();
}
