//! Source formats: reading hh-rlhf transcripts and generic preference-pair tables, validating
//! every line, and turning them into [`NewPair`]s with stable ids.
//!
//! Parquet rows arrive already converted to JSON objects by the pipeline, which asks the store
//! to read them.

pub mod transcript;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::{NewPair, RejectedLine, Side};
use transcript::split_last_assistant;

/// How many invalid lines an error message lists before it summarises.
const LIST_LIMIT: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{file}: cannot read: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}: {count} invalid line(s); nothing was stored (use --skip-invalid to store the valid ones and record the others):\n{list}")]
    Invalid { file: String, count: usize, list: String },
    #[error("{file}: no pairs found")]
    Empty { file: String },
    #[error("{file}: no valid pairs; all {count} line(s) are invalid:\n{list}")]
    NoneValid { file: String, count: usize, list: String },
    #[error("{file}: {reason}")]
    Format { file: String, reason: String },
    /// Past the decompressed-size cap; the caller's input, not the machine.
    #[error("{file}: more than {cap_mb} MB after decompression, the cap of web ingest (ingest.max_decompressed_mb)")]
    TooBig { file: String, cap_mb: u64 },
}

/// The raw bytes of a source and their content hash.
pub struct RawSource {
    /// What the user named: a path or a URL.
    pub uri: String,
    /// The local file (the download cache for URLs).
    pub path: PathBuf,
    pub sha256: String,
    /// Decompressed content.
    pub text_bytes: Vec<u8>,
}

/// Reads a local file, decompressing gzip (detected by its magic bytes), and hashes its bytes.
pub fn read_source(uri: &str, path: &Path) -> Result<RawSource, IngestError> {
    read_source_capped(uri, path, None)
}

/// [`read_source`] that refuses a source larger than `cap` bytes, compressed or not (a gzip
/// bomb stops at the cap instead of filling memory).
pub fn read_source_capped(uri: &str, path: &Path, cap: Option<u64>) -> Result<RawSource, IngestError> {
    let io = |source| IngestError::Io { file: uri.to_owned(), source };
    let too_big = |cap: u64| IngestError::TooBig { file: uri.to_owned(), cap_mb: cap / 1_000_000 };
    let limit = cap.unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(limit.saturating_add(1)).read_to_end(&mut bytes)).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_big(limit));
    }
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let text_bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(limit as usize));
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(io)?;
        if out.len() as u64 > limit {
            return Err(too_big(limit));
        }
        out
    } else {
        bytes
    };
    // A byte order mark (as Windows editors save UTF-8) is no part of the first line's text.
    let mut text_bytes = text_bytes;
    if text_bytes.starts_with(b"\xEF\xBB\xBF") {
        text_bytes.drain(..3);
    }
    Ok(RawSource { uri: uri.to_owned(), path: path.to_owned(), sha256, text_bytes })
}

/// A source without a URL's query and fragment; a local path keeps its `?` and `#` (a folder
/// named `run#2`, say).
pub fn without_query(uri: &str) -> &str {
    if uri.contains("://") {
        uri.split(['?', '#']).next().unwrap_or(uri)
    } else {
        uri
    }
}

/// Where pair ids come from: `subset/split/line`.
#[derive(Debug, Clone)]
pub struct IdScheme {
    pub subset: String,
    pub split: String,
}

impl IdScheme {
    /// hh-rlhf layout: `…/harmless-base/test.jsonl.gz` → subset `harmless-base`, split `test`.
    pub fn from_uri(uri: &str) -> IdScheme {
        let mut parts = without_query(uri).rsplit(['/', '\\']);
        let file = parts.next().unwrap_or("data");
        let parent = parts.next().unwrap_or("");
        let split = file.split('.').next().filter(|s| !s.is_empty()).unwrap_or("data");
        let subset = if parent.is_empty() || parent.contains(':') { "default" } else { parent };
        IdScheme { subset: subset.to_owned(), split: split.to_owned() }
    }

    fn id(&self, line0: u64) -> String {
        format!("{}/{}/{}", self.subset, self.split, line0)
    }
}

/// The outcome of parsing one source.
#[derive(Debug)]
pub struct Parsed {
    pub pairs: Vec<NewPair>,
    pub rejected: Vec<RejectedLine>,
    pub n_lines: u64,
}

impl Parsed {
    /// All-or-nothing unless `skip_invalid`: any rejected line turns into an error that lists them.
    /// With every line invalid, the error lists why even with `skip_invalid`.
    pub fn check(self, uri: &str, skip_invalid: bool) -> Result<Parsed, IngestError> {
        let list = || {
            let mut list: Vec<String> =
                self.rejected.iter().take(LIST_LIMIT).map(|r| format!("  {uri}:{}: {}", r.line, r.reason)).collect();
            if self.rejected.len() > LIST_LIMIT {
                list.push(format!("  … and {} more", self.rejected.len() - LIST_LIMIT));
            }
            list.join("\n")
        };
        let (file, count) = (uri.to_owned(), self.rejected.len());
        if count > 0 && !skip_invalid {
            return Err(IngestError::Invalid { file, count, list: list() });
        }
        if count > 0 && self.pairs.is_empty() {
            return Err(IngestError::NoneValid { file, count, list: list() });
        }
        if self.pairs.is_empty() {
            return Err(IngestError::Empty { file: uri.to_owned() });
        }
        Ok(self)
    }
}

/// Splits decompressed bytes into lines, keeping 0-based positions. A final empty line (the
/// file's trailing newline) is not a line; blank lines elsewhere are reported as invalid.
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

/// Parses an hh-rlhf JSONL file: one `{"chosen": transcript, "rejected": transcript}` per line.
pub fn parse_hh_rlhf(raw: &RawSource, ids: &IdScheme) -> Parsed {
    let lines = lines(&raw.text_bytes);
    let results: Vec<(u64, Result<NewPair, String>)> =
        lines.par_iter().enumerate().map(|(i, line)| (i as u64 + 1, parse_hh_line(line, ids, i as u64))).collect();
    collect(results, lines.len() as u64)
}

/// Pairs and rejected lines from each row's file line and outcome. A row whose pair id an
/// earlier row has (an id column with a value twice) is rejected, naming that row's line.
fn collect(results: Vec<(u64, Result<NewPair, String>)>, n_lines: u64) -> Parsed {
    let mut pairs = Vec::with_capacity(results.len());
    let mut rejected = Vec::new();
    let mut first: HashMap<String, u64> = HashMap::with_capacity(results.len());
    for (line, r) in results {
        match r {
            Ok(p) => match first.get(&p.pair_id) {
                Some(at) => rejected
                    .push(RejectedLine { line, reason: format!("pair id `{}` is already on line {at}", p.pair_id) }),
                None => {
                    first.insert(p.pair_id.clone(), line);
                    pairs.push(p);
                }
            },
            Err(reason) => rejected.push(RejectedLine { line, reason }),
        }
    }
    Parsed { pairs, rejected, n_lines }
}

fn parse_hh_line(line: &[u8], ids: &IdScheme, line0: u64) -> Result<NewPair, String> {
    let text =
        std::str::from_utf8(line).map_err(|e| format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to()))?;
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.trim().is_empty() {
        return Err("empty line".into());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let obj = value.as_object().ok_or("expected a JSON object with `chosen` and `rejected`")?;
    let field = |name: &str| -> Result<Side, String> {
        let v = obj.get(name).ok_or_else(|| format!("missing field `{name}`"))?;
        let s = v.as_str().ok_or_else(|| format!("field `{name}` is not a string"))?;
        side_from_transcript(s).map_err(|e| format!("field `{name}`: {e}"))
    };
    Ok(NewPair {
        pair_id: ids.id(line0),
        subset: ids.subset.clone(),
        split: ids.split.clone(),
        line: line0,
        chosen: field("chosen")?,
        rejected: field("rejected")?,
    })
}

fn side_from_transcript(s: &str) -> Result<Side, String> {
    if s.trim().is_empty() {
        return Err("empty text".into());
    }
    split_last_assistant(s).ok_or_else(|| "no \"Assistant:\" tag to split the last response at".into())
}

/// Column names for generic preference-pair tables (RewardBench style).
#[derive(Debug, Clone)]
pub struct Columns {
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
    /// Optional id column; the row number is used when absent.
    pub id: Option<String>,
    /// Optional subset column; the file-derived subset is used when absent.
    pub subset: Option<String>,
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            prompt: "prompt".into(),
            chosen: "chosen".into(),
            rejected: "rejected".into(),
            id: None,
            subset: None,
        }
    }
}

/// The rows of a table source as JSON objects (or why a row is not one), each with the file
/// line it starts on where the format says: a CSV cell may hold newlines, so a CSV row's line is
/// not its index plus the header's. Rows collected from an iterator (Parquet's) carry none.
#[derive(Debug, Default)]
pub struct Rows(Vec<(Option<u64>, Result<Value, String>)>);

impl Rows {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each row with its file line; a row without one is line `first_line` + its index.
    pub fn numbered(self, first_line: u64) -> impl Iterator<Item = (u64, Result<Value, String>)> {
        self.0.into_iter().enumerate().map(move |(i, (line, row))| (line.unwrap_or(first_line + i as u64), row))
    }
}

impl FromIterator<Result<Value, String>> for Rows {
    fn from_iter<I: IntoIterator<Item = Result<Value, String>>>(rows: I) -> Rows {
        Rows(rows.into_iter().map(|row| (None, row)).collect())
    }
}

/// Parses a JSONL file of generic pairs (row i is line i + 1).
pub fn jsonl_rows(raw: &RawSource) -> Rows {
    let rows: Vec<Result<Value, String>> = lines(&raw.text_bytes)
        .par_iter()
        .map(|line| {
            let text = std::str::from_utf8(line)
                .map_err(|e| format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to()))?;
            if text.trim().is_empty() {
                return Err("empty line".to_owned());
            }
            serde_json::from_str::<Value>(text).map_err(|e| format!("malformed JSON: {e}"))
        })
        .collect();
    Rows(rows.into_iter().enumerate().map(|(i, row)| (Some(i as u64 + 1), row)).collect())
}

/// Parses a CSV file of generic pairs into JSON objects of strings; cells holding a JSON array
/// of objects (message lists) are decoded. Each row is numbered with the file line it starts on
/// (the header is line 1; a quoted cell may span lines). A header that names a column twice is
/// an error; so is a quoted cell left open (the csv crate would read the rest of the file into
/// it), on the row it starts.
pub fn csv_rows(raw: &RawSource) -> Result<Rows, IngestError> {
    let bytes = &raw.text_bytes[..];
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| IngestError::Format { file: raw.uri.clone(), reason: format!("CSV header: {e}") })?
        .clone();
    let mut named = std::collections::HashSet::new();
    if let Some(twice) = headers.iter().find(|h| !h.is_empty() && !named.insert(*h)) {
        return Err(IngestError::Format {
            file: raw.uri.clone(),
            reason: format!("CSV header: column `{twice}` is named twice"),
        });
    }
    let mut out = Vec::new();
    let mut last_start = None;
    let mut record = csv::StringRecord::new();
    loop {
        // Where the reader stands before a record: where the record starts, or the blank lines
        // or the `\n` of a `\r\n` before it, which it reads with the record.
        let start = reader.position().clone();
        let row = match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let mut obj = serde_json::Map::new();
                for (h, cell) in headers.iter().zip(record.iter()) {
                    let messages = cell
                        .trim_start()
                        .starts_with('[')
                        .then(|| serde_json::from_str::<Value>(cell).ok())
                        .flatten()
                        .filter(|v| v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_object)));
                    obj.insert(h.to_owned(), messages.unwrap_or_else(|| Value::String(cell.to_owned())));
                }
                Ok(Value::Object(obj))
            }
            Err(e) => Err(csv_problem(&e)),
        };
        let skipped = bytes.get(start.byte() as usize..).unwrap_or_default();
        let newlines = skipped.iter().take_while(|&&b| b == b'\r' || b == b'\n').filter(|&&b| b == b'\n').count();
        last_start = Some(start.byte() as usize);
        out.push((Some(start.line() + newlines as u64), row));
    }
    // A cell still open at the end of the file swallowed the rows after it into the last
    // record read.
    if let Some(at) = last_start {
        if ends_in_quoted_cell(bytes.get(at..).unwrap_or_default()) {
            if let Some((_, row)) = out.last_mut() {
                *row = Err("CSV: a quoted cell of this row is not closed (it runs to the end of the file)".into());
            }
        }
    }
    Ok(Rows(out))
}

/// Whether CSV text ends inside a quoted cell: a `"` opens one only at the start of a cell (as
/// the csv crate reads a `"` within an unquoted cell as text: `a 12" screen`), and within one
/// `""` is a quote and a lone `"` closes it.
fn ends_in_quoted_cell(text: &[u8]) -> bool {
    let (mut quoted, mut cell_start) = (false, true);
    let mut bytes = text.iter().peekable();
    while let Some(&b) = bytes.next() {
        if quoted {
            if b == b'"' {
                if bytes.peek() == Some(&&b'"') {
                    bytes.next();
                } else {
                    quoted = false;
                }
            }
            continue;
        }
        match b {
            b'"' if cell_start => quoted = true,
            b',' | b'\n' | b'\r' => {
                cell_start = true;
                continue;
            }
            _ => {}
        }
        cell_start = false;
    }
    quoted
}

/// Why a CSV record is not a row, without the csv crate's own line (counted differently).
fn csv_problem(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("CSV: {len} fields, but the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { err, .. } => {
            format!("CSV: field {} is not valid UTF-8 (byte {} of the field)", err.field() + 1, err.valid_up_to())
        }
        _ => format!("CSV: {e}"),
    }
}

/// Maps rows (JSON objects, whatever the file format) to pairs. `first_line` numbers the rows
/// that carry no line of their own (1 for Parquet rows); JSONL and CSV rows carry theirs.
pub fn parse_pair_rows(rows: Rows, cols: &Columns, ids: &IdScheme, first_line: u64) -> Parsed {
    let n = rows.len() as u64;
    let rows: Vec<(u64, Result<Value, String>)> = rows.numbered(first_line).collect();
    let results: Vec<(u64, Result<NewPair, String>)> = rows
        .into_par_iter()
        .enumerate()
        .map(|(i, (line, row))| (line, row.and_then(|v| pair_from_row(&v, cols, ids, i as u64))))
        .collect();
    collect(results, n)
}

fn pair_from_row(v: &Value, cols: &Columns, ids: &IdScheme, row: u64) -> Result<NewPair, String> {
    let obj = v.as_object().ok_or("expected an object (one pair per row)")?;
    let get = |name: &str| obj.get(name).filter(|v| !v.is_null()).ok_or_else(|| format!("missing field `{name}`"));
    let prompt = get(&cols.prompt)?;
    let chosen = sides_from_values(prompt, get(&cols.chosen)?).map_err(|e| format!("field `{}`: {e}", cols.chosen))?;
    let rejected =
        sides_from_values(prompt, get(&cols.rejected)?).map_err(|e| format!("field `{}`: {e}", cols.rejected))?;
    let subset = match &cols.subset {
        Some(c) => scalar_text(get(c)?).ok_or_else(|| format!("field `{c}` is not a string or number"))?,
        None => ids.subset.clone(),
    };
    let key = match &cols.id {
        Some(c) => scalar_text(get(c)?).ok_or_else(|| format!("field `{c}` is not a string or number"))?,
        None => row.to_string(),
    };
    if key.contains('/') && cols.id.is_some() {
        return Err(format!("id `{key}` contains `/`, which pair ids reserve as a separator"));
    }
    Ok(NewPair {
        pair_id: format!("{subset}/{}/{key}", ids.split),
        subset,
        split: ids.split.clone(),
        line: row,
        chosen,
        rejected,
    })
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Builds (context, response) from a prompt and a completion. Plain strings are kept verbatim:
/// context = prompt, response = completion. Message lists (`[{role, content}]`) are rendered as
/// an hh-rlhf transcript and split at the last `Assistant:` tag, so the RM sees the same layout as
/// on hh-rlhf; a string completion after a message-list prompt is the final assistant turn.
fn sides_from_values(prompt: &Value, completion: &Value) -> Result<Side, String> {
    match (prompt, completion) {
        (Value::String(p), Value::String(c)) => {
            if c.trim().is_empty() {
                return Err("empty text".into());
            }
            Ok(Side { context: p.clone(), response: c.clone() })
        }
        _ => {
            let mut transcript = String::new();
            // A message list for the completion usually repeats the prompt (RewardBench's
            // chat format); only append the prompt when the completion does not start with it.
            let completion_msgs = match completion {
                Value::Array(a) => Some(a),
                _ => None,
            };
            let prompt_msgs: Vec<Value> = match prompt {
                Value::String(p) if p.trim().is_empty() => Vec::new(),
                Value::String(p) => vec![serde_json::json!({"role": "user", "content": p})],
                Value::Array(a) => a.clone(),
                _ => return Err("prompt is neither a string nor a message list".into()),
            };
            let repeats_prompt = completion_msgs
                .is_some_and(|c| c.len() > prompt_msgs.len() && c[..prompt_msgs.len()] == prompt_msgs[..]);
            if !repeats_prompt {
                render_messages(&prompt_msgs, &mut transcript)?;
            }
            match completion {
                Value::String(c) => {
                    if c.trim().is_empty() {
                        return Err("empty text".into());
                    }
                    transcript.push_str("\n\nAssistant: ");
                    transcript.push_str(c);
                }
                Value::Array(a) => render_messages(a, &mut transcript)?,
                _ => return Err("neither a string nor a message list".into()),
            }
            side_from_transcript(&transcript)
        }
    }
}

fn render_messages(msgs: &[Value], out: &mut String) -> Result<(), String> {
    for (k, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).ok_or_else(|| format!("message {k} has no `role`"))?;
        let content =
            m.get("content").and_then(Value::as_str).ok_or_else(|| format!("message {k} has no string `content`"))?;
        let tag = match role {
            "user" | "human" => "Human",
            "assistant" | "gpt" | "bot" => "Assistant",
            "system" => "System",
            other => return Err(format!("message {k} has unknown role `{other}`")),
        };
        out.push_str("\n\n");
        out.push_str(tag);
        out.push_str(": ");
        out.push_str(content);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawSource {
        RawSource {
            uri: "mem.jsonl".into(),
            path: PathBuf::from("mem.jsonl"),
            sha256: String::new(),
            text_bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn ids_come_from_the_hh_rlhf_layout() {
        let ids = IdScheme::from_uri("https://hub/datasets/Anthropic/hh-rlhf/resolve/main/harmless-base/test.jsonl.gz");
        assert_eq!((ids.subset.as_str(), ids.split.as_str()), ("harmless-base", "test"));
        assert_eq!(ids.id(17), "harmless-base/test/17");
        let bare = IdScheme::from_uri("train.jsonl");
        assert_eq!((bare.subset.as_str(), bare.split.as_str()), ("default", "train"));
        // A URL's query is not part of its file name; a local path's `#` and `?` are.
        let signed = IdScheme::from_uri("https://hub/harmless-base/test.jsonl.gz?download=true#x");
        assert_eq!((signed.subset.as_str(), signed.split.as_str()), ("harmless-base", "test"));
        let local = IdScheme::from_uri("/data/run#2/harmless-base/test.jsonl");
        assert_eq!((local.subset.as_str(), local.split.as_str()), ("harmless-base", "test"));
        let odd = IdScheme::from_uri("/data/run?1/test.jsonl");
        assert_eq!((odd.subset.as_str(), odd.split.as_str()), ("run?1", "test"));
    }

    #[test]
    fn hh_lines_are_validated_with_reasons() {
        let good = r#"{"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"}"#;
        let text = [
            good,
            "{not json",
            r#"{"chosen": "\n\nHuman: a\n\nAssistant: b"}"#,
            r#"{"chosen": "", "rejected": "\n\nHuman: a\n\nAssistant: c"}"#,
            r#"{"chosen": "\n\nHuman: a", "rejected": "\n\nHuman: a\n\nAssistant: c"}"#,
            r#"{"chosen": 3, "rejected": "x"}"#,
            "",
            good,
        ]
        .join("\n");
        let parsed = parse_hh_rlhf(&raw(&text), &IdScheme::from_uri("x/harmless-base/test.jsonl"));
        assert_eq!(parsed.pairs.len(), 2);
        assert_eq!(parsed.pairs[1].pair_id, "harmless-base/test/7");
        let reasons: Vec<(u64, &str)> = parsed.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(reasons[0].0, 2);
        assert!(reasons[0].1.starts_with("malformed JSON"));
        assert_eq!(reasons[1], (3, "missing field `rejected`"));
        assert_eq!(reasons[2], (4, "field `chosen`: empty text"));
        assert_eq!(reasons[3], (5, "field `chosen`: no \"Assistant:\" tag to split the last response at"));
        assert_eq!(reasons[4], (6, "field `chosen` is not a string"));
        assert_eq!(reasons[5], (7, "empty line"));
        let err = parsed.check("f.jsonl", false).unwrap_err().to_string();
        assert!(err.contains("f.jsonl:2: malformed JSON"), "{err}");
        assert!(err.contains("6 invalid line(s)"), "{err}");
    }

    #[test]
    fn non_utf8_lines_are_named() {
        let mut bytes =
            br#"{"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"}"#.to_vec();
        bytes.extend_from_slice(b"\n{\"chosen\": \"\xff\xfe\"}\n");
        let mut r = raw("");
        r.text_bytes = bytes;
        let parsed = parse_hh_rlhf(&r, &IdScheme::from_uri("a/b.jsonl"));
        assert_eq!(parsed.rejected.len(), 1);
        assert_eq!(parsed.rejected[0].line, 2);
        assert!(parsed.rejected[0].reason.contains("UTF-8"));
    }

    #[test]
    fn generic_rows_accept_strings_and_message_lists() {
        let rows: Vec<Result<Value, String>> = vec![
            Ok(serde_json::json!({"prompt": "Q?", "chosen": "good", "rejected": "bad", "id": 7})),
            Ok(serde_json::json!({
                "prompt": [{"role": "user", "content": "Q?"}],
                "chosen": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "good"}],
                "rejected": "bad", "id": "x"})),
            Ok(serde_json::json!({"prompt": "Q?", "chosen": "good", "id": 9})),
        ];
        let cols = Columns { id: Some("id".into()), ..Columns::default() };
        let parsed = parse_pair_rows(rows.into_iter().collect(), &cols, &IdScheme::from_uri("rb/filtered.jsonl"), 1);
        assert_eq!(parsed.pairs[0].pair_id, "rb/filtered/7");
        assert_eq!(parsed.pairs[0].chosen, Side { context: "Q?".into(), response: "good".into() });
        assert_eq!(parsed.pairs[1].chosen.context, "\n\nHuman: Q?\n\n");
        assert_eq!(parsed.pairs[1].chosen.response, "Assistant: good");
        assert_eq!(parsed.pairs[1].rejected.response, "Assistant: bad");
        assert_eq!(parsed.rejected, vec![RejectedLine { line: 3, reason: "missing field `rejected`".into() }]);
    }

    #[test]
    fn csv_rows_decode_message_lists_and_report_lines() {
        let csv =
            "prompt,chosen,rejected\nQ,good,bad\n\"[{\"\"role\"\":\"\"user\"\",\"\"content\"\":\"\"Q\"\"}]\",a,b\n";
        let rows = csv_rows(&raw(csv)).unwrap();
        let parsed = parse_pair_rows(rows, &Columns::default(), &IdScheme::from_uri("x.csv"), 2);
        assert_eq!(parsed.pairs.len(), 2);
        assert_eq!(parsed.pairs[1].chosen.context, "\n\nHuman: Q\n\n");
        assert_eq!(parsed.pairs[0].pair_id, "default/x/0");
    }

    #[test]
    fn csv_rows_are_numbered_by_the_file_line_they_start_on() {
        // Row 1's prompt spans lines 2-4 (as every hh-style transcript does); row 2, on line 5,
        // lacks its rejected text; row 3, on line 6, has a field too many.
        for newline in ["\n", "\r\n"] {
            let csv = ["prompt,chosen,rejected", "\"Human: hi", "", "Assistant:\",good,bad", "Q,good,", "Q,a,b,c", ""]
                .join(newline);
            let rows = csv_rows(&raw(&csv)).unwrap();
            let parsed = parse_pair_rows(rows, &Columns::default(), &IdScheme::from_uri("x.csv"), 2);
            let reasons: Vec<(u64, &str)> = parsed.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
            assert_eq!(
                reasons,
                [(5, "field `rejected`: empty text"), (6, "CSV: 4 fields, but the header has 3")],
                "{newline:?}"
            );
            assert_eq!(parsed.pairs.len(), 1);
            assert_eq!(parsed.pairs[0].chosen.context, format!("Human: hi{newline}{newline}Assistant:"));
            let err = parsed.check("x.csv", false).unwrap_err().to_string();
            assert!(err.contains("x.csv:5: field `rejected`: empty text"), "{err}");
        }
    }

    #[test]
    fn csv_problems_are_named_not_swallowed() {
        // A quote left open would take every row after it into one cell: its row is refused.
        let csv = "prompt,chosen,rejected\nQ1,good,\"bad\nQ2,good2,bad2\nQ3,good3,bad3\n";
        let parsed =
            parse_pair_rows(csv_rows(&raw(csv)).unwrap(), &Columns::default(), &IdScheme::from_uri("x.csv"), 2);
        assert_eq!(parsed.pairs.len(), 0);
        assert_eq!(parsed.rejected.len(), 1);
        assert_eq!(parsed.rejected[0].line, 2);
        assert!(parsed.rejected[0].reason.contains("not closed"), "{:?}", parsed.rejected);
        // Opened in a middle cell: the same, not "1 field too few".
        let csv = "prompt,chosen,rejected\nQ0,a,b\nQ1,\"good,bad\nQ2,good2,bad2\n";
        let parsed =
            parse_pair_rows(csv_rows(&raw(csv)).unwrap(), &Columns::default(), &IdScheme::from_uri("x.csv"), 2);
        assert_eq!(parsed.pairs.len(), 1);
        assert_eq!(parsed.rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [3]);
        assert!(parsed.rejected[0].reason.contains("not closed"), "{:?}", parsed.rejected);
        // Quotes that close, doubled ones inside included, are fine.
        let csv = "prompt,chosen,rejected\nQ,\"say \"\"hi\"\"\",\"b\nc\"\n";
        let parsed =
            parse_pair_rows(csv_rows(&raw(csv)).unwrap(), &Columns::default(), &IdScheme::from_uri("x.csv"), 2);
        assert_eq!((parsed.pairs.len(), parsed.rejected.len()), (1, 0), "{:?}", parsed.rejected);
        assert_eq!(parsed.pairs[0].chosen.response, "say \"hi\"");
        // A `"` within an unquoted cell is text, even in the last row.
        let csv = "prompt,chosen,rejected\nQ,a 12\" screen,b\n";
        let parsed =
            parse_pair_rows(csv_rows(&raw(csv)).unwrap(), &Columns::default(), &IdScheme::from_uri("x.csv"), 2);
        assert_eq!((parsed.pairs.len(), parsed.rejected.len()), (1, 0), "{:?}", parsed.rejected);
        assert_eq!(parsed.pairs[0].chosen.response, "a 12\" screen");
        // A column named twice.
        let err = csv_rows(&raw("prompt,chosen,rejected,chosen\nQ,a,b,c\n")).unwrap_err().to_string();
        assert!(err.contains("column `chosen` is named twice"), "{err}");
        // A cell that looks like a JSON array but is no message list is text, as in JSONL.
        let csv = "prompt,chosen,rejected\nQ,\"[1, 2, 3]\",bad\n";
        let parsed =
            parse_pair_rows(csv_rows(&raw(csv)).unwrap(), &Columns::default(), &IdScheme::from_uri("x.csv"), 2);
        assert_eq!(parsed.pairs[0].chosen.response, "[1, 2, 3]", "{:?}", parsed.rejected);
    }

    #[test]
    fn a_repeated_id_is_a_rejected_line_naming_the_first() {
        let rows: Vec<Result<Value, String>> = [7, 8, 7]
            .iter()
            .map(|id| Ok(serde_json::json!({"prompt": "Q?", "chosen": "good", "rejected": "bad", "id": id})))
            .collect();
        let cols = Columns { id: Some("id".into()), ..Columns::default() };
        let parsed = parse_pair_rows(rows.into_iter().collect(), &cols, &IdScheme::from_uri("rb/f.jsonl"), 1);
        assert_eq!(parsed.pairs.len(), 2);
        assert_eq!(
            parsed.rejected,
            vec![RejectedLine { line: 3, reason: "pair id `rb/f/7` is already on line 1".into() }]
        );
        // Skipped with --skip-invalid; else named.
        let err = parse_pair_rows(
            vec![Ok(serde_json::json!({"prompt": "Q", "chosen": "a", "rejected": "b", "id": 1})); 2]
                .into_iter()
                .collect(),
            &cols,
            &IdScheme::from_uri("rb/f.jsonl"),
            1,
        )
        .check("f.jsonl", false)
        .unwrap_err()
        .to_string();
        assert!(err.contains("f.jsonl:2: pair id `rb/f/1` is already on line 1"), "{err}");
    }

    #[test]
    fn a_source_with_no_valid_line_says_why_even_when_skipping() {
        let text = "{\"chosen\": 1}\nnot json\n";
        let err =
            parse_hh_rlhf(&raw(text), &IdScheme::from_uri("x.jsonl")).check("x.jsonl", true).unwrap_err().to_string();
        assert!(err.contains("no valid pairs; all 2 line(s) are invalid"), "{err}");
        assert!(
            err.contains("x.jsonl:1: field `chosen` is not a string") || err.contains("x.jsonl:1: missing field"),
            "{err}"
        );
        assert!(err.contains("x.jsonl:2: malformed JSON"), "{err}");
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_line_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bom.jsonl");
        let line = r#"{"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go"}"#;
        std::fs::write(&path, format!("\u{feff}{line}\n{line}\n")).unwrap();
        let raw = read_source("bom.jsonl", &path).unwrap();
        let parsed = parse_hh_rlhf(&raw, &IdScheme::from_uri("bom.jsonl"));
        assert_eq!((parsed.pairs.len(), parsed.rejected.len()), (2, 0), "{:?}", parsed.rejected);
        assert_eq!(jsonl_rows(&raw).numbered(1).filter(|(_, r)| r.is_err()).count(), 0);
        // The hash is of the file as it is.
        assert_eq!(raw.sha256, hex::encode(Sha256::digest(std::fs::read(&path).unwrap())));
    }

    #[test]
    fn a_gzip_past_the_cap_is_refused_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.jsonl.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &vec![b' '; 2_500_000]).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let Err(err) = read_source_capped("bomb.jsonl.gz", &path, Some(1_000_000)) else {
            panic!("read past the cap");
        };
        assert!(matches!(err, IngestError::TooBig { cap_mb: 1, .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "bomb.jsonl.gz: more than 1 MB after decompression, the cap of web ingest (ingest.max_decompressed_mb)"
        );
        assert_eq!(read_source("bomb.jsonl.gz", &path).map(|r| r.text_bytes.len()).ok(), Some(2_500_000));
    }
}
