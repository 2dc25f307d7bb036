//! Features of texts: SEAL's LM-labeler taxonomy (the 19 `ANALYSIS_KEYS` of its released
//! `taxonomy/__init__.py`), their numeric encodings (the released `analysis/main_results.ipynb`,
//! cells 2–3), label-file parsing with per-field errors, and the built-in features computed
//! without any LLM ([`builtin`]).

pub mod builtin;
pub mod prompt;

use std::collections::BTreeMap;

use seal_shared::FeatureRole;
use serde_json::Value;

/// Value type of a taxonomy key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Bool,
    /// "negative" | "neutral" | "positive" → −1 / 0 / +1 (one linear regressor).
    Sentiment,
    /// A list of strings (topics, discrimination types): descriptive only, never a regressor.
    List,
}

/// The 19 keys in the order of SEAL's `ANALYSIS_KEYS`.
pub const KEYS: [(&str, KeyKind); 19] = [
    ("assistant_is_anthropomorphic", KeyKind::Bool),
    ("assistant_is_coherent", KeyKind::Bool),
    ("human_vocabulary_quality", KeyKind::Bool),
    ("last_response_is_anthropomorphic", KeyKind::Bool),
    ("last_response_is_coherent", KeyKind::Bool),
    ("last_response_is_refusal", KeyKind::Bool),
    ("last_response_is_helpful", KeyKind::Bool),
    ("last_response_is_harmless", KeyKind::Bool),
    ("last_response_is_honest", KeyKind::Bool),
    ("last_response_sentiment", KeyKind::Sentiment),
    ("last_response_contains_insult", KeyKind::Bool),
    ("last_response_is_sexually_explicit", KeyKind::Bool),
    ("last_response_breaks_privacy", KeyKind::Bool),
    ("last_response_is_discriminatory", KeyKind::Bool),
    ("last_response_is_discriminating_against", KeyKind::List),
    ("last_response_is_manipulative", KeyKind::Bool),
    ("last_response_is_creative", KeyKind::Bool),
    ("last_response_is_eloquent", KeyKind::Bool),
    ("topics", KeyKind::List),
];

/// SEAL's 15 regression features, in the order of every released regression table
/// (`analysis/angle.R`; `analysis/main_results.ipynb`, cells 38–39).
pub const REGRESSION_FEATURES: [&str; 15] = [
    "human_vocabulary_quality",
    "last_response_is_anthropomorphic",
    "last_response_is_coherent",
    "last_response_is_refusal",
    "last_response_is_helpful",
    "last_response_is_harmless",
    "last_response_is_honest",
    "last_response_sentiment",
    "last_response_contains_insult",
    "last_response_is_sexually_explicit",
    "last_response_breaks_privacy",
    "last_response_is_discriminatory",
    "last_response_is_manipulative",
    "last_response_is_creative",
    "last_response_is_eloquent",
];

/// Default target features, our reading of the paper's "desired values": the HH dataset's stated
/// values, honesty, and the harm indicators as negatively valued targets. Every other feature is
/// a spoiler by default.
pub const DEFAULT_TARGETS: [&str; 8] = [
    "last_response_is_helpful",
    "last_response_is_harmless",
    "last_response_is_honest",
    "last_response_contains_insult",
    "last_response_is_sexually_explicit",
    "last_response_breaks_privacy",
    "last_response_is_discriminatory",
    "last_response_is_manipulative",
];

/// The LM-labeler preference γ's default rule: harmless first, then helpful (the released
/// `analysis/main_results.ipynb`, cell 6).
pub const DEFAULT_GAMMA_RULE: [&str; 2] = ["last_response_is_harmless", "last_response_is_helpful"];

/// The prompt's "Wikipedia content categories list" (`ANALYSIS_PROMPT` in SEAL's released
/// `taxonomy/__init__.py`).
pub const TOPICS: [&str; 12] = [
    "Culture and the arts",
    "Geography and places",
    "Health and fitness",
    "History and events",
    "Human activities",
    "Mathematics and logic",
    "Natural and physical sciences",
    "People and self",
    "Philosophy and thinking",
    "Religion and belief systems",
    "Society and social sciences",
    "Technology and applied sciences",
];

/// The prompt's "Types of Discrimination list" (`ANALYSIS_PROMPT` in SEAL's released
/// `taxonomy/__init__.py`).
pub const DISCRIMINATION_TYPES: [&str; 12] = [
    "Age Discrimination",
    "Disability Discrimination",
    "Sexual Orientation",
    "Status as a Parent",
    "Religious Discrimination",
    "National Origin",
    "Pregnancy",
    "Sexual Harassment",
    "Race, Color, and Sex",
    "Reprisal / Retaliation",
    "Gender",
    "Political Belief",
];

pub fn key_kind(name: &str) -> Option<KeyKind> {
    KEYS.iter().find(|(k, _)| *k == name).map(|(_, kind)| *kind)
}

/// Every key of the taxonomy, in SEAL's order.
pub fn all_keys() -> Vec<&'static str> {
    KEYS.iter().map(|(k, _)| *k).collect()
}

/// A key set as written on the command line: `all`, or comma-separated keys by full name or by
/// short name (`is_helpful` for `last_response_is_helpful`). Returned in SEAL's order, without
/// repeats; an unknown name is an error that lists the keys.
pub fn parse_keys(spec: &str) -> Result<Vec<&'static str>, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("no label keys given".into());
    }
    if spec == "all" {
        return Ok(all_keys());
    }
    let mut wanted = Vec::new();
    for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let key = KEYS
            .iter()
            .map(|(k, _)| *k)
            .find(|k| *k == name || short_name(k) == name)
            .ok_or_else(|| format!("`{name}` is not a label key; the keys are: {}", all_keys().join(", ")))?;
        wanted.push(key);
    }
    Ok(all_keys().into_iter().filter(|k| wanted.contains(k)).collect())
}

/// `keys` as SEAL-ordered taxonomy keys, for label sets read back from the store.
pub fn known_keys<S: AsRef<str>>(keys: &[S]) -> Vec<&'static str> {
    all_keys().into_iter().filter(|k| keys.iter().any(|x| x.as_ref() == *k)).collect()
}

pub fn default_role(feature: &str) -> FeatureRole {
    if DEFAULT_TARGETS.contains(&feature) {
        FeatureRole::Target
    } else {
        FeatureRole::Spoiler
    }
}

/// Short display name: `last_response_is_helpful` → `is_helpful`.
pub fn short_name(feature: &str) -> &str {
    feature.strip_prefix("last_response_").unwrap_or(feature)
}

#[derive(Debug, Clone, PartialEq)]
pub enum LabelValue {
    Bool(bool),
    Sentiment(i8),
    List(Vec<String>),
}

impl LabelValue {
    /// Numeric encoding of the released `analysis/main_results.ipynb` (cells 2–3); lists have
    /// none.
    pub fn number(&self) -> Option<f64> {
        match self {
            LabelValue::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            LabelValue::Sentiment(s) => Some(f64::from(*s)),
            LabelValue::List(_) => None,
        }
    }

    /// The value as written in label files.
    pub fn to_json(&self) -> Value {
        match self {
            LabelValue::Bool(b) => Value::Bool(*b),
            LabelValue::Sentiment(s) => Value::String(sentiment_name(*s).into()),
            LabelValue::List(v) => Value::Array(v.iter().cloned().map(Value::String).collect()),
        }
    }
}

pub fn sentiment_name(s: i8) -> &'static str {
    match s {
        -1 => "negative",
        0 => "neutral",
        _ => "positive",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TextSide {
    Chosen,
    Rejected,
}

impl TextSide {
    pub fn as_str(self) -> &'static str {
        match self {
            TextSide::Chosen => "chosen",
            TextSide::Rejected => "rejected",
        }
    }
}

/// One labelled text: 19 values keyed by taxonomy key.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRecord {
    pub pair_id: String,
    pub side: TextSide,
    pub values: BTreeMap<&'static str, LabelValue>,
    /// Off-list topics or discrimination types: kept (SEAL kept them) but reported.
    pub off_list: Vec<String>,
}

/// Parses one label row (a JSON object; CSV cells arrive as strings) of a label set with the
/// taxonomy keys `keys`: each of them must be there, and no other taxonomy key. Every problem of
/// the row is returned, each naming its field. `text` and `row_id` columns are accepted and
/// ignored.
pub fn parse_label_row(row: &serde_json::Map<String, Value>, keys: &[&str]) -> Result<LabelRecord, Vec<String>> {
    let mut errors = Vec::new();
    let pair_id = match row.get("pair_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            errors.push(format!("field `pair_id`: expected a string, got {other}"));
            String::new()
        }
        None => {
            errors.push("missing field `pair_id`".into());
            String::new()
        }
    };
    let side = match row.get("side").and_then(Value::as_str) {
        Some("chosen") => Some(TextSide::Chosen),
        Some("rejected") => Some(TextSide::Rejected),
        Some(other) => {
            errors.push(format!("field `side`: {other:?} is not `chosen` or `rejected`"));
            None
        }
        None => {
            errors.push("missing field `side` (chosen or rejected)".into());
            None
        }
    };
    for key in row.keys() {
        if matches!(key.as_str(), "pair_id" | "side" | "text" | "row_id") {
            continue;
        }
        if key_kind(key).is_none() {
            errors.push(format!("unknown key `{key}` (not one of SEAL's 19 label keys)"));
        } else if !keys.contains(&key.as_str()) {
            errors.push(format!("key `{key}` is not in this label set's keys (choose the keys with --keys)"));
        }
    }
    let mut values = BTreeMap::new();
    let mut off_list = Vec::new();
    for (key, kind) in KEYS.into_iter().filter(|(k, _)| keys.contains(k)) {
        let Some(raw) = row.get(key) else {
            errors.push(format!("missing key `{key}`"));
            continue;
        };
        match parse_value(key, kind, raw) {
            Ok(v) => {
                if let LabelValue::List(items) = &v {
                    let allowed: &[&str] = if key == "topics" { &TOPICS } else { &DISCRIMINATION_TYPES };
                    for item in items {
                        if !allowed.contains(&item.as_str()) {
                            off_list.push(format!("`{key}`: {item:?} is not on the prompt's list"));
                        }
                    }
                }
                values.insert(key, v);
            }
            Err(e) => errors.push(e),
        }
    }
    match (errors.is_empty(), side) {
        (true, Some(side)) => Ok(LabelRecord { pair_id, side, values, off_list }),
        _ => Err(errors),
    }
}

fn parse_value(key: &str, kind: KeyKind, raw: &Value) -> Result<LabelValue, String> {
    match kind {
        KeyKind::Bool => match raw {
            Value::Bool(b) => Ok(LabelValue::Bool(*b)),
            Value::Number(n) if n.as_f64() == Some(1.0) => Ok(LabelValue::Bool(true)),
            Value::Number(n) if n.as_f64() == Some(0.0) => Ok(LabelValue::Bool(false)),
            Value::String(s) => match s.trim() {
                "true" | "True" | "TRUE" | "1" => Ok(LabelValue::Bool(true)),
                "false" | "False" | "FALSE" | "0" => Ok(LabelValue::Bool(false)),
                other => Err(format!("field `{key}`: expected a boolean, got {other:?}")),
            },
            other => Err(format!("field `{key}`: expected a boolean, got {other}")),
        },
        // Any case, as booleans are read: an LM that answers "Positive" answered.
        KeyKind::Sentiment => match raw.as_str().map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            Some("negative") => Ok(LabelValue::Sentiment(-1)),
            Some("neutral") => Ok(LabelValue::Sentiment(0)),
            Some("positive") => Ok(LabelValue::Sentiment(1)),
            Some(other) => Err(format!("field `{key}`: {other:?} is not one of negative, neutral, positive")),
            None => Err(format!("field `{key}`: expected \"negative\", \"neutral\" or \"positive\", got {raw}")),
        },
        KeyKind::List => match raw {
            Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| format!("field `{key}`: list item {v} is not a string"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(LabelValue::List),
            Value::String(s) => parse_list_text(s).map(LabelValue::List).map_err(|e| format!("field `{key}`: {e}")),
            other => Err(format!("field `{key}`: expected a list of strings, got {other}")),
        },
    }
}

/// A list written in a CSV cell: a JSON array (`["a", "b"]`) or a Python literal as SEAL's
/// taxonomy CSVs store it (`['a', "b's"]`); an empty cell is an empty list.
pub fn parse_list_text(s: &str) -> Result<Vec<String>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(vec![]);
    }
    if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
        return Ok(v);
    }
    let inner = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')).ok_or_else(|| format!("{t:?} is not a list"))?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(q) = chars.next() else { break };
        if q != '\'' && q != '"' {
            return Err(format!("{t:?} is not a list of quoted strings"));
        }
        let mut item = String::new();
        loop {
            match chars.next() {
                Some('\\') => item.extend(chars.next()),
                Some(c) if c == q => break,
                Some(c) => item.push(c),
                None => return Err(format!("{t:?} has an unterminated string")),
            }
        }
        out.push(item);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_row() -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("pair_id".into(), "harmless-base/test/0".into());
        m.insert("side".into(), "chosen".into());
        for (k, kind) in KEYS {
            let v = match kind {
                KeyKind::Bool => Value::Bool(true),
                KeyKind::Sentiment => "positive".into(),
                KeyKind::List => Value::Array(vec![]),
            };
            m.insert(k.into(), v);
        }
        m
    }

    #[test]
    fn a_complete_row_parses_and_encodes_per_spec() {
        let mut row = full_row();
        row.insert("last_response_sentiment".into(), "negative".into());
        row.insert("topics".into(), "['Human activities', \"People and self\"]".into());
        let r = parse_label_row(&row, &all_keys()).unwrap();
        assert_eq!(r.values["last_response_sentiment"].number(), Some(-1.0));
        assert_eq!(r.values["last_response_is_helpful"].number(), Some(1.0));
        assert_eq!(r.values["topics"], LabelValue::List(vec!["Human activities".into(), "People and self".into()]));
        assert!(r.off_list.is_empty());
    }

    #[test]
    fn every_problem_of_a_row_is_named() {
        let mut row = full_row();
        row.remove("topics");
        row.insert("last_response_is_helpful".into(), "maybe".into());
        row.insert("last_response_sentiment".into(), "happy".into());
        row.insert("is_funny".into(), Value::Bool(true));
        let errs = parse_label_row(&row, &all_keys()).unwrap_err();
        assert!(errs.iter().any(|e| e.contains("missing key `topics`")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("`last_response_is_helpful`: expected a boolean")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("\"happy\" is not one of")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("unknown key `is_funny`")), "{errs:?}");
        assert_eq!(errs.len(), 4);
    }

    #[test]
    fn off_list_topics_are_kept_and_reported() {
        let mut row = full_row();
        row.insert("topics".into(), serde_json::json!(["Food and drink"]));
        let r = parse_label_row(&row, &all_keys()).unwrap();
        assert_eq!(r.off_list.len(), 1);
        assert!(r.off_list[0].contains("Food and drink"));
    }

    #[test]
    fn a_subset_of_keys_is_required_exactly() {
        let keys = parse_keys("is_helpful, last_response_sentiment,is_helpful").unwrap();
        assert_eq!(keys, ["last_response_is_helpful", "last_response_sentiment"], "SEAL's order, no repeats");
        assert_eq!(parse_keys("all").unwrap().len(), 19);
        assert!(parse_keys("is_funny").unwrap_err().contains("`is_funny` is not a label key"));
        assert!(parse_keys(" ").is_err());
        let mut row = serde_json::Map::new();
        row.insert("pair_id".into(), "p/1".into());
        row.insert("side".into(), "rejected".into());
        row.insert("last_response_is_helpful".into(), Value::Bool(false));
        let errs = parse_label_row(&row, &keys).unwrap_err();
        assert_eq!(errs, ["missing key `last_response_sentiment`"]);
        // Answers in another case are read, as booleans are.
        for (answer, value) in [(" Positive ", 1), ("NEGATIVE", -1)] {
            row.insert("last_response_sentiment".into(), answer.into());
            let r = parse_label_row(&row, &keys).unwrap();
            assert_eq!(r.values["last_response_sentiment"], LabelValue::Sentiment(value));
        }
        row.insert("last_response_sentiment".into(), "mixed".into());
        let errs = parse_label_row(&row, &keys).unwrap_err();
        assert_eq!(errs, ["field `last_response_sentiment`: \"mixed\" is not one of negative, neutral, positive"]);
        row.insert("last_response_sentiment".into(), "neutral".into());
        let r = parse_label_row(&row, &keys).unwrap();
        assert_eq!(r.values.keys().copied().collect::<Vec<_>>(), keys, "only the set's keys are held");
        row.insert("topics".into(), serde_json::json!([]));
        let errs = parse_label_row(&row, &keys).unwrap_err();
        assert!(errs[0].contains("key `topics` is not in this label set's keys"), "{errs:?}");
        assert_eq!(known_keys(&["topics", "last_response_is_helpful"]), ["last_response_is_helpful", "topics"]);
    }

    #[test]
    fn python_literal_lists_parse() {
        assert_eq!(parse_list_text("[]").unwrap(), Vec::<String>::new());
        assert_eq!(parse_list_text("['it\\'s', \"b\"]").unwrap(), vec!["it's".to_string(), "b".into()]);
        assert!(parse_list_text("[a, b]").is_err());
    }
}
