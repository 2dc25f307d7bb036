//! Label sets: the tables `label_sets` and `labels` (import, export, comparison of two sets).

use std::path::Path;

use duckdb::{params, OptionalExt};

use super::{sql_literal, u64_at, Context, FileFormat, Result, Store, StoreError};

/// A label set as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSetRecord {
    pub dataset: String,
    pub name: String,
    pub labeler: Option<String>,
    pub prompt_version: Option<String>,
    pub source_uri: String,
    pub sha256: String,
    pub n_texts: u64,
    pub n_off_list: u64,
    /// The taxonomy keys the set holds, in SEAL's order (all 19 unless chosen otherwise).
    pub keys: Vec<String>,
}

impl LabelSetRecord {
    pub fn has_key(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }

    /// The error for a key the set does not hold.
    pub fn missing_key(&self, key: &str) -> StoreError {
        StoreError::Invalid(format!(
            "label set `{}` of `{}` has no key `{key}` (its keys: {})",
            self.name,
            self.dataset,
            self.keys.join(", ")
        ))
    }
}

const LIST_KEYS: [&str; 2] = ["last_response_is_discriminating_against", "topics"];

pub(super) fn label_expr(alias: &str, key: &str) -> String {
    if key == "last_response_sentiment" {
        format!("(CASE {alias}.{key} WHEN 'negative' THEN -1 WHEN 'neutral' THEN 0 ELSE 1 END)::DOUBLE")
    } else {
        format!("{alias}.{key}::INTEGER::DOUBLE")
    }
}

/// Label columns by key: (key, values of the chosen texts, of the rejected texts), aligned by pair.
pub type LabelColumns = Vec<(String, Vec<f64>, Vec<f64>)>;

impl Store {
    /// Stores a label set in one transaction. `records` are already validated; ids must name pairs
    /// of the dataset (checked here, all-or-nothing). Same name and content again is a no-op
    /// (returns false); other content needs `replace`.
    pub fn import_labels(
        &mut self,
        set: &LabelSetRecord,
        records: &[crate::features::LabelRecord],
        replace: bool,
    ) -> Result<bool> {
        self.require_dataset(&set.dataset)?;
        let keys = serde_json::to_string(&set.keys).expect("strings serialize");
        // Unchanged: the same content read with the same keys, said to come from the same
        // labeler and prompt (a file read again with other keys, or named another labeler's, is
        // another set).
        type Stored = (String, Option<String>, i64, Option<String>, Option<String>);
        let old: Option<Stored> = self
            .conn
            .query_row(
                "SELECT sha256, keys, n_texts, labeler, prompt_version FROM label_sets WHERE dataset = ? AND name = ?",
                params![set.dataset, set.name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .ctx("read label sets")?;
        if old.as_ref().is_some_and(|(sha, k, n, labeler, prompt)| {
            *sha == set.sha256
                && k.as_deref() == Some(keys.as_str())
                && *n == records.len() as i64
                && (labeler, prompt) == (&set.labeler, &set.prompt_version)
        }) {
            return Ok(false);
        }
        if old.is_some() && !replace {
            return Err(StoreError::Conflict(format!(
                "label set `{}` of `{}` exists with other content or another labeler or prompt version; pass \
                 --replace to overwrite it",
                set.name, set.dataset
            )));
        }
        let known: std::collections::HashSet<String> = {
            let mut stmt = self.conn.prepare("SELECT pair_id FROM pairs WHERE dataset = ?").ctx("read pair ids")?;
            let ids = stmt
                .query_map(params![set.dataset], |r| r.get::<_, String>(0))
                .ctx("read pair ids")?
                .collect::<std::result::Result<_, _>>()
                .ctx("read pair ids")?;
            ids
        };
        let unknown: Vec<&str> =
            records.iter().map(|r| r.pair_id.as_str()).filter(|id| !known.contains(*id)).take(6).collect();
        if !unknown.is_empty() {
            return Err(StoreError::Invalid(format!(
                "{}: pair ids not in dataset `{}` (nothing was stored): {}",
                set.source_uri,
                set.dataset,
                unknown.iter().take(5).map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
            )));
        }
        if let Some(r) =
            records.iter().find(|r| r.values.len() != set.keys.len() || !r.values.keys().all(|k| set.has_key(k)))
        {
            return Err(StoreError::Invalid(format!(
                "{}: `{}` {} has keys {:?}, not the set's keys (nothing was stored)",
                set.source_uri,
                r.pair_id,
                r.side.as_str(),
                r.values.keys().collect::<Vec<_>>()
            )));
        }
        let tx = self.conn.transaction().ctx("begin")?;
        tx.execute("DELETE FROM labels WHERE dataset = ? AND label_set = ?", params![set.dataset, set.name])
            .ctx("replace labels")?;
        tx.execute("DELETE FROM label_sets WHERE dataset = ? AND name = ?", params![set.dataset, set.name])
            .ctx("replace labels")?;
        {
            let mut app = tx.appender("labels").ctx("appender")?;
            for r in records {
                let mut row: Vec<Box<dyn duckdb::ToSql>> = vec![
                    Box::new(set.dataset.clone()),
                    Box::new(set.name.clone()),
                    Box::new(r.pair_id.clone()),
                    Box::new(r.side.as_str()),
                ];
                for (key, _) in crate::features::KEYS {
                    // Keys outside the set's are NULL.
                    row.push(match r.values.get(key) {
                        None => Box::new(Option::<String>::None),
                        Some(crate::features::LabelValue::Bool(b)) => Box::new(*b),
                        Some(crate::features::LabelValue::Sentiment(s)) => {
                            Box::new(crate::features::sentiment_name(*s))
                        }
                        Some(v @ crate::features::LabelValue::List(_)) => Box::new(v.to_json().to_string()),
                    });
                }
                let refs: Vec<&dyn duckdb::ToSql> = row.iter().map(|b| b.as_ref()).collect();
                app.append_row(refs.as_slice()).ctx("append label")?;
            }
            app.flush().ctx("flush labels")?;
        }
        tx.execute(
            "INSERT INTO label_sets (dataset, name, labeler, prompt_version, source_uri, sha256, n_texts, n_off_list, keys)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                set.dataset,
                set.name,
                set.labeler,
                set.prompt_version,
                set.source_uri,
                set.sha256,
                records.len() as i64,
                set.n_off_list as i64,
                keys
            ],
        )
        .ctx("insert label set")?;
        tx.commit().ctx("commit labels")?;
        self.changed_data(&set.dataset);
        Ok(true)
    }

    pub fn label_sets(&self, dataset: Option<&str>) -> Result<Vec<LabelSetRecord>> {
        let filter = dataset.map(|d| format!("WHERE dataset = {}", sql_literal(d))).unwrap_or_default();
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT dataset, name, labeler, prompt_version, source_uri, sha256, n_texts, n_off_list, keys FROM label_sets
                 {filter} ORDER BY dataset, name"
            ))
            .ctx("list label sets")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(LabelSetRecord {
                    dataset: r.get(0)?,
                    name: r.get(1)?,
                    labeler: r.get(2)?,
                    prompt_version: r.get(3)?,
                    source_uri: r.get(4)?,
                    sha256: r.get(5)?,
                    n_texts: u64_at(r, 6)?,
                    n_off_list: u64_at(r, 7)?,
                    keys: r
                        .get::<_, Option<String>>(8)?
                        .and_then(|k| serde_json::from_str(&k).ok())
                        .unwrap_or_else(|| crate::features::all_keys().into_iter().map(String::from).collect()),
                })
            })
            .ctx("list label sets")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("list label sets")?;
        Ok(rows)
    }

    /// The label set `name` of `dataset`, or a not-found error.
    pub fn require_label_set(&self, dataset: &str, name: &str) -> Result<LabelSetRecord> {
        self.label_sets(Some(dataset))?.into_iter().find(|s| s.name == name).ok_or_else(|| {
            StoreError::NotFound(format!("no label set `{name}` in dataset `{dataset}` (see `seal labels list`)"))
        })
    }

    /// Writes a label set back in its import format (pair_id, side, the set's keys; lists as JSON
    /// arrays), to CSV, Parquet or JSONL, atomically.
    pub fn export_labels(&self, dataset: &str, name: &str, out: &Path) -> Result<u64> {
        let set = self.require_label_set(dataset, name)?;
        let fmt = FileFormat::from_path(out)?;
        let cols: Vec<String> = crate::features::known_keys(&set.keys)
            .iter()
            .map(|k| {
                if LIST_KEYS.contains(k) && fmt == FileFormat::Jsonl {
                    format!("{k}::JSON AS {k}")
                } else {
                    k.to_string()
                }
            })
            .collect();
        let query = format!(
            "SELECT l.pair_id, l.side, {} FROM labels l JOIN pairs p ON p.dataset = l.dataset AND p.pair_id = l.pair_id
             WHERE l.dataset = {} AND l.label_set = {} ORDER BY p.source_uri, p.line, l.side",
            cols.iter().map(|c| format!("l.{c}")).collect::<Vec<_>>().join(", "),
            sql_literal(dataset),
            sql_literal(name)
        );
        self.copy_to(&query, out)
    }

    /// Pairs of a dataset that two label sets both label, with the requested keys encoded
    /// numerically, side by side: (key, values in set a, values in set b) over texts.
    pub fn label_pairs(&self, dataset: &str, a: &str, b: &str, keys: &[&str]) -> Result<LabelColumns> {
        for set in [self.require_label_set(dataset, a)?, self.require_label_set(dataset, b)?] {
            if let Some(k) = keys.iter().find(|k| !set.has_key(k)) {
                return Err(set.missing_key(k));
            }
        }
        let sel: Vec<String> = keys.iter().flat_map(|k| [label_expr("x", k), label_expr("y", k)]).collect();
        let sql = format!(
            "SELECT {} FROM labels x JOIN labels y ON y.dataset = x.dataset AND y.pair_id = x.pair_id AND y.side = x.side
               AND y.label_set = ? WHERE x.dataset = ? AND x.label_set = ? ORDER BY x.pair_id, x.side",
            sel.join(", ")
        );
        let mut out: Vec<(String, Vec<f64>, Vec<f64>)> = keys.iter().map(|k| (k.to_string(), vec![], vec![])).collect();
        let mut stmt = self.conn.prepare(&sql).ctx("join label sets")?;
        let mut rows = stmt.query(params![b, dataset, a]).ctx("join label sets")?;
        while let Some(row) = rows.next().ctx("join label sets")? {
            for (j, o) in out.iter_mut().enumerate() {
                o.1.push(row.get(2 * j).ctx("join label sets")?);
                o.2.push(row.get(2 * j + 1).ctx("join label sets")?);
            }
        }
        Ok(out)
    }
}
