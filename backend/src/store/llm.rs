//! The LM answer cache and the labeler's failure log.

use duckdb::{params, OptionalExt};

use super::{Context, Result, Store};

/// One cached answer of an LM server.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedAnswer {
    pub content: String,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

/// What identifies a request in the cache (besides its key, the hash of all of these).
#[derive(Debug, Clone)]
pub struct CacheEntry<'a> {
    pub key: &'a str,
    pub model: &'a str,
    pub prompt_version: &'a str,
    pub text_sha256: &'a str,
    pub params: &'a str,
    pub attempt: u32,
}

/// A text the labeler gave up on.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelFailure {
    pub pair_id: String,
    pub side: String,
    pub attempts: u32,
    pub error: String,
    pub raw_answer: Option<String>,
}

impl Store {
    /// The cached answer of a request, if any.
    pub fn cached_answer(&self, key: &str) -> Result<Option<CachedAnswer>> {
        self.conn
            .query_row(
                "SELECT content, prompt_tokens, completion_tokens FROM llm_responses WHERE key = ?",
                params![key],
                |r| {
                    Ok(CachedAnswer {
                        content: r.get(0)?,
                        prompt_tokens: r.get::<_, Option<i64>>(1)?.map(|v| v as u64),
                        completion_tokens: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                    })
                },
            )
            .optional()
            .ctx("read LM cache")
    }

    /// Which of `keys` are cached.
    pub fn cached_keys(&self, keys: &[String]) -> Result<std::collections::HashSet<String>> {
        let mut found = std::collections::HashSet::new();
        for chunk in keys.chunks(5000) {
            let list = chunk.iter().map(|k| super::sql_literal(k)).collect::<Vec<_>>().join(", ");
            let mut stmt = self
                .conn
                .prepare(&format!("SELECT key FROM llm_responses WHERE key IN ({list})"))
                .ctx("find cached answers")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).ctx("find cached answers")?;
            for k in rows {
                found.insert(k.ctx("find cached answers")?);
            }
        }
        Ok(found)
    }

    /// Stores an answer as soon as it arrives (its own transaction: a crash loses at most the
    /// requests in flight). A key already present keeps its first answer. Returns the content
    /// the cache keeps: `answer`'s, or the first answer's when two requests for the same key
    /// (the same text twice, say) were in flight at once, so that what a run uses is what a
    /// rerun reads.
    pub fn cache_answer(&self, e: &CacheEntry<'_>, answer: &CachedAnswer) -> Result<String> {
        let inserted = self
            .conn
            .execute(
                "INSERT INTO llm_responses (key, model, prompt_version, text_sha256, params, attempt, content,
                    prompt_tokens, completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                params![
                    e.key,
                    e.model,
                    e.prompt_version,
                    e.text_sha256,
                    e.params,
                    e.attempt,
                    answer.content,
                    answer.prompt_tokens.map(|v| v as i64),
                    answer.completion_tokens.map(|v| v as i64)
                ],
            )
            .ctx("cache LM answer");
        if let Ok(1) = inserted {
            return Ok(answer.content.clone());
        }
        // Not inserted: the key was there, or another connection's insert of it committed
        // meanwhile and this one conflicted (DuckDB may report that as an error).
        match self.cached_answer(e.key)? {
            Some(kept) => Ok(kept.content),
            None => {
                inserted?;
                Err(super::StoreError::Invalid(format!("LM cache: no answer kept for {}", e.key)))
            }
        }
    }

    /// Replaces the failure log of a label set.
    pub fn record_label_failures(&mut self, dataset: &str, label_set: &str, failures: &[LabelFailure]) -> Result<()> {
        let tx = self.conn.transaction().ctx("begin")?;
        tx.execute("DELETE FROM label_failures WHERE dataset = ? AND label_set = ?", params![dataset, label_set])
            .ctx("replace label failures")?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO label_failures (dataset, label_set, pair_id, side, attempts, error, raw_answer)
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .ctx("record label failures")?;
            for f in failures {
                insert
                    .execute(params![dataset, label_set, f.pair_id, f.side, f.attempts, f.error, f.raw_answer])
                    .ctx("record label failure")?;
            }
        }
        tx.commit().ctx("commit label failures")?;
        Ok(())
    }

    /// The failure log of a label set, by pair and side.
    pub fn label_failures(&self, dataset: &str, label_set: &str) -> Result<Vec<LabelFailure>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT pair_id, side, attempts, error, raw_answer FROM label_failures
                 WHERE dataset = ? AND label_set = ? ORDER BY pair_id, side",
            )
            .ctx("read label failures")?;
        let rows = stmt
            .query_map(params![dataset, label_set], |r| {
                Ok(LabelFailure {
                    pair_id: r.get(0)?,
                    side: r.get(1)?,
                    attempts: r.get::<_, i64>(2)? as u32,
                    error: r.get(3)?,
                    raw_answer: r.get(4)?,
                })
            })
            .ctx("read label failures")?
            .collect::<std::result::Result<Vec<_>, _>>()
            .ctx("read label failures")?;
        Ok(rows)
    }
}
