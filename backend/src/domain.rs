//! The vocabulary shared by the pipeline stages: pairs, models, scores.
//!
//! May use: nothing else in the crate. Types here are plain data; wire types live in `seal-shared`.

use std::fmt;
use std::str::FromStr;

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

/// How a reward model receives (context, response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// A tokenizer text pair `(context, response)`, as SEAL calls the OpenAssistant RMs.
    Pair,
    /// One text: `context + response`.
    Concat,
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputFormat::Pair => "pair",
            InputFormat::Concat => "concat",
        })
    }
}

impl FromStr for InputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pair" => Ok(InputFormat::Pair),
            "concat" => Ok(InputFormat::Concat),
            other => Err(format!("unknown input format `{other}` (expected `pair` or `concat`)")),
        }
    }
}

/// What to do with inputs longer than the model's maximum length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Feed the whole text, as the paper does (DeBERTa-v3 has relative positions only).
    None,
    /// Drop the oldest context tokens so the response survives; when the response alone is
    /// too long, fall back to `longest-first`.
    ContextLeft,
    /// Hugging Face's default `truncation=True`: cut the longer sequence from its end.
    LongestFirst,
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Truncation::None => "none",
            Truncation::ContextLeft => "context-left",
            Truncation::LongestFirst => "longest-first",
        })
    }
}

impl FromStr for Truncation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Truncation::None),
            "context-left" => Ok(Truncation::ContextLeft),
            "longest-first" => Ok(Truncation::LongestFirst),
            other => Err(format!("unknown truncation policy `{other}` (expected none, context-left or longest-first)")),
        }
    }
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
    pub precision: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Onnx,
    Imported,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Onnx => "onnx",
            ModelKind::Imported => "imported",
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

/// Agreement is strict, as in SEAL: chosen must score higher than rejected. Ties are
/// counted apart from disagreements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    Agree,
    Disagree,
    Tie,
}

impl Agreement {
    pub fn of(chosen: f64, rejected: f64) -> Agreement {
        if chosen > rejected {
            Agreement::Agree
        } else if chosen == rejected {
            Agreement::Tie
        } else {
            Agreement::Disagree
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_is_strict_and_ties_are_apart() {
        assert_eq!(Agreement::of(1.0, 0.5), Agreement::Agree);
        assert_eq!(Agreement::of(0.5, 1.0), Agreement::Disagree);
        assert_eq!(Agreement::of(0.25, 0.25), Agreement::Tie);
    }

    #[test]
    fn policies_round_trip_through_text() {
        for t in [Truncation::None, Truncation::ContextLeft, Truncation::LongestFirst] {
            assert_eq!(t.to_string().parse::<Truncation>().unwrap(), t);
        }
        for f in [InputFormat::Pair, InputFormat::Concat] {
            assert_eq!(f.to_string().parse::<InputFormat>().unwrap(), f);
        }
        assert!("left".parse::<Truncation>().is_err());
    }
}
