//! The vocabulary shared by the pipeline stages: pairs, models, scores.
//!
//! Types here are plain data; wire types live in `seal-shared`, and so do the closed
//! vocabularies both sides use (re-exported here).

pub use seal_shared::{Agreement, InputFormat, ModelKind, Precision, Sides, Truncation, VariantKind};

/// One preference pair ready to be stored: both sides split at the last `Assistant:` tag.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPair {
    /// Stable, readable id, e.g. `harmless-base/test/17`.
    pub pair_id: String,
    pub subset: String,
    pub split: String,
    /// 0-based line (or row) of the source the pair came from.
    pub line: u64,
    pub chosen: Side,
    pub rejected: Side,
}

/// One side of a pair: `context + response` is exactly the full transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    pub context: String,
    pub response: String,
}

impl Side {
    pub fn full(&self) -> String {
        format!("{}{}", self.context, self.response)
    }
}

/// An input line that failed validation, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedLine {
    /// 1-based line number as an editor shows it (rows for Parquet).
    pub line: u64,
    pub reason: String,
}

/// A registered reward model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRecord {
    pub name: String,
    /// `onnx` for a model SEAL Lab runs, `imported` for scores computed elsewhere.
    pub kind: ModelKind,
    pub folder: Option<String>,
    pub onnx_sha256: Option<String>,
    pub tokenizer_sha256: Option<String>,
    pub inputs: Vec<String>,
    pub input_format: InputFormat,
    pub max_length: Option<u32>,
    pub truncation: Truncation,
    /// True for the generated test models the demo falls back to.
    pub is_test_model: bool,
    /// `fp32` or `int8`, from the folder's export report; `None` when no report describes the graph.
    pub precision: Option<Precision>,
    /// A served model's inference-server URLs (Open Inference Protocol); empty otherwise.
    pub endpoints: Vec<String>,
    /// The environment variable holding the bearer token a served model's servers want.
    pub token_env: Option<String>,
}

impl ModelRecord {
    /// The registry entry of a model whose scores were computed elsewhere (kind `imported`).
    pub fn imported(name: &str) -> ModelRecord {
        ModelRecord {
            name: name.to_owned(),
            kind: ModelKind::Imported,
            folder: None,
            onnx_sha256: None,
            tokenizer_sha256: None,
            inputs: Vec::new(),
            input_format: InputFormat::Pair,
            max_length: None,
            truncation: Truncation::None,
            is_test_model: false,
            precision: None,
            endpoints: Vec::new(),
            token_env: None,
        }
    }
}

/// The texts of a pair as the scorer needs them.
#[derive(Debug, Clone)]
pub struct PairTexts {
    pub pair_id: String,
    pub chosen: Side,
    pub rejected: Side,
}

/// A scored text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextScore {
    pub score: f64,
    pub n_tokens: u32,
    pub truncated: bool,
}

/// Both sides of a pair scored by one model.
#[derive(Debug, Clone, PartialEq)]
pub struct PairScore {
    pub pair_id: String,
    pub chosen: TextScore,
    pub rejected: TextScore,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_through_text() {
        for t in [Truncation::None, Truncation::ContextLeft, Truncation::LongestFirst] {
            assert_eq!(t.to_string().parse::<Truncation>().unwrap(), t);
        }
        for f in [InputFormat::Pair, InputFormat::Concat] {
            assert_eq!(f.to_string().parse::<InputFormat>().unwrap(), f);
        }
        assert!("left".parse::<Truncation>().is_err());
        assert_eq!(ModelKind::Imported.as_str(), "imported");
    }
}

/// One of `count` disjoint parts of a dataset's pairs, for scoring on several machines: a pair
/// belongs to part `md5(pair_id) mod count` (as DuckDB's `md5_number`), so every machine with a
/// copy of the dataset computes the same parts, whatever order it holds the pairs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based, below `count`.
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N` with 0 ≤ I < N (`0/3`, `1/3`, `2/3`).
    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("expected I/N with 0 <= I < N (e.g. 0/3), got `{text}`");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}
