//! Sentence embeddings for meaning preservation: a BERT-style encoder run through ONNX Runtime
//! (all-MiniLM-L6-v2 as shipped on PyPI), mean-pooled over the attention mask and L2-normalised
//! as sentence-transformers does, so the cosine of two texts is their dot product.
//!
//! [`Embedder::load`] cuts a long text as sentence-transformers does, keeping its start.
//! Meaning preservation compares a transcript with one whose last response was edited, so it
//! uses [`Embedder::load_keeping_end`]: the end of the text kept, not its start.

use std::path::Path;

use ort::session::{builder::GraphOptimizationLevel, Session};
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams};

use super::{environment, ScoreError};

pub struct Embedder {
    session: Session,
    tokenizer: Tokenizer,
    inputs: Vec<String>,
    output: String,
    /// Texts per forward pass.
    batch: usize,
    /// Tokens per text at most, special tokens included.
    max_tokens: usize,
    /// Texts embedded so far that were longer than `max_tokens`.
    truncated: u64,
}

/// Which end of a text longer than the limit is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Start,
    End,
}

impl Embedder {
    /// Loads `model.onnx` and `tokenizer.json` from `folder`; texts are cut at `max_tokens`
    /// (all-MiniLM-L6-v2: 256, the length it was trained on), keeping their start.
    pub fn load(folder: &Path, max_tokens: usize, threads: Option<usize>) -> Result<Embedder, ScoreError> {
        Embedder::open(folder, tokenizer(folder, max_tokens, Keep::Start)?, threads)
    }

    /// As [`Embedder::load`], for texts that differ near their end (a transcript and one whose
    /// last response was edited): a text is cut at `max_tokens`, or at the model's own maximum
    /// length where the folder says a shorter one (tokenizer_config.json, config.json), whatever
    /// length tokenizer.json was saved to cut at; and its start is left out, not its end, so two
    /// texts that differ only in their last words never embed alike.
    pub fn load_keeping_end(folder: &Path, max_tokens: usize, threads: Option<usize>) -> Result<Embedder, ScoreError> {
        Embedder::open(folder, tokenizer(folder, max_tokens, Keep::End)?, threads)
    }

    /// Tokens per text at most, special tokens included.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// How many of the texts embedded so far were longer than [`Embedder::max_tokens`].
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    fn open(
        folder: &Path,
        (tokenizer, max_tokens): (Tokenizer, usize),
        threads: Option<usize>,
    ) -> Result<Embedder, ScoreError> {
        let fail = |detail: String| ScoreError::Model { folder: folder.display().to_string(), detail };
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
        Ok(Embedder { session, tokenizer, inputs, output, batch: 32, max_tokens, truncated: 0 })
    }

    /// Unit-length embeddings of `texts`, in order.
    pub fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ScoreError> {
        let encoded = self
            .tokenizer
            .encode_batch_fast(texts.iter().map(|t| (*t).into()).collect::<Vec<tokenizers::EncodeInput<'_>>>(), true)
            .map_err(|e| ScoreError::Tokenize(e.to_string()))?;
        // A cut text keeps what was left out as its overflowing parts.
        self.truncated += encoded.iter().filter(|e| !e.get_overflowing().is_empty()).count() as u64;
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

/// `tokenizer.json` of `folder`, without padding, cutting texts as `keep` says; and the length
/// it cuts at. The cut comes before the special tokens are added, so a text cut on the left
/// still starts with [CLS] (the tokenizer's template) and ends with [SEP].
fn tokenizer(folder: &Path, max_tokens: usize, keep: Keep) -> Result<(Tokenizer, usize), ScoreError> {
    let fail = |detail: String| ScoreError::Model { folder: folder.display().to_string(), detail };
    let mut tokenizer =
        Tokenizer::from_file(folder.join("tokenizer.json")).map_err(|e| fail(format!("tokenizer.json: {e}")))?;
    let (max_length, direction) = match keep {
        Keep::Start => (max_tokens, TruncationDirection::Right),
        Keep::End => (model_max_tokens(folder).map_or(max_tokens, |m| m.min(max_tokens)), TruncationDirection::Left),
    };
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams { max_length, direction, ..Default::default() }))
        .map_err(|e| fail(e.to_string()))?;
    Ok((tokenizer, max_length))
}

/// The longest input the model in `folder` takes, where its files say: `model_max_length` in
/// tokenizer_config.json and `max_position_embeddings` in config.json (less the two positions
/// that RoBERTa-style models, bge-m3's XLM-RoBERTa among them, start after), the smaller when
/// both do.
fn model_max_tokens(folder: &Path) -> Option<usize> {
    let configured = super::tokenizer_config(folder).max_length.map(u64::from);
    let positions = std::fs::read_to_string(folder.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|config| {
            let n = config.get("max_position_embeddings")?.as_u64()?;
            let offset = matches!(
                config.get("model_type").and_then(|m| m.as_str()),
                Some("roberta" | "xlm-roberta" | "xlm-roberta-xl" | "camembert" | "mpnet")
            );
            Some(if offset { n.saturating_sub(2) } else { n })
        });
    let limit = match (configured, positions) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    // A limit the special tokens alone fill is no limit to cut at.
    usize::try_from(limit).ok().filter(|&n| n > 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiny DeBERTa-v2 reward model of the tests: its tokenizer ([CLS] … [SEP]) and its
    /// config files (512 tokens) stand in for an embedding model's.
    fn folder() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/post/seal")
    }

    /// Two transcripts of about 600 words that differ only in the last word.
    fn long_pair() -> (String, String) {
        let turn = "\n\nHuman: What should I bake this weekend?\n\nAssistant: You could bake bread at home with flour, water and yeast, then knead it well and let it rise.";
        let context = turn.repeat(20);
        (format!("{context} It tastes good."), format!("{context} It tastes awful."))
    }

    #[test]
    fn the_model_s_own_length_comes_from_its_folder() {
        assert_eq!(model_max_tokens(&folder()), Some(512));
        assert_eq!(model_max_tokens(Path::new("/nonexistent")), None);
        let (_, n) = tokenizer(&folder(), 256, Keep::End).unwrap();
        assert_eq!(n, 256, "the length asked for, within the model's");
        let (_, n) = tokenizer(&folder(), 4096, Keep::End).unwrap();
        assert_eq!(n, 512, "no longer than the model takes");
        let (_, n) = tokenizer(&folder(), 256, Keep::Start).unwrap();
        assert_eq!(n, 256, "`load` cuts where it is told");
    }

    #[test]
    fn a_long_text_keeps_its_end_and_its_special_tokens() {
        let (a, b) = long_pair();
        let (end, max) = tokenizer(&folder(), 256, Keep::End).unwrap();
        let (start, _) = tokenizer(&folder(), 256, Keep::Start).unwrap();
        let mut uncut = Tokenizer::from_file(folder().join("tokenizer.json")).unwrap();
        uncut.with_truncation(None).unwrap();
        let full = uncut.encode_fast(a.as_str(), false).unwrap().len();
        assert!(full > max, "{full} tokens: the texts are longer than the model takes");
        let enc = |t: &Tokenizer, s: &str| t.encode_fast(s, true).unwrap();
        let (ea, eb) = (enc(&end, &a), enc(&end, &b));
        assert_eq!((ea.len(), eb.len()), (max, max));
        // Cut on the left: the last words are there, and the texts still differ.
        assert_ne!(ea.get_ids(), eb.get_ids());
        assert!(!ea.get_overflowing().is_empty(), "counted as truncated");
        let cls = end.token_to_id("[CLS]").unwrap();
        let sep = end.token_to_id("[SEP]").unwrap();
        for e in [&ea, &eb] {
            assert_eq!((e.get_ids()[0], e.get_ids()[max - 1]), (cls, sep));
            assert_eq!(e.get_ids().iter().filter(|&&id| id == cls).count(), 1);
        }
        // Cut on the right at 256 tokens, as before, the two are the same input.
        let (sa, sb) = (enc(&start, &a), enc(&start, &b));
        assert_eq!(sa.len(), 256);
        assert_eq!(sa.get_ids(), sb.get_ids());
        // A short text is not cut.
        let short = enc(&end, "Human: Hi.\n\nAssistant: Hello.");
        assert!(short.get_overflowing().is_empty() && short.len() < max);
        assert_eq!(short.get_ids()[0], cls);
    }
}
