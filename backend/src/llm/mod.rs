//! One client for OpenAI-compatible chat completions (`POST {base}/chat/completions`), as served
//! by OpenAI, vLLM, Ollama and llama.cpp: JSON mode, a timeout per request, and retries with
//! exponential backoff and jitter on 429, 5xx, timeouts and dropped connections (a server's
//! `Retry-After`, seconds or a date, is honoured when it asks for longer, up to `max_delay`).
//!
//! The only module that talks to LM servers.

use std::time::Duration;

use backon::BackoffBuilder;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where requests go: `OPENAI_BASE_URL` / `OPENAI_API_KEY` by convention. Its `Debug` form
/// shows whether a key is set, never the key.
#[derive(Clone, PartialEq)]
pub struct Endpoint {
    /// Up to and including the API version, e.g. `https://api.openai.com/v1`,
    /// `http://localhost:11434/v1` (Ollama), `http://localhost:8000/v1` (vLLM).
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .finish()
    }
}

impl Endpoint {
    pub fn chat_url(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Message {
        Message { role: "user".into(), content: content.into() }
    }
    pub fn assistant(content: impl Into<String>) -> Message {
        Message { role: "assistant".into(), content: content.into() }
    }
}

/// Sampling parameters sent with every request (part of the cache key of callers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatParams {
    pub temperature: f64,
    /// `response_format: {"type": "json_object"}`.
    pub json_mode: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// A completion's text and the token counts the server reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub content: String,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub finish_reason: Option<String>,
}

/// A request that failed; shown as the endpoint's URL and [`LlmError::reason`].
#[derive(Debug)]
pub enum LlmError {
    Status { url: String, status: u16, body: String, retry_after: Option<Duration> },
    Timeout { url: String, after: Duration },
    Transport { url: String, detail: String },
    Protocol { url: String, detail: String, body: String },
}

impl std::fmt::Display for LlmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (LlmError::Status { url, .. }
        | LlmError::Timeout { url, .. }
        | LlmError::Transport { url, .. }
        | LlmError::Protocol { url, .. }) = self;
        write!(f, "{url}: {}", self.reason())
    }
}

impl std::error::Error for LlmError {}

impl LlmError {
    /// What went wrong, without the endpoint's address: what is stored with the data (a label
    /// failure, a variant's left-out line), which readers other than admins see.
    pub fn reason(&self) -> String {
        match self {
            LlmError::Status { status, body, .. } => format!("HTTP {status}: {body}"),
            LlmError::Timeout { after, .. } => format!("no answer within {after:?}"),
            LlmError::Transport { detail, .. } => detail.clone(),
            LlmError::Protocol { detail, body, .. } => {
                format!("the answer is not a chat completion ({detail}): {body}")
            }
        }
    }

    /// Worth another try: rate limits, server errors, timeouts, connection failures.
    pub fn retryable(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            LlmError::Timeout { .. } | LlmError::Transport { .. } => true,
            LlmError::Protocol { .. } => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Retry policy: `retries` more tries after the first, delays growing from `min_delay`.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry { retries: 6, min_delay: Duration::from_secs(1), max_delay: Duration::from_secs(60) }
    }
}

pub struct ChatClient {
    endpoint: Endpoint,
    agent: ureq::Agent,
    timeout: Duration,
    retry: Retry,
}

impl ChatClient {
    pub fn new(endpoint: Endpoint, timeout: Duration, retry: Retry) -> ChatClient {
        let agent = ureq::Agent::config_builder()
            .tls_config(crate::net::tls())
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("seal-lab/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        ChatClient { endpoint, agent, timeout, retry }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The request body for `messages` (also what the Batch API file holds per line).
    pub fn body(&self, messages: &[Message], params: &ChatParams) -> Value {
        let mut body = json!({
            "model": self.endpoint.model,
            "messages": messages,
            "temperature": params.temperature,
        });
        if params.json_mode {
            body["response_format"] = json!({"type": "json_object"});
        }
        if let Some(m) = params.max_tokens {
            body["max_tokens"] = json!(m);
        }
        if let Some(s) = params.seed {
            body["seed"] = json!(s);
        }
        body
    }

    /// One completion, retried as the policy allows.
    pub fn complete(&self, messages: &[Message], params: &ChatParams) -> Result<Answer, LlmError> {
        self.complete_unless(messages, params, None)
    }

    /// [`ChatClient::complete`] that gives up as soon as `stop` is set while it waits to retry,
    /// with the error it was about to retry: a cancelled job does not sit out a server's
    /// `Retry-After`.
    pub fn complete_unless(
        &self,
        messages: &[Message],
        params: &ChatParams,
        stop: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<Answer, LlmError> {
        let body = self.body(messages, params).to_string();
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.retries)
            .with_jitter()
            .build();
        loop {
            match self.once(&body) {
                Ok(answer) => return Ok(answer),
                Err(e) if e.retryable() => match delays.next() {
                    Some(delay) => {
                        let delay = self.delay(delay, &e);
                        tracing::warn!("{e}; retrying in {delay:?}");
                        if !wait_unless(delay, stop) {
                            return Err(e);
                        }
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// The wait before the next try: backon's `base`, or longer when the server's `Retry-After`
    /// asks for it (up to `max_delay`).
    fn delay(&self, base: Duration, e: &LlmError) -> Duration {
        e.retry_after().map_or(base, |asked| asked.clamp(base, self.retry.max_delay.max(base)))
    }

    fn once(&self, body: &str) -> Result<Answer, LlmError> {
        let url = self.endpoint.chat_url();
        let mut req = self.agent.post(&url).header("content-type", "application/json");
        if let Some(key) = self.endpoint.api_key.as_deref().filter(|k| !k.is_empty()) {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let failed = |e: ureq::Error| match e {
            ureq::Error::Timeout(_) => LlmError::Timeout { url: url.clone(), after: self.timeout },
            other => LlmError::Transport { url: url.clone(), detail: other.to_string() },
        };
        let mut resp = req.send(body).map_err(failed)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| crate::net::retry_after(s, std::time::SystemTime::now()));
        let text = resp.body_mut().read_to_string().map_err(failed)?;
        if !(200..300).contains(&status) {
            return Err(LlmError::Status { url, status, body: crate::net::short(&text), retry_after });
        }
        parse_completion(&text).map_err(|detail| LlmError::Protocol { url, detail, body: crate::net::short(&text) })
    }
}

/// Sleeps `delay`, looking at `stop` every 50 ms; `false` when it was set.
fn wait_unless(delay: Duration, stop: Option<&std::sync::atomic::AtomicBool>) -> bool {
    let Some(stop) = stop else {
        std::thread::sleep(delay);
        return true;
    };
    let until = std::time::Instant::now() + delay;
    loop {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// The first choice of a chat completion.
pub fn parse_completion(text: &str) -> Result<Answer, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let choice = v.get("choices").and_then(|c| c.get(0)).ok_or("no `choices[0]`")?;
    let content = choice
        .get("message")
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .ok_or("no `choices[0].message.content` string")?;
    let usage = v.get("usage");
    let count = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_u64);
    Ok(Answer {
        content: content.to_owned(),
        prompt_tokens: count("prompt_tokens"),
        completion_tokens: count("completion_tokens"),
        finish_reason: choice.get("finish_reason").and_then(Value::as_str).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_parse_and_malformed_ones_say_why() {
        let a = parse_completion(
            r#"{"choices":[{"message":{"role":"assistant","content":"{\"a\":1}"},"finish_reason":"stop"}],
                "usage":{"prompt_tokens":12,"completion_tokens":5}}"#,
        )
        .unwrap();
        assert_eq!(a.content, "{\"a\":1}");
        assert_eq!((a.prompt_tokens, a.completion_tokens), (Some(12), Some(5)));
        assert_eq!(a.finish_reason.as_deref(), Some("stop"));
        assert_eq!(parse_completion("{}").unwrap_err(), "no `choices[0]`");
        assert!(parse_completion("<html>").unwrap_err().starts_with("not JSON"));
    }

    #[test]
    fn an_endpoints_debug_form_hides_its_key() {
        let e = Endpoint { base_url: "http://h/v1".into(), api_key: Some("sk-secret-1".into()), model: "m".into() };
        let shown = format!("{e:?}");
        assert!(!shown.contains("sk-secret-1") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn which_errors_are_retried() {
        let status = |s| LlmError::Status { url: "u".into(), status: s, body: String::new(), retry_after: None };
        assert!(status(429).retryable());
        assert!(status(503).retryable());
        assert!(!status(400).retryable());
        assert!(!status(401).retryable());
        assert!(LlmError::Timeout { url: "u".into(), after: Duration::from_secs(1) }.retryable());
        assert!(!LlmError::Protocol { url: "u".into(), detail: String::new(), body: String::new() }.retryable());
    }

    #[test]
    fn a_stop_ends_the_wait_for_a_retry() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        // A server that is always busy and asks for a minute's patience.
        let (port, asked) = crate::net::serve_canned(|_, _| {
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 60\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
                .to_owned()
        });
        let c = ChatClient::new(
            Endpoint { base_url: format!("http://127.0.0.1:{port}/v1"), api_key: None, model: "m".into() },
            Duration::from_secs(5),
            Retry { retries: 3, min_delay: Duration::from_secs(1), max_delay: Duration::from_secs(60) },
        );
        let stop = Arc::new(AtomicBool::new(false));
        let setter = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            setter.store(true, Ordering::SeqCst);
        });
        let params = ChatParams { temperature: 0.0, json_mode: true, max_tokens: None, seed: None };
        let started = std::time::Instant::now();
        let err = c.complete_unless(&[Message::user("hi")], &params, Some(&stop)).unwrap_err();
        assert!(matches!(err, LlmError::Status { status: 503, .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(30), "waited {:?} of the minute asked", started.elapsed());
        assert_eq!(asked.load(Ordering::SeqCst), 1, "no retry after the stop");
    }

    #[test]
    fn the_client_waits_as_retry_after_asks_within_its_limits() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let retry_after = crate::net::retry_after;
        // The client waits no longer than its `max_delay`, and no shorter than backon asks.
        let c = ChatClient::new(
            Endpoint { base_url: "http://h/v1".into(), api_key: None, model: "m".into() },
            Duration::from_secs(1),
            Retry::default(),
        );
        let busy = |after: &str| LlmError::Status {
            url: "u".into(),
            status: 429,
            body: String::new(),
            retry_after: retry_after(after, now),
        };
        assert_eq!(c.delay(Duration::from_secs(2), &busy("1e20")), Retry::default().max_delay);
        assert_eq!(c.delay(Duration::from_secs(2), &busy("5")), Duration::from_secs(5));
        assert_eq!(c.delay(Duration::from_secs(2), &busy("1")), Duration::from_secs(2));
        assert_eq!(c.delay(Duration::from_secs(2), &busy("soon")), Duration::from_secs(2));
    }

    #[test]
    fn the_body_is_openai_shaped() {
        let c = ChatClient::new(
            Endpoint { base_url: "http://h/v1/".into(), api_key: None, model: "m".into() },
            Duration::from_secs(1),
            Retry::default(),
        );
        assert_eq!(c.endpoint().chat_url(), "http://h/v1/chat/completions");
        let b = c.body(
            &[Message::user("hi")],
            &ChatParams { temperature: 0.0, json_mode: true, max_tokens: None, seed: None },
        );
        assert_eq!(
            b,
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.0,
                   "response_format": {"type": "json_object"}})
        );
    }
}
