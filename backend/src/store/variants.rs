//! Variants of a dataset (rewritten pairs) and the bulk read of a dataset's pairs they start from.

use duckdb::{params, OptionalExt};

use super::{word_at, Context, Result, Store, StoreError};
use crate::domain::{NewPair, Side, Sides, VariantKind};

/// What a variant is and how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantRecord {
    /// The variant's own dataset, `<base>@<name>`.
    pub dataset: String,
    pub base_dataset: String,
    pub name: String,
    pub kind: VariantKind,
    /// The perturbation, or the rewriting model.
    pub method: String,
    pub sides: Sides,
    pub prompt_version: Option<String>,
    pub params: Option<String>,
    pub n_pairs: u64,
    pub n_skipped: u64,
}

/// The dataset that holds variant `name` of `base`.
pub fn variant_dataset(base: &str, name: &str) -> String {
    format!("{base}@{name}")
}

fn variant_row(r: &duckdb::Row<'_>) -> duckdb::Result<VariantRecord> {
    Ok(VariantRecord {
        dataset: r.get(0)?,
        base_dataset: r.get(1)?,
        name: r.get(2)?,
        kind: word_at(r, 3)?,
        method: r.get(4)?,
        sides: word_at(r, 5)?,
        prompt_version: r.get(6)?,
        params: r.get(7)?,
        n_pairs: r.get::<_, i64>(8)? as u64,
        n_skipped: r.get::<_, i64>(9)? as u64,
    })
}

const VARIANT_COLUMNS: &str =
    "dataset, base_dataset, name, kind, method, sides, prompt_version, params, n_pairs, n_skipped";

impl Store {
    /// Every pair of a dataset with its texts, in dataset order (source, line).
    pub fn pairs_of(&self, dataset: &str) -> Result<Vec<NewPair>> {
        self.require_dataset(dataset)?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT pair_id, subset, split, line, chosen_context, chosen_response, rejected_context, rejected_response
                 FROM pairs WHERE dataset = ? ORDER BY source_uri, line",
            )
            .ctx("read pairs")?;
        let rows = stmt
            .query_map(params![dataset], |r| {
                Ok(NewPair {
                    pair_id: r.get(0)?,
                    subset: r.get(1)?,
                    split: r.get(2)?,
                    line: r.get::<_, i64>(3)? as u64,
                    chosen: Side { context: r.get(4)?, response: r.get(5)? },
                    rejected: Side { context: r.get(6)?, response: r.get(7)? },
                })
            })
            .ctx("read pairs")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("read pairs")?;
        Ok(rows)
    }

    /// Records (or updates) what a variant dataset is.
    pub fn record_variant(&self, v: &VariantRecord) -> Result<()> {
        self.conn
            .execute(
                &format!("INSERT OR REPLACE INTO variants ({VARIANT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                params![
                    v.dataset,
                    v.base_dataset,
                    v.name,
                    v.kind.as_str(),
                    v.method,
                    v.sides.as_str(),
                    v.prompt_version,
                    v.params,
                    v.n_pairs as i64,
                    v.n_skipped as i64
                ],
            )
            .ctx("record variant")?;
        self.changed_data(&v.dataset);
        Ok(())
    }

    /// The variants of a dataset (all variants when `None`), by name.
    pub fn variants(&self, base: Option<&str>) -> Result<Vec<VariantRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {VARIANT_COLUMNS} FROM variants WHERE ? IS NULL OR base_dataset = ? ORDER BY base_dataset, name"
            ))
            .ctx("read variants")?;
        let rows = stmt
            .query_map(params![base, base], variant_row)
            .ctx("read variants")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("read variants")?;
        Ok(rows)
    }

    /// The variant a dataset holds, if it is one.
    pub fn variant_of(&self, dataset: &str) -> Result<Option<VariantRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {VARIANT_COLUMNS} FROM variants WHERE dataset = ?"),
                params![dataset],
                variant_row,
            )
            .optional()
            .ctx("read variant")
    }

    /// The variant `name` of `base`, or an error that lists the variants there are.
    pub fn require_variant(&self, base: &str, name: &str) -> Result<VariantRecord> {
        let all = self.variants(Some(base))?;
        all.iter().find(|v| v.name == name).cloned().ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
            StoreError::NotFound(format!(
                "dataset `{base}` has no variant `{name}` (it has: {}); make one with `seal rewrite`",
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ))
        })
    }

    /// Pairs of a variant without a similarity from `model`, with both versions' full texts:
    /// (pair id, [original chosen, original rejected, rewritten chosen, rewritten rejected]).
    pub fn similarity_todo(
        &self,
        variant: &VariantRecord,
        model: &str,
        limit: usize,
    ) -> Result<Vec<(String, [String; 4])>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT v.pair_id, o.chosen_context || o.chosen_response, o.rejected_context || o.rejected_response,
                        v.chosen_context || v.chosen_response, v.rejected_context || v.rejected_response
                 FROM pairs v JOIN pairs o ON o.dataset = ? AND o.pair_id = v.pair_id
                 WHERE v.dataset = ? AND NOT EXISTS (SELECT 1 FROM variant_similarity s
                     WHERE s.dataset = v.dataset AND s.pair_id = v.pair_id AND s.model = ?)
                 ORDER BY v.line LIMIT ?",
            )
            .ctx("read pairs to embed")?;
        let rows = stmt
            .query_map(params![variant.base_dataset, variant.dataset, model, limit as i64], |r| {
                Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
            })
            .ctx("read pairs to embed")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("read pairs to embed")?;
        Ok(rows)
    }

    /// Forgets a variant's similarities (its texts were replaced).
    pub fn clear_similarity(&self, dataset: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM variant_similarity WHERE dataset = ?", params![dataset])
            .ctx("clear similarity")?;
        self.changed_data(dataset);
        Ok(())
    }

    /// Stores one chunk of similarities in one transaction.
    pub fn insert_similarity(&mut self, dataset: &str, model: &str, rows: &[(String, f64, f64)]) -> Result<()> {
        let tx = self.conn.transaction().ctx("begin")?;
        {
            let mut app = tx.appender("variant_similarity").ctx("appender")?;
            for (id, c, r) in rows {
                app.append_row(params![dataset, id, model, c, r]).ctx("append similarity")?;
            }
            app.flush().ctx("flush similarity")?;
        }
        tx.commit().ctx("commit similarity")?;
        self.changed_data(dataset);
        Ok(())
    }

    /// Each pair's (pair id, cosine of the chosen texts, cosine of the rejected texts) under one
    /// embedding model, original against rewrite.
    pub fn similarity_pairs(&self, dataset: &str, model: &str) -> Result<Vec<(String, f64, f64)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT pair_id, cos_chosen, cos_rejected FROM variant_similarity
                 WHERE dataset = ? AND model = ? ORDER BY pair_id",
            )
            .ctx("read similarity")?;
        let rows = stmt
            .query_map(params![dataset, model], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .ctx("read similarity")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("read similarity")?;
        Ok(rows)
    }

    /// (model, pairs, mean cosine chosen, mean cosine rejected) of a variant's similarities, one
    /// row per embedding model.
    pub fn similarity_summary(&self, dataset: &str) -> Result<Vec<(String, u64, f64, f64)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT model, count(*), avg(cos_chosen), avg(cos_rejected) FROM variant_similarity
                 WHERE dataset = ? GROUP BY model ORDER BY model",
            )
            .ctx("read similarity")?;
        let rows = stmt
            .query_map(params![dataset], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?, r.get(3)?)))
            .ctx("read similarity")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("read similarity")?;
        Ok(rows)
    }
}
