//! The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`): readiness,
//! metadata and `ModelInfer` with the tensors in `raw_input_contents`, reading raw
//! (`raw_output_contents`) or typed (`contents`) outputs. The messages below are the subset of
//! the protocol's `grpc_predict_v2.proto` that SEAL Lab uses, with its field numbers; fields
//! left out (parameters, the other tensor types) are skipped when they arrive.
//!
//! Calls are blocking for the scoring workers: each runs its request on a small shared tokio
//! runtime, and the requests of all workers share one HTTP/2 connection per endpoint.

use std::sync::OnceLock;
use std::time::Duration;

use tonic::body::Body;
use tonic::codegen::http;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

use super::{
    Bearer, Datatype, EndpointUrl, InputSpec, ModelMetadata, OipError, OutputChoice, ServerMetadata, TensorMetadata,
};
use crate::score::Packed;

#[derive(Clone, PartialEq, prost::Message)]
struct ServerReadyRequest {}

#[derive(Clone, PartialEq, prost::Message)]
struct ServerReadyResponse {
    #[prost(bool, tag = "1")]
    ready: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ModelReadyRequest {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ModelReadyResponse {
    #[prost(bool, tag = "1")]
    ready: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ServerMetadataRequest {}

#[derive(Clone, PartialEq, prost::Message)]
struct ServerMetadataResponse {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    version: String,
    #[prost(string, repeated, tag = "3")]
    extensions: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ModelMetadataRequest {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorMetadataMessage {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    datatype: String,
    #[prost(int64, repeated, tag = "3")]
    shape: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ModelMetadataResponse {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, repeated, tag = "2")]
    versions: Vec<String>,
    #[prost(string, tag = "3")]
    platform: String,
    #[prost(message, repeated, tag = "4")]
    inputs: Vec<TensorMetadataMessage>,
    #[prost(message, repeated, tag = "5")]
    outputs: Vec<TensorMetadataMessage>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct InferInputTensor {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    datatype: String,
    #[prost(int64, repeated, tag = "3")]
    shape: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct InferRequestedOutputTensor {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ModelInferRequest {
    #[prost(string, tag = "1")]
    model_name: String,
    #[prost(string, tag = "2")]
    model_version: String,
    #[prost(string, tag = "3")]
    id: String,
    #[prost(message, repeated, tag = "5")]
    inputs: Vec<InferInputTensor>,
    #[prost(message, repeated, tag = "6")]
    outputs: Vec<InferRequestedOutputTensor>,
    #[prost(bytes = "vec", repeated, tag = "7")]
    raw_input_contents: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct InferTensorContents {
    #[prost(int32, repeated, tag = "2")]
    int_contents: Vec<i32>,
    #[prost(int64, repeated, tag = "3")]
    int64_contents: Vec<i64>,
    #[prost(float, repeated, tag = "6")]
    fp32_contents: Vec<f32>,
    #[prost(double, repeated, tag = "7")]
    fp64_contents: Vec<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct InferOutputTensor {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    datatype: String,
    #[prost(int64, repeated, tag = "3")]
    shape: Vec<i64>,
    #[prost(message, optional, tag = "5")]
    contents: Option<InferTensorContents>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ModelInferResponse {
    #[prost(string, tag = "1")]
    model_name: String,
    #[prost(string, tag = "2")]
    model_version: String,
    #[prost(string, tag = "3")]
    id: String,
    #[prost(message, repeated, tag = "5")]
    outputs: Vec<InferOutputTensor>,
    #[prost(bytes = "vec", repeated, tag = "6")]
    raw_output_contents: Vec<Vec<u8>>,
}

const SERVICE: &str = "/inference.GRPCInferenceService/";

/// The runtime every gRPC call of the process runs on (two threads: the calls are I/O).
fn runtime() -> Result<&'static tokio::runtime::Runtime, OipError> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("seal-grpc")
        .enable_all()
        .build()
        .map_err(|e| OipError::Refused(format!("starting the gRPC client: {e}")))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// An endpoint's connection, with the HTTP status of each answer read first
/// ([`status_from_http`]).
type GrpcChannel = tower::util::MapResponse<Channel, fn(http::Response<Body>) -> http::Response<Body>>;

/// Where [`status_from_http`] keeps the HTTP status it read, for [`rpc_error`].
const HTTP_STATUS: &str = "seal-http-status";

/// An answer whose HTTP status is not 200 and that carries no `grpc-status` did not come from a
/// gRPC server but from something in front of it that does not speak gRPC: a gateway that
/// refuses the call with a bare 401, a load balancer's 503 page. Left alone, its body would be
/// read as gRPC frames and fail as a protocol error; instead it gets the status the gRPC
/// specification maps that HTTP status to (401 UNAUTHENTICATED, 403 PERMISSION_DENIED,
/// 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, 400 INTERNAL, others UNKNOWN), so that a
/// refusal of credentials reads as one. Whether it is tried again is decided as for a REST
/// answer with that status (408, 429 and 5xx are; other 4xx fail at once), and its
/// `Retry-After` is honoured.
///
/// It also keeps tonic from panicking on a server's malformed status details (see
/// [`without_bad_details`]), in the answer's headers and in its trailers.
fn status_from_http(mut response: http::Response<Body>) -> http::Response<Body> {
    without_bad_details(response.headers_mut());
    let mut response = response.map(|body| {
        Body::new(http_body_util::BodyExt::map_frame(body, |mut frame| {
            if let Some(trailers) = frame.trailers_mut() {
                without_bad_details(trailers);
            }
            frame
        }))
    });
    let status = response.status();
    if status == http::StatusCode::OK || response.headers().contains_key("grpc-status") {
        return response;
    }
    let code = match status.as_u16() {
        400 => tonic::Code::Internal,
        401 => tonic::Code::Unauthenticated,
        403 => tonic::Code::PermissionDenied,
        404 => tonic::Code::Unimplemented,
        429 | 502 | 503 | 504 => tonic::Code::Unavailable,
        _ => tonic::Code::Unknown,
    };
    let message = format!("HTTP {status} without a gRPC status, from a proxy or gateway in front of the server");
    let headers = response.headers_mut();
    headers.insert("grpc-status", http::HeaderValue::from(code as i32));
    headers.insert(HTTP_STATUS, http::HeaderValue::from(status.as_u16()));
    if let Ok(value) = http::HeaderValue::from_str(&message) {
        headers.insert("grpc-message", value);
    }
    response
}

/// The binary details of a status, which gRPC carries in base64.
const STATUS_DETAILS: &str = "grpc-status-details-bin";

/// Base64 as tonic decodes status details: the standard alphabet, padding optional.
const DETAILS_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Drops a `grpc-status-details-bin` that is not base64. tonic reads the status of an answer
/// with `Status::from_header_map`, which panics on such a value: a faulty or hostile server
/// would otherwise crash the run instead of failing one call. SEAL Lab never reads the details;
/// the status's code and message stay.
fn without_bad_details(headers: &mut http::HeaderMap) {
    use base64::Engine as _;
    let bad = headers.get_all(STATUS_DETAILS).iter().any(|v| DETAILS_BASE64.decode(v.as_bytes()).is_err());
    if bad {
        headers.remove(STATUS_DETAILS);
    }
}

pub(super) struct GrpcEndpoint {
    url: EndpointUrl,
    channel: GrpcChannel,
    timeout: Duration,
    /// The `authorization` metadata of every call.
    bearer: Option<tonic::metadata::AsciiMetadataValue>,
}

impl GrpcEndpoint {
    pub(super) fn new(url: EndpointUrl, timeout: Duration, bearer: Option<Bearer>) -> Result<GrpcEndpoint, OipError> {
        let refused = |e: &dyn std::fmt::Display| OipError::Refused(format!("{}: {e}", url.url));
        let target = format!("{}://{}", if url.tls { "https" } else { "http" }, url.authority);
        let mut endpoint = Channel::from_shared(target)
            .map_err(|e| refused(&e))?
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout);
        if url.tls {
            // The system's trust store, as for `https://` endpoints (`SSL_CERT_FILE` and
            // `SSL_CERT_DIR` name others).
            let config = tonic::transport::ClientTlsConfig::new().with_native_roots();
            endpoint = endpoint.tls_config(config).map_err(|e| refused(&e))?;
        }
        let bearer = match bearer {
            Some(b) => {
                let mut value: tonic::metadata::AsciiMetadataValue = b.header().parse().map_err(|_| {
                    OipError::Refused(format!("{}: the bearer token holds characters a header cannot carry", url.url))
                })?;
                // Never kept in HTTP/2's header tables.
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let _inside = runtime()?.enter();
        // Connects on first use, and again after the server comes back.
        let channel = tower::util::MapResponse::new(endpoint.connect_lazy(), status_from_http as fn(_) -> _);
        Ok(GrpcEndpoint { url, channel, timeout, bearer })
    }

    fn call<Req, Resp>(&self, method: &'static str, request: Req) -> Result<Resp, OipError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.call_within(method, request, self.timeout)
    }

    /// A call with its own time limit (within the channel's).
    fn call_within<Req, Resp>(&self, method: &'static str, request: Req, timeout: Duration) -> Result<Resp, OipError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let path = PathAndQuery::try_from(format!("{SERVICE}{method}"))
            .map_err(|e| OipError::Refused(format!("{}: {e}", self.url.url)))?;
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        let url = &self.url.url;
        let mut request = tonic::Request::new(request);
        request.set_timeout(timeout);
        if let Some(b) = &self.bearer {
            request.metadata_mut().insert("authorization", b.clone());
        }
        let call = async move {
            // Not ready: the connection could not be made (the error stays the status's source).
            grpc.ready().await.map_err(|e| tonic::Status::from_error(e.into()))?;
            let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
            grpc.unary(request, path, codec).await
        };
        // The whole call within the limit: the channel's timeout ends only the wait for the
        // answer's head, and a server that then stalls would hold the run forever.
        let answer = runtime()?.block_on(async move {
            tokio::time::timeout(timeout, call)
                .await
                .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no complete answer within the time limit")))
        });
        answer
            .map(tonic::Response::into_inner)
            .map_err(|status| rpc_error(url, method, timeout.min(self.timeout), status))
    }

    fn model_version(&self) -> String {
        self.url.version.clone().unwrap_or_default()
    }

    /// Server and model both ready, each answering within `timeout`.
    pub(super) fn ready(&self, timeout: Duration) -> Result<(), OipError> {
        let server: ServerReadyResponse = self.call_within("ServerReady", ServerReadyRequest {}, timeout)?;
        if !server.ready {
            return Err(not_ready(&self.url.url, "the server"));
        }
        let model: ModelReadyResponse = self.call_within(
            "ModelReady",
            ModelReadyRequest { name: self.url.model.clone(), version: self.model_version() },
            timeout,
        )?;
        if !model.ready {
            return Err(not_ready(&self.url.url, "the model"));
        }
        Ok(())
    }

    pub(super) fn server_metadata(&self) -> Result<ServerMetadata, OipError> {
        let m: ServerMetadataResponse = self.call("ServerMetadata", ServerMetadataRequest {})?;
        Ok(ServerMetadata { name: m.name, version: m.version })
    }

    pub(super) fn model_metadata(&self) -> Result<ModelMetadata, OipError> {
        let m: ModelMetadataResponse = self.call(
            "ModelMetadata",
            ModelMetadataRequest { name: self.url.model.clone(), version: self.model_version() },
        )?;
        let tensors = |list: Vec<TensorMetadataMessage>| {
            list.into_iter().map(|t| TensorMetadata { name: t.name, datatype: t.datatype, shape: t.shape }).collect()
        };
        Ok(ModelMetadata {
            name: m.name,
            versions: m.versions,
            platform: m.platform,
            inputs: tensors(m.inputs),
            outputs: tensors(m.outputs),
        })
    }

    /// One `ModelInfer`: the packed columns as raw tensors; returns `output[i][0]` per row.
    pub(super) fn infer(
        &self,
        id: &str,
        packed: &Packed,
        inputs: &[InputSpec],
        output: &OutputChoice,
    ) -> Result<Vec<f64>, OipError> {
        let shape = vec![packed.rows as i64, packed.width as i64];
        let mut request = ModelInferRequest {
            model_name: self.url.model.clone(),
            model_version: self.model_version(),
            id: id.to_owned(),
            ..Default::default()
        };
        for spec in inputs {
            let raw = super::raw_column(packed, spec)?;
            request.inputs.push(InferInputTensor {
                name: spec.name.clone(),
                datatype: spec.datatype.as_str().to_owned(),
                shape: shape.clone(),
            });
            request.raw_input_contents.push(raw);
        }
        if let OutputChoice::Named(name) = output {
            request.outputs.push(InferRequestedOutputTensor { name: name.clone() });
        }
        let answer: ModelInferResponse = self.call("ModelInfer", request)?;
        read_output(&self.url.url, answer, output, packed.rows)
    }
}

fn not_ready(url: &str, what: &str) -> OipError {
    OipError::NotReady { url: url.to_owned(), detail: format!("{what} is not ready") }
}

/// A gRPC status as an error; UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED and
/// INTERNAL are worth another try, the rest (INVALID_ARGUMENT, NOT_FOUND, …) are not. The
/// client's own failures come as statuses too: its timeout as CANCELLED ("Timeout expired"),
/// a connection that failed or broke mid-call as CANCELLED, or as UNAVAILABLE or UNKNOWN with
/// the transport error as its source. This client never cancels a call itself, so those are
/// [`OipError::Transport`], as a REST request's failed connection is; an UNKNOWN that the
/// server sent is not retried.
fn rpc_error(url: &str, method: &str, timeout: Duration, status: tonic::Status) -> OipError {
    use tonic::Code;
    let client_timeout = status.code() == Code::Cancelled && status.message() == "Timeout expired";
    if status.code() == Code::DeadlineExceeded || client_timeout {
        return OipError::Timeout { url: url.to_owned(), after: timeout };
    }
    let transport = std::error::Error::source(&status).is_some();
    // The connection failed under the call (refused, reset, closed), as a REST request's can:
    // this client never cancels a call itself.
    if (transport && matches!(status.code(), Code::Unavailable | Code::Unknown)) || status.code() == Code::Cancelled {
        let cause = std::error::Error::source(&status).map(|s| format!(" ({s})")).unwrap_or_default();
        return OipError::Transport {
            url: url.to_owned(),
            detail: format!("{method}: {}{cause}", crate::net::short(status.message())),
        };
    }
    let header = |name: &str| status.metadata().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let retry = match header(HTTP_STATUS).and_then(|s| s.parse::<u16>().ok()) {
        Some(http) => matches!(http, 408 | 429) || http >= 500,
        None => matches!(status.code(), Code::Unavailable | Code::ResourceExhausted | Code::Aborted | Code::Internal),
    };
    let retry_after = header("retry-after").and_then(|s| crate::net::retry_after(&s, std::time::SystemTime::now()));
    OipError::Rpc {
        url: url.to_owned(),
        code: code_name(status.code()),
        message: format!("{method}: {}", crate::net::short(status.message())),
        retry,
        retry_after,
    }
}

/// A status code as the protocol writes it (`INVALID_ARGUMENT`).
fn code_name(code: tonic::Code) -> String {
    let mut out = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The chosen output of a `ModelInfer` answer, raw or typed, as `output[i][0]` per row.
fn read_output(
    url: &str,
    answer: ModelInferResponse,
    choice: &OutputChoice,
    rows: usize,
) -> Result<Vec<f64>, OipError> {
    let bad = |detail: String| OipError::Protocol { url: url.to_owned(), detail };
    let n = answer.outputs.len();
    let index = answer
        .outputs
        .iter()
        .position(|o| match choice {
            OutputChoice::Named(name) => o.name == *name,
            OutputChoice::Only => n == 1 || o.name == "logits",
        })
        .ok_or_else(|| {
            bad(match choice {
                OutputChoice::Named(name) => format!("answer has no output `{name}`"),
                OutputChoice::Only => "answer has several outputs and none is `logits`".into(),
            })
        })?;
    let o = &answer.outputs[index];
    let datatype: Datatype = o.datatype.parse().map_err(bad)?;
    let shape: Vec<usize> = o
        .shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("output shape {:?}", o.shape))))
        .collect::<Result<_, _>>()?;
    let values = if answer.raw_output_contents.is_empty() {
        let c = o.contents.clone().unwrap_or_default();
        match datatype {
            Datatype::Fp32 => c.fp32_contents.into_iter().map(f64::from).collect(),
            Datatype::Fp64 => c.fp64_contents,
            Datatype::Int32 => c.int_contents.into_iter().map(f64::from).collect(),
            Datatype::Int64 => c.int64_contents.into_iter().map(|v| v as f64).collect(),
        }
    } else {
        // Raw contents stand for every output, in order: a count that differs would pair them
        // otherwise.
        if answer.raw_output_contents.len() != n {
            return Err(bad(format!("{} raw outputs for {n} outputs", answer.raw_output_contents.len())));
        }
        datatype.read_le(&answer.raw_output_contents[index]).map_err(bad)?
    };
    super::first_column(&shape, &values, rows).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(raw: bool) -> ModelInferResponse {
        let values = [0.5f32, -1.25];
        ModelInferResponse {
            outputs: vec![InferOutputTensor {
                name: "logits".into(),
                datatype: "FP32".into(),
                shape: vec![2, 1],
                contents: (!raw).then(|| InferTensorContents { fp32_contents: values.to_vec(), ..Default::default() }),
            }],
            raw_output_contents: if raw { vec![values.iter().flat_map(|f| f.to_le_bytes()).collect()] } else { vec![] },
            ..Default::default()
        }
    }

    #[test]
    fn raw_and_typed_outputs_read_alike() {
        let named = OutputChoice::Named("logits".into());
        assert_eq!(read_output("u", answer(true), &named, 2).unwrap(), vec![0.5, -1.25]);
        assert_eq!(read_output("u", answer(false), &OutputChoice::Only, 2).unwrap(), vec![0.5, -1.25]);
        let e = read_output("u", answer(true), &OutputChoice::Named("scores".into()), 2).unwrap_err().to_string();
        assert!(e.contains("no output `scores`"), "{e}");
    }

    #[test]
    fn which_statuses_are_retried() {
        let t = Duration::from_secs(1);
        assert!(rpc_error("u", "ModelInfer", t, tonic::Status::unavailable("down")).retryable());
        assert!(rpc_error("u", "ModelInfer", t, tonic::Status::resource_exhausted("busy")).retryable());
        let bad = rpc_error("u", "ModelInfer", t, tonic::Status::invalid_argument("shape"));
        assert!(!bad.retryable());
        assert!(bad.to_string().contains("gRPC INVALID_ARGUMENT"), "{bad}");
        assert!(matches!(
            rpc_error("u", "ModelInfer", t, tonic::Status::deadline_exceeded("slow")),
            OipError::Timeout { .. }
        ));
        // The client's timeout, as tonic reports it.
        assert!(matches!(
            rpc_error("u", "ModelInfer", t, tonic::Status::cancelled("Timeout expired")),
            OipError::Timeout { .. }
        ));
        // A connection that broke under the call is the client's transport error: retried, and
        // the endpoint checked again before it takes more work; the same code sent by the
        // server is not retried.
        let broken = tonic::Status::from_error(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
        assert_eq!(broken.code(), tonic::Code::Unknown);
        let broken = rpc_error("u", "ModelInfer", t, broken);
        assert!(broken.retryable() && broken.connection_lost(), "{broken}");
        assert!(!rpc_error("u", "ModelInfer", t, tonic::Status::unknown("model failed")).retryable());
        let closed = rpc_error("u", "ModelInfer", t, tonic::Status::cancelled("connection closed"));
        assert!(closed.retryable() && closed.connection_lost());
        assert!(!rpc_error("u", "ModelInfer", t, tonic::Status::unavailable("busy")).connection_lost());
    }

    /// What the client makes of an answer, as tonic reads its headers.
    fn seen(status: u16, grpc_status: Option<&str>) -> Option<tonic::Status> {
        let mut answer = http::Response::builder().status(status);
        if let Some(code) = grpc_status {
            answer = answer.header("grpc-status", code);
        }
        let answer = status_from_http(answer.body(Body::empty()).unwrap());
        tonic::Status::from_header_map(answer.headers())
    }

    #[test]
    fn an_answer_from_a_gateway_that_does_not_speak_grpc_gets_the_status_its_http_status_maps_to() {
        let t = Duration::from_secs(1);
        let error = |status| rpc_error("u", "ModelInfer", t, seen(status, None).unwrap());
        let denied = error(401);
        assert!(denied.denied() && !denied.retryable(), "{denied}");
        assert!(denied.to_string().contains("gRPC UNAUTHENTICATED: ModelInfer: HTTP 401 Unauthorized"), "{denied}");
        assert!(error(403).denied());
        for overloaded in [429, 502, 503, 504] {
            assert!(error(overloaded).retryable() && !error(overloaded).denied(), "{overloaded}");
        }
        assert!(error(404).to_string().contains("gRPC UNIMPLEMENTED") && !error(404).retryable());
        // Retried or not as a REST answer with that status would be.
        assert!(!error(400).retryable() && !error(418).retryable());
        assert!(error(408).retryable() && error(500).retryable());
        let mut busy = http::Response::builder().status(503).header("retry-after", "7").body(Body::empty()).unwrap();
        busy = status_from_http(busy);
        let busy = rpc_error("u", "ModelInfer", t, tonic::Status::from_header_map(busy.headers()).unwrap());
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(7)));
        // A gRPC server's own status, and an answer that is gRPC, are left as they are.
        assert_eq!(seen(401, Some("5")).unwrap().code(), tonic::Code::NotFound);
        assert!(seen(200, None).is_none());
    }

    #[test]
    fn a_server_that_stalls_after_the_head_of_its_answer_times_the_call_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        // An HTTP/2 server that sends each call the head of a gRPC answer, then nothing more.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let (socket, _) = listener.accept().await.unwrap();
                let mut conn = h2::server::handshake(socket).await.unwrap();
                let mut stalled = Vec::new();
                while let Some(Ok((_, mut respond))) = conn.accept().await {
                    let head = http::Response::builder().header("content-type", "application/grpc").body(()).unwrap();
                    stalled.push(respond.send_response(head, false).unwrap());
                }
            });
        });
        let url: EndpointUrl = format!("grpc://127.0.0.1:{port}/rm").parse().unwrap();
        let endpoint = GrpcEndpoint::new(url, Duration::from_secs(2), None).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(endpoint.ready(Duration::from_millis(500))));
        let answer = rx.recv_timeout(Duration::from_secs(20)).expect("the call never ended");
        assert!(matches!(answer, Err(OipError::Timeout { .. })), "{answer:?}");
    }

    /// What a call makes of `answer`, read by tonic through the endpoint's [`status_from_http`].
    fn call_answered(answer: fn() -> http::Response<Body>) -> tonic::Status {
        let service = tower::service_fn(move |_: http::Request<Body>| async move { Ok::<_, tonic::Status>(answer()) });
        let channel = tower::util::MapResponse::new(service, status_from_http as fn(_) -> _);
        let mut grpc = tonic::client::Grpc::new(channel);
        let codec = tonic_prost::ProstCodec::<ServerReadyRequest, ServerReadyResponse>::default();
        let path = PathAndQuery::from_static("/inference.GRPCInferenceService/ServerReady");
        runtime()
            .unwrap()
            .block_on(grpc.unary(tonic::Request::new(ServerReadyRequest {}), path, codec))
            .expect_err("the answer is an error")
    }

    #[test]
    fn status_details_that_are_not_base64_fail_the_call_instead_of_crashing_the_client() {
        // In the headers of an answer without a body ("trailers-only")…
        let status = call_answered(|| {
            http::Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "13")
                .header("grpc-message", "model%20failed")
                .header(STATUS_DETAILS, "%%% not base64 %%%")
                .body(Body::empty())
                .unwrap()
        });
        assert_eq!((status.code(), status.message()), (tonic::Code::Internal, "model failed"));
        // …and in the trailers after one.
        let status = call_answered(|| {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("14"));
            trailers.insert(STATUS_DETAILS, http::HeaderValue::from_static("*not*base64*"));
            let body = http_body_util::BodyExt::with_trailers(
                http_body_util::Empty::<tonic::codegen::Bytes>::new(),
                std::future::ready(Some(Ok(trailers))),
            );
            http::Response::builder().header("content-type", "application/grpc").body(Body::new(body)).unwrap()
        });
        assert_eq!(status.code(), tonic::Code::Unavailable);
        // Details that are base64 (padded or not) are kept.
        let mut headers = http::HeaderMap::new();
        for details in ["AAEC", "AAE=", "AAE"] {
            headers.insert(STATUS_DETAILS, http::HeaderValue::from_static(details));
            without_bad_details(&mut headers);
            assert!(headers.contains_key(STATUS_DETAILS), "{details}");
        }
    }
}
