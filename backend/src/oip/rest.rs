//! The Open Inference Protocol over HTTP: health, metadata and inference with the binary
//! tensor extension (a JSON header of `Inference-Header-Content-Length` bytes, then the raw
//! little-endian tensors), reading raw or typed (JSON `data`) outputs.

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    Bearer, Datatype, EndpointUrl, InputSpec, ModelMetadata, OipError, OutputChoice, ServerMetadata, TensorMetadata,
};
use crate::score::Packed;

const HEADER_LENGTH: &str = "inference-header-content-length";

/// The largest answer to a readiness or metadata request: a few kB in practice.
const SMALL_ANSWER_LIMIT: u64 = 1 << 20;

/// The bytes of an error answer's body kept for its message.
const ERROR_BODY_SHOWN: u64 = 64 << 10;

/// The largest answer to an inference request of `rows` texts: its JSON header (typed `data` of
/// a few values per row, with the names and shapes of every output) and raw outputs, with
/// room to spare, so that a server cannot make the client hold gigabytes.
fn infer_answer_limit(rows: usize) -> u64 {
    (1u64 << 20).saturating_add((rows as u64).saturating_mul(4 << 10))
}

pub(super) struct RestEndpoint {
    url: EndpointUrl,
    agent: ureq::Agent,
    timeout: Duration,
    bearer: Option<Bearer>,
}

impl RestEndpoint {
    pub(super) fn new(url: EndpointUrl, timeout: Duration, bearer: Option<Bearer>) -> RestEndpoint {
        let agent = ureq::Agent::config_builder()
            .tls_config(crate::net::tls())
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
            .http_status_as_error(false)
            .user_agent(concat!("seal-lab/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        RestEndpoint { url, agent, timeout, bearer }
    }

    /// A request with the endpoint's credentials, when it has any.
    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.bearer {
            Some(b) => request.header("Authorization", b.header()),
            None => request,
        }
    }

    fn get(&self, url: &str) -> Result<Answer, OipError> {
        self.read(url, self.authorized(self.agent.get(url)).call(), SMALL_ANSWER_LIMIT)
    }

    fn model_path(&self) -> String {
        match &self.url.version {
            Some(v) => format!("{}/v2/models/{}/versions/{}", self.url.base, self.url.model, v),
            None => format!("{}/v2/models/{}", self.url.base, self.url.model),
        }
    }

    fn failed(&self, url: &str, e: ureq::Error) -> OipError {
        match e {
            ureq::Error::Timeout(_) => OipError::Timeout { url: url.to_owned(), after: self.timeout },
            other => OipError::Transport { url: url.to_owned(), detail: other.to_string() },
        }
    }

    /// The answer's status, `Retry-After`, headers and body (a 2xx body of at most `limit`
    /// bytes, or the answer is refused); statuses other than 2xx become [`OipError::Status`],
    /// with the start of their body.
    fn read(
        &self,
        url: &str,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        limit: u64,
    ) -> Result<Answer, OipError> {
        let mut resp = resp.map_err(|e| self.failed(url, e))?;
        let status = resp.status().as_u16();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let retry_after = header("retry-after").and_then(|s| crate::net::retry_after(&s, std::time::SystemTime::now()));
        let json_length = header(HEADER_LENGTH);
        if !(200..300).contains(&status) {
            // Only its start is shown: the rest is left unread.
            let mut start = Vec::new();
            let _ = std::io::Read::read_to_end(
                &mut std::io::Read::take(resp.body_mut().as_reader(), ERROR_BODY_SHOWN),
                &mut start,
            );
            return Err(OipError::Status {
                url: url.to_owned(),
                status,
                body: crate::net::short(&String::from_utf8_lossy(&start)),
                retry_after,
            });
        }
        let body = resp.body_mut().with_config().limit(limit).read_to_vec().map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(n) => OipError::Protocol {
                url: url.to_owned(),
                detail: format!("the answer is larger than {n} bytes, far more than its scores need"),
            },
            e => self.failed(url, e),
        })?;
        Ok(Answer { json_length, body })
    }

    fn get_json(&self, url: &str) -> Result<Value, OipError> {
        let answer = self.get(url)?;
        serde_json::from_slice(&answer.body).map_err(|e| OipError::Protocol {
            url: url.to_owned(),
            detail: format!("not JSON ({e}): {}", crate::net::short(&String::from_utf8_lossy(&answer.body))),
        })
    }

    /// Server and model both ready, each answering within `timeout`. The protocol answers
    /// "not ready" with a 4xx (Triton a 400, while a model loads), which is
    /// [`OipError::NotReady`], worth asking again; a 401/403 stays a refusal of credentials.
    pub(super) fn ready(&self, timeout: Duration) -> Result<(), OipError> {
        let check = |url: String, what: &str| {
            let request = self.agent.get(&url).config().timeout_global(Some(timeout)).build();
            match self.read(&url, self.authorized(request).call(), SMALL_ANSWER_LIMIT) {
                Err(OipError::Status { status, body, .. })
                    if (400..500).contains(&status) && !matches!(status, 401 | 403) =>
                {
                    Err(OipError::NotReady { url, detail: format!("{what} is not ready (HTTP {status}: {body})") })
                }
                Err(OipError::Timeout { url, .. }) => Err(OipError::Timeout { url, after: timeout }),
                other => other.map(drop),
            }
        };
        check(format!("{}/v2/health/ready", self.url.base), "the server")?;
        check(format!("{}/ready", self.model_path()), "the model")
    }

    pub(super) fn server_metadata(&self) -> Result<ServerMetadata, OipError> {
        let url = format!("{}/v2", self.url.base);
        let v = self.get_json(&url)?;
        Ok(ServerMetadata {
            name: v.get("name").and_then(Value::as_str).unwrap_or("unknown").to_owned(),
            version: v.get("version").and_then(Value::as_str).unwrap_or("unknown").to_owned(),
        })
    }

    pub(super) fn model_metadata(&self) -> Result<ModelMetadata, OipError> {
        let url = self.model_path();
        let v = self.get_json(&url)?;
        let tensors = |key: &str| -> Result<Vec<TensorMetadata>, OipError> {
            let Some(list) = v.get(key).and_then(Value::as_array) else { return Ok(Vec::new()) };
            list.iter()
                .map(|t| {
                    let bad = |what: &str| OipError::Protocol {
                        url: url.clone(),
                        detail: format!("metadata `{key}` entry without {what}: {t}"),
                    };
                    Ok(TensorMetadata {
                        name: t.get("name").and_then(Value::as_str).ok_or_else(|| bad("a name"))?.to_owned(),
                        datatype: t
                            .get("datatype")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad("a datatype"))?
                            .to_owned(),
                        shape: t
                            .get("shape")
                            .and_then(Value::as_array)
                            .ok_or_else(|| bad("a shape"))?
                            .iter()
                            .map(|d| d.as_i64().ok_or_else(|| bad("integer dims")))
                            .collect::<Result<_, _>>()?,
                    })
                })
                .collect()
        };
        Ok(ModelMetadata {
            name: v.get("name").and_then(Value::as_str).unwrap_or(&self.url.model).to_owned(),
            versions: v
                .get("versions")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            platform: v.get("platform").and_then(Value::as_str).unwrap_or("").to_owned(),
            inputs: tensors("inputs")?,
            outputs: tensors("outputs")?,
        })
    }

    /// One inference: the packed columns as binary tensors; returns `output[i][0]` per row.
    pub(super) fn infer(
        &self,
        id: &str,
        packed: &Packed,
        inputs: &[InputSpec],
        output: &OutputChoice,
    ) -> Result<Vec<f64>, OipError> {
        let url = format!("{}/infer", self.model_path());
        let shape = [packed.rows, packed.width];
        let mut raw: Vec<u8> = Vec::new();
        let mut declared = Vec::with_capacity(inputs.len());
        for spec in inputs {
            let column = super::raw_column(packed, spec)?;
            declared.push(json!({
                "name": spec.name,
                "shape": shape,
                "datatype": spec.datatype.as_str(),
                "parameters": {"binary_data_size": column.len()},
            }));
            raw.extend_from_slice(&column);
        }
        let mut header = json!({"id": id, "inputs": declared});
        match output {
            OutputChoice::Named(name) => {
                header["outputs"] = json!([{"name": name, "parameters": {"binary_data": true}}])
            }
            OutputChoice::Only => header["parameters"] = json!({"binary_data_output": true}),
        }
        let mut body = serde_json::to_vec(&header).map_err(|e| OipError::Refused(e.to_string()))?;
        let header_length = body.len();
        body.extend_from_slice(&raw);
        let answer = self.read(
            &url,
            self.authorized(self.agent.post(&url))
                .header("content-type", "application/octet-stream")
                .header("Inference-Header-Content-Length", header_length.to_string())
                .send(&body[..]),
            infer_answer_limit(packed.rows),
        )?;
        parse_outputs(&url, &answer, output, packed.rows)
    }
}

/// Appends the numbers of `data`, row-major when nested; false when it holds anything else.
fn flatten(data: &[Value], out: &mut Vec<f64>) -> bool {
    data.iter().all(|x| match x {
        Value::Array(inner) => flatten(inner, out),
        other => other.as_f64().map(|v| out.push(v)).is_some(),
    })
}

struct Answer {
    json_length: Option<String>,
    body: Vec<u8>,
}

/// Reads the chosen output of an inference answer, raw (binary extension) or typed (JSON
/// `data`), as `output[i][0]` per row.
fn parse_outputs(url: &str, answer: &Answer, choice: &OutputChoice, rows: usize) -> Result<Vec<f64>, OipError> {
    let bad = |detail: String| OipError::Protocol { url: url.to_owned(), detail };
    let json_len = match &answer.json_length {
        Some(n) => n.trim().parse::<usize>().map_err(|_| bad(format!("bad {HEADER_LENGTH} `{n}`")))?,
        None => answer.body.len(),
    };
    if json_len > answer.body.len() {
        return Err(bad(format!("{HEADER_LENGTH} {json_len} exceeds the body's {} bytes", answer.body.len())));
    }
    let (json_part, mut raw) = answer.body.split_at(json_len);
    let v: Value = serde_json::from_slice(json_part).map_err(|e| bad(format!("answer header is not JSON: {e}")))?;
    let outputs = v.get("outputs").and_then(Value::as_array).ok_or_else(|| bad("answer has no `outputs`".into()))?;
    let mut found = None;
    for o in outputs {
        let name = o.get("name").and_then(Value::as_str).unwrap_or("");
        let size = o.get("parameters").and_then(|p| p.get("binary_data_size")).and_then(Value::as_u64);
        let (mine, rest) = match size {
            Some(n) if n as usize <= raw.len() => raw.split_at(n as usize),
            Some(n) => return Err(bad(format!("output `{name}` claims {n} bytes; {} remain", raw.len()))),
            None => (&raw[..0], raw),
        };
        raw = rest;
        let wanted = match choice {
            OutputChoice::Named(n) => n == name,
            OutputChoice::Only => outputs.len() == 1 || name == "logits",
        };
        if wanted && found.is_none() {
            found = Some((o, size.map(|_| mine)));
        }
    }
    let (o, bytes) = found.ok_or_else(|| {
        bad(match choice {
            OutputChoice::Named(n) => format!("answer has no output `{n}`"),
            OutputChoice::Only => "answer has several outputs and none is `logits`".into(),
        })
    })?;
    let datatype: Datatype = o
        .get("datatype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("output without a datatype".into()))?
        .parse()
        .map_err(bad)?;
    let shape: Vec<usize> = o
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("output without a shape".into()))?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("output shape is not a list of sizes".into()))?;
    let values = match bytes {
        Some(b) => datatype.read_le(b).map_err(bad)?,
        None => {
            let data = o
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("output has neither binary data nor `data`".into()))?;
            // Flat, or nested as the tensor's shape (both are the protocol's JSON forms).
            let mut values = Vec::new();
            flatten(data, &mut values)
                .then_some(values)
                .ok_or_else(|| bad("output `data` holds a non-number".into()))?
        }
    };
    super::first_column(&shape, &values, rows).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str, raw: &[u8]) -> Answer {
        let mut body = json.as_bytes().to_vec();
        body.extend_from_slice(raw);
        Answer { json_length: Some(json.len().to_string()), body }
    }

    /// A server on loopback that answers every request with `status` and a body of `size`
    /// spaces (as many as the client reads).
    fn server_answering(status: u16, size: usize) -> u16 {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut stream = reader.into_inner();
                let head =
                    format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&vec![b' '; size]);
            }
        });
        port
    }

    #[test]
    fn a_server_cannot_make_the_client_read_a_huge_answer() {
        let endpoint = |port: u16| {
            let url: EndpointUrl = format!("http://127.0.0.1:{port}/v2/models/rm").parse().unwrap();
            RestEndpoint::new(url, Duration::from_secs(20), None)
        };
        // A readiness answer of 8 MiB is refused after the first MiB, not read whole.
        let big = endpoint(server_answering(200, 8 << 20));
        match big.ready(Duration::from_secs(20)) {
            Err(OipError::Protocol { detail, .. }) => assert!(detail.contains("larger than 1048576 bytes"), "{detail}"),
            other => panic!("{other:?}"),
        }
        // An error answer is still told by its status.
        let failing = endpoint(server_answering(503, 8 << 20));
        assert!(matches!(failing.ready(Duration::from_secs(20)), Err(OipError::Status { status: 503, .. })));
        assert!(infer_answer_limit(1024) < 8 << 20 && infer_answer_limit(1) >= 1 << 20);
    }

    #[test]
    fn raw_and_typed_outputs_read_alike() {
        let floats: Vec<u8> = [0.5f32, -1.25].iter().flat_map(|f| f.to_le_bytes()).collect();
        let raw = answer(
            r#"{"outputs":[{"name":"logits","shape":[2,1],"datatype":"FP32","parameters":{"binary_data_size":8}}]}"#,
            &floats,
        );
        let named = OutputChoice::Named("logits".into());
        assert_eq!(parse_outputs("u", &raw, &named, 2).unwrap(), vec![0.5, -1.25]);
        let typed = Answer {
            json_length: None,
            body: br#"{"outputs":[{"name":"logits","shape":[2,1],"datatype":"FP32","data":[0.5,-1.25]}]}"#.to_vec(),
        };
        assert_eq!(parse_outputs("u", &typed, &OutputChoice::Only, 2).unwrap(), vec![0.5, -1.25]);
        // The JSON form nested as the shape.
        let nested = Answer {
            json_length: None,
            body: br#"{"outputs":[{"name":"logits","shape":[2,1],"datatype":"FP32","data":[[0.5],[-1.25]]}]}"#.to_vec(),
        };
        assert_eq!(parse_outputs("u", &nested, &OutputChoice::Only, 2).unwrap(), vec![0.5, -1.25]);
        let text = Answer {
            json_length: None,
            body: br#"{"outputs":[{"name":"logits","shape":[2,1],"datatype":"FP32","data":[["a"],[1]]}]}"#.to_vec(),
        };
        assert!(parse_outputs("u", &text, &OutputChoice::Only, 2).unwrap_err().to_string().contains("non-number"));
    }

    #[test]
    fn a_second_raw_output_is_skipped_by_its_size() {
        let mut raw: Vec<u8> = [9.0f64].iter().flat_map(|f| f.to_le_bytes()).collect();
        raw.extend([1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|f| f.to_le_bytes()));
        let a = answer(
            r#"{"outputs":[{"name":"other","shape":[1],"datatype":"FP64","parameters":{"binary_data_size":8}},
                {"name":"logits","shape":[2,2],"datatype":"FP32","parameters":{"binary_data_size":16}}]}"#,
            &raw,
        );
        assert_eq!(parse_outputs("u", &a, &OutputChoice::Only, 2).unwrap(), vec![1.0, 3.0]);
    }

    #[test]
    fn malformed_answers_say_what_is_wrong() {
        let short = answer(
            r#"{"outputs":[{"name":"logits","shape":[2,1],"datatype":"FP32","parameters":{"binary_data_size":8}}]}"#,
            &[0, 0, 0, 0],
        );
        let e = parse_outputs("u", &short, &OutputChoice::Only, 2).unwrap_err().to_string();
        assert!(e.contains("claims 8 bytes; 4 remain"), "{e}");
        let few = Answer {
            json_length: None,
            body: br#"{"outputs":[{"name":"logits","shape":[1,1],"datatype":"FP32","data":[0.5]}]}"#.to_vec(),
        };
        let e = parse_outputs("u", &few, &OutputChoice::Only, 2).unwrap_err().to_string();
        assert!(e.contains("1 rows") && e.contains("2 were sent"), "{e}");
        let missing = Answer { json_length: None, body: br#"{"outputs":[]}"#.to_vec() };
        let e = parse_outputs("u", &missing, &OutputChoice::Named("logits".into()), 1).unwrap_err().to_string();
        assert!(e.contains("no output `logits`"), "{e}");
    }
}
