//! Reads for the example browser and the pair page, and reviewers' notes.

use duckdb::arrow::array::{Array, AsArray};
use duckdb::arrow::datatypes::{DataType, Int64Type};
use duckdb::{params, OptionalExt};
use seal_shared::browse::{LabelValue, Note, PairLabels, PairScore, ScorePair};

use super::{Context, Result, Store, StoreError};
use crate::domain::Agreement;

/// Every pair of a dataset in dataset order (source, line), with the lengths the list sorts by.
#[derive(Debug, Clone, Default)]
pub struct PairIndexColumns {
    pub pair_ids: Vec<String>,
    pub subsets: Vec<String>,
    /// Characters (Unicode scalar values) of the full chosen / rejected transcript.
    pub chosen_chars: Vec<u64>,
    pub rejected_chars: Vec<u64>,
    /// The opening characters of both last responses (empty unless asked for).
    pub previews: PreviewTexts,
}

/// The stored record of one pair.
#[derive(Debug, Clone)]
pub struct PairRecord {
    pub pair_id: String,
    pub subset: String,
    pub split: String,
    pub source_uri: String,
    pub line: u64,
    pub chosen_context: String,
    pub chosen_response: String,
    pub rejected_context: String,
    pub rejected_response: String,
}

/// The first characters of both last responses of every pair, each side packed into one buffer
/// so a page of the list reads them without touching the store (~560 characters a pair).
#[derive(Debug, Clone, Default)]
pub struct PreviewTexts {
    chosen: Packed,
    rejected: Packed,
}

/// Strings end to end in one buffer, with where each ends.
#[derive(Debug, Clone, Default)]
struct Packed {
    text: String,
    ends: Vec<usize>,
}

impl Packed {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

impl PreviewTexts {
    /// Pairs held.
    pub fn len(&self) -> usize {
        self.chosen.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chosen.ends.is_empty()
    }

    /// The chosen and rejected preview of pair `i`.
    pub fn get(&self, i: usize) -> (&str, &str) {
        (self.chosen.get(i), self.rejected.get(i))
    }
}

/// The four texts of a pair, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Transcript<'a> {
    pub pair_id: &'a str,
    pub chosen_context: &'a str,
    pub chosen_response: &'a str,
    pub rejected_context: &'a str,
    pub rejected_response: &'a str,
}

/// Strings of an Arrow column, whichever string layout DuckDB chose.
pub(super) fn arrow_strings(col: &dyn Array) -> Vec<String> {
    let mut out = Vec::with_capacity(col.len());
    each_arrow_str(col, |s| out.push(s.to_owned()));
    out
}

/// Calls `f` with each string of an Arrow column (nulls as empty), without copying it.
fn each_arrow_str(col: &dyn Array, mut f: impl FnMut(&str)) {
    match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().iter().for_each(|s| f(s.unwrap_or_default())),
        DataType::LargeUtf8 => col.as_string::<i64>().iter().for_each(|s| f(s.unwrap_or_default())),
        _ => col.as_string_view().iter().for_each(|s| f(s.unwrap_or_default())),
    }
}

impl Store {
    /// Every pair of a dataset, in dataset order.
    pub fn pair_index(&self, dataset: &str) -> Result<PairIndexColumns> {
        self.read_pair_index(dataset, None)
    }

    /// Every pair of a dataset, in dataset order, with the first `chars` characters of both last
    /// responses.
    pub fn pair_index_with_previews(&self, dataset: &str, chars: usize) -> Result<PairIndexColumns> {
        self.read_pair_index(dataset, Some(chars))
    }

    fn read_pair_index(&self, dataset: &str, preview_chars: Option<usize>) -> Result<PairIndexColumns> {
        self.require_dataset(dataset)?;
        let previews = match preview_chars {
            Some(n) => format!(", left(chosen_response, {n}), left(rejected_response, {n})"),
            None => String::new(),
        };
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT pair_id, subset,
                        length(chosen_context || chosen_response)::BIGINT,
                        length(rejected_context || rejected_response)::BIGINT{previews}
                 FROM pairs WHERE dataset = ? ORDER BY source_uri, line"
            ))
            .ctx("read pair index")?;
        let mut out = PairIndexColumns::default();
        for batch in stmt.query_arrow(params![dataset]).ctx("read pair index")? {
            out.pair_ids.extend(arrow_strings(batch.column(0).as_ref()));
            out.subsets.extend(arrow_strings(batch.column(1).as_ref()));
            out.chosen_chars.extend(batch.column(2).as_primitive::<Int64Type>().values().iter().map(|&v| v as u64));
            out.rejected_chars.extend(batch.column(3).as_primitive::<Int64Type>().values().iter().map(|&v| v as u64));
            if preview_chars.is_some() {
                each_arrow_str(batch.column(4).as_ref(), |s| out.previews.chosen.push(s));
                each_arrow_str(batch.column(5).as_ref(), |s| out.previews.rejected.push(s));
            }
        }
        Ok(out)
    }

    /// (URI, SHA-256, pairs) of every source of a dataset, by URI: what its content depends on.
    pub fn source_digests(&self, dataset: &str) -> Result<Vec<(String, String, u64)>> {
        self.require_dataset(dataset)?;
        Ok(self.sources(dataset)?.into_iter().map(|s| (s.uri, s.sha256, s.n_pairs)).collect())
    }

    /// Calls `f` with the texts of every pair of a dataset, in dataset order.
    pub fn for_each_transcript<E: From<StoreError>>(
        &self,
        dataset: &str,
        mut f: impl FnMut(Transcript<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        self.require_dataset(dataset)?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT pair_id, chosen_context, chosen_response, rejected_context, rejected_response
                 FROM pairs WHERE dataset = ? ORDER BY source_uri, line",
            )
            .ctx("read transcripts")?;
        for batch in stmt.query_arrow(params![dataset]).ctx("read transcripts")? {
            let cols: Vec<Vec<String>> = (0..5).map(|c| arrow_strings(batch.column(c).as_ref())).collect();
            let rows = cols[0].iter().zip(&cols[1]).zip(&cols[2]).zip(&cols[3]).zip(&cols[4]);
            for ((((id, cc), cr), rc), rr) in rows {
                f(Transcript {
                    pair_id: id,
                    chosen_context: cc,
                    chosen_response: cr,
                    rejected_context: rc,
                    rejected_response: rr,
                })?;
            }
        }
        Ok(())
    }

    /// One pair as stored.
    pub fn pair_record(&self, dataset: &str, pair_id: &str) -> Result<PairRecord> {
        self.require_dataset(dataset)?;
        self.conn
            .query_row(
                "SELECT pair_id, subset, split, source_uri, line, chosen_context, chosen_response,
                        rejected_context, rejected_response
                 FROM pairs WHERE dataset = ? AND pair_id = ?",
                params![dataset, pair_id],
                |r| {
                    Ok(PairRecord {
                        pair_id: r.get(0)?,
                        subset: r.get(1)?,
                        split: r.get(2)?,
                        source_uri: r.get(3)?,
                        line: r.get::<_, i64>(4)? as u64,
                        chosen_context: r.get(5)?,
                        chosen_response: r.get(6)?,
                        rejected_context: r.get(7)?,
                        rejected_response: r.get(8)?,
                    })
                },
            )
            .optional()
            .ctx("read pair")?
            .ok_or_else(|| StoreError::NotFound(format!("no pair `{pair_id}` in dataset `{dataset}`")))
    }

    /// Every model's scores of one pair, by model name.
    pub fn pair_scores(&self, dataset: &str, pair_id: &str) -> Result<Vec<PairScore>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.model, s.chosen_score, s.rejected_score, s.chosen_tokens, s.rejected_tokens,
                        s.chosen_truncated, s.rejected_truncated,
                        CASE WHEN r.device IS NULL OR r.device = 'cpu' THEN r.provider ELSE r.provider || ' on ' || r.device END
                 FROM scores s JOIN score_runs r USING (run_id)
                 WHERE s.dataset = ? AND s.pair_id = ? ORDER BY s.model",
            )
            .ctx("read pair scores")?;
        let rows = stmt
            .query_map(params![dataset, pair_id], |r| {
                let (c, rj): (f64, f64) = (r.get(1)?, r.get(2)?);
                Ok(PairScore {
                    score: score_pair(r.get(0)?, c, rj),
                    chosen_tokens: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                    rejected_tokens: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                    chosen_truncated: r.get(5)?,
                    rejected_truncated: r.get(6)?,
                    provider: r.get(7)?,
                })
            })
            .ctx("read pair scores")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("read pair scores")?;
        Ok(rows)
    }

    /// Every label set's labels of one pair, by label set name; values as stored text, only the
    /// keys each set holds.
    pub fn pair_labels(&self, dataset: &str, pair_id: &str) -> Result<Vec<PairLabels>> {
        let keys: Vec<&str> = crate::features::all_keys();
        let cols = keys.iter().map(|k| format!("{k}::VARCHAR")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT l.label_set, s.labeler, l.side, {cols}
             FROM labels l JOIN label_sets s ON s.dataset = l.dataset AND s.name = l.label_set
             WHERE l.dataset = ? AND l.pair_id = ? ORDER BY l.label_set, l.side"
        );
        let sets = self.label_sets(Some(dataset))?;
        let mut stmt = self.conn.prepare(&sql).ctx("read pair labels")?;
        let rows = stmt
            .query_map(params![dataset, pair_id], |r| {
                let values: Vec<Option<String>> =
                    (0..keys.len()).map(|i| r.get(3 + i)).collect::<duckdb::Result<_>>()?;
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, String>(2)?, values))
            })
            .ctx("read pair labels")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("read pair labels")?;
        let mut out: Vec<PairLabels> = Vec::new();
        for (set, labeler, side, values) in rows {
            if out.last().is_none_or(|l| l.label_set != set) {
                let held = sets.iter().find(|s| s.name == set);
                out.push(PairLabels {
                    label_set: set.clone(),
                    labeler,
                    values: keys
                        .iter()
                        .filter(|k| held.is_none_or(|s| s.has_key(k)))
                        .map(|k| LabelValue { key: k.to_string(), chosen: String::new(), rejected: String::new() })
                        .collect(),
                });
            }
            let entry = out.last_mut().expect("pushed above");
            for (key, v) in keys.iter().zip(values) {
                let (Some(slot), Some(v)) = (entry.values.iter_mut().find(|s| s.key == *key), v) else { continue };
                if side == "chosen" {
                    slot.chosen = v;
                } else {
                    slot.rejected = v;
                }
            }
        }
        Ok(out)
    }

    /// Adds a reviewer's note to a pair (which must exist).
    pub fn add_note(&self, dataset: &str, pair_id: &str, author: &str, text: &str) -> Result<Note> {
        self.pair_record(dataset, pair_id)?;
        let id: i64 = self
            .conn
            .query_row(
                "INSERT INTO notes (dataset, pair_id, author, text) VALUES (?, ?, ?, ?) RETURNING id",
                params![dataset, pair_id, author, text],
                |r| r.get(0),
            )
            .ctx("add note")?;
        self.note(id)?.map(|(n, _, _)| n).ok_or_else(|| StoreError::NotFound(format!("no note {id}")))
    }

    /// A pair's notes, oldest first; hidden ones only with `include_hidden`.
    pub fn notes(&self, dataset: &str, pair_id: &str, include_hidden: bool) -> Result<Vec<Note>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {NOTE_COLUMNS} FROM notes WHERE dataset = ? AND pair_id = ? AND (? OR hidden_by IS NULL) ORDER BY id"
            ))
            .ctx("read notes")?;
        let rows = stmt
            .query_map(params![dataset, pair_id, include_hidden], note_row)
            .ctx("read notes")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("read notes")?;
        Ok(rows)
    }

    /// One note with the dataset and pair it is on.
    pub fn note(&self, id: i64) -> Result<Option<(Note, String, String)>> {
        self.conn
            .query_row(&format!("SELECT {NOTE_COLUMNS}, dataset, pair_id FROM notes WHERE id = ?"), params![id], |r| {
                Ok((note_row(r)?, r.get(6)?, r.get(7)?))
            })
            .optional()
            .ctx("read note")
    }

    /// Replaces a note's text.
    pub fn edit_note(&self, id: i64, text: &str) -> Result<()> {
        self.conn
            .execute("UPDATE notes SET text = ?, edited_at = current_timestamp WHERE id = ?", params![text, id])
            .ctx("edit note")?;
        Ok(())
    }

    pub fn delete_note(&self, id: i64) -> Result<()> {
        self.conn.execute("DELETE FROM notes WHERE id = ?", params![id]).ctx("delete note")?;
        Ok(())
    }

    /// Hides a note (`by` the admin) or shows it again (`None`).
    pub fn set_note_hidden(&self, id: i64, by: Option<&str>) -> Result<()> {
        self.conn.execute("UPDATE notes SET hidden_by = ? WHERE id = ?", params![by, id]).ctx("hide note")?;
        Ok(())
    }
}

const NOTE_COLUMNS: &str = "id, author, text, strftime(created_at, '%Y-%m-%dT%H:%M:%SZ'), \
    strftime(edited_at, '%Y-%m-%dT%H:%M:%SZ'), hidden_by IS NOT NULL";

fn note_row(r: &duckdb::Row<'_>) -> duckdb::Result<Note> {
    Ok(Note {
        id: r.get(0)?,
        author: r.get(1)?,
        text: r.get(2)?,
        created_at: r.get(3)?,
        edited_at: r.get(4)?,
        hidden: r.get(5)?,
    })
}

/// A model's two scores as the wire shows them.
pub fn score_pair(model: String, chosen: f64, rejected: f64) -> ScorePair {
    ScorePair { model, chosen, rejected, margin: chosen - rejected, agreement: Agreement::of(chosen, rejected) }
}
