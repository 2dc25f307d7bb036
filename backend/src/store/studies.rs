//! Studies: reads that join `pairs`, two models' `scores` and (optionally) one label set's
//! `labels` into aligned columns; it owns no table.

use duckdb::params;

use super::labels::label_expr;
use super::{browse, sql_literal, Context, Result, Store, StoreError};

/// The columns of a study, aligned by pair, in dataset order (source, line).
#[derive(Debug, Clone, Default)]
pub struct StudyColumns {
    pub pair_ids: Vec<String>,
    pub subsets: Vec<String>,
    /// Each pair's 0-based position among all the dataset's pairs in load order (source, line):
    /// the released code's `row_id`.
    pub row_ids: Vec<u64>,
    pub pre: (Vec<f64>, Vec<f64>),
    pub post: (Vec<f64>, Vec<f64>),
    /// Token counts of the post-D model's inputs (None where scores were imported).
    pub post_tokens: (Vec<Option<f64>>, Vec<Option<f64>>),
    /// Requested label keys, numerically encoded as SEAL's released `analysis/main_results.ipynb`
    /// does (cells 2–3): (key, chosen, rejected).
    pub labels: Vec<(String, Vec<f64>, Vec<f64>)>,
    /// (chosen context, chosen response, rejected context, rejected response) when asked for.
    pub texts: Vec<[String; 4]>,
    pub n_dataset_pairs: u64,
    /// Pairs with scores from both models.
    pub n_scored: u64,
}

impl Store {
    /// Loads a study: pairs scored by both models (and labelled on both sides when `label_set`
    /// is given), with the requested label keys encoded as the released
    /// `analysis/main_results.ipynb` does (cells 2–3).
    pub fn study(
        &self,
        dataset: &str,
        pre: &str,
        post: &str,
        label_set: Option<&str>,
        label_keys: &[&str],
        with_texts: bool,
    ) -> Result<StudyColumns> {
        use duckdb::arrow::array::AsArray;
        use duckdb::arrow::datatypes::Float64Type;

        self.require_dataset(dataset)?;
        self.model(pre)?;
        self.model(post)?;
        let set = label_set.map(|set| self.require_label_set(dataset, set)).transpose()?;
        for k in label_keys {
            if !crate::features::KEYS.iter().any(|(key, kind)| key == k && *kind != crate::features::KeyKind::List) {
                return Err(StoreError::Invalid(format!("`{k}` is not a numeric label key")));
            }
            match &set {
                Some(set) if !set.has_key(k) => return Err(set.missing_key(k)),
                None => return Err(StoreError::Invalid(format!("label key `{k}` asked for without a label set"))),
                Some(_) => {}
            }
        }
        let n_dataset_pairs = self.count_pairs(dataset)?;
        let mut select = vec![
            "p.pair_id".to_string(),
            "p.subset".into(),
            "a.chosen_score".into(),
            "a.rejected_score".into(),
            "b.chosen_score".into(),
            "b.rejected_score".into(),
            "b.chosen_tokens::DOUBLE".into(),
            "b.rejected_tokens::DOUBLE".into(),
            "o.row_id::DOUBLE".into(),
        ];
        for k in label_keys {
            select.push(label_expr("lc", k));
            select.push(label_expr("lr", k));
        }
        if with_texts {
            select.extend(
                ["p.chosen_context", "p.chosen_response", "p.rejected_context", "p.rejected_response"]
                    .map(String::from),
            );
        }
        let labels_join = match label_set {
            Some(set) => format!(
                "JOIN labels lc ON lc.dataset = p.dataset AND lc.label_set = {s} AND lc.pair_id = p.pair_id AND lc.side = 'chosen'
                 JOIN labels lr ON lr.dataset = p.dataset AND lr.label_set = {s} AND lr.pair_id = p.pair_id AND lr.side = 'rejected'",
                s = sql_literal(set)
            ),
            None => String::new(),
        };
        let sql = format!(
            "SELECT {} FROM pairs p
             JOIN scores a ON a.dataset = p.dataset AND a.pair_id = p.pair_id AND a.model = {pre}
             JOIN scores b ON b.dataset = p.dataset AND b.pair_id = p.pair_id AND b.model = {post}
             JOIN (SELECT pair_id, row_number() OVER (ORDER BY source_uri, line) - 1 AS row_id
                   FROM pairs WHERE dataset = {ds}) o ON o.pair_id = p.pair_id
             {labels_join}
             WHERE p.dataset = {ds} ORDER BY p.source_uri, p.line",
            select.join(", "),
            pre = sql_literal(pre),
            post = sql_literal(post),
            ds = sql_literal(dataset)
        );
        let n_scored: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM scores a JOIN scores b ON b.dataset = a.dataset AND b.pair_id = a.pair_id AND b.model = ?
                 WHERE a.dataset = ? AND a.model = ?",
                params![post, dataset, pre],
                |r| r.get(0),
            )
            .ctx("count scored pairs")?;
        let mut out = StudyColumns {
            labels: label_keys.iter().map(|k| (k.to_string(), vec![], vec![])).collect(),
            n_dataset_pairs,
            n_scored: n_scored as u64,
            ..Default::default()
        };
        let mut stmt = self.conn.prepare(&sql).ctx("load study")?;
        let strings = browse::arrow_strings;
        for batch in stmt.query_arrow([]).ctx("load study")? {
            let f = |i: usize| batch.column(i).as_primitive::<Float64Type>();
            out.pair_ids.extend(strings(batch.column(0).as_ref()));
            out.subsets.extend(strings(batch.column(1).as_ref()));
            out.pre.0.extend(f(2).values().iter());
            out.pre.1.extend(f(3).values().iter());
            out.post.0.extend(f(4).values().iter());
            out.post.1.extend(f(5).values().iter());
            out.post_tokens.0.extend(f(6).iter());
            out.post_tokens.1.extend(f(7).iter());
            // Positions are whole numbers far below 2⁵³: exact as doubles.
            out.row_ids.extend(f(8).values().iter().map(|v| *v as u64));
            for (j, l) in out.labels.iter_mut().enumerate() {
                l.1.extend(f(9 + 2 * j).values().iter());
                l.2.extend(f(10 + 2 * j).values().iter());
            }
            if with_texts {
                let base = 9 + 2 * label_keys.len();
                let cols: Vec<Vec<String>> = (0..4).map(|k| strings(batch.column(base + k).as_ref())).collect();
                for (((cc, cr), rc), rr) in cols[0].iter().zip(&cols[1]).zip(&cols[2]).zip(&cols[3]) {
                    out.texts.push([cc.clone(), cr.clone(), rc.clone(), rr.clone()]);
                }
            }
        }
        Ok(out)
    }
}
