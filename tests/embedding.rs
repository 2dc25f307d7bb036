//! Meaning preservation's sentence embeddings: all-MiniLM-L6-v2 (the int8 ONNX graph that
//! `seal runtime install` takes from PyPI) run through ort must give the embeddings of the
//! model's own package runtime (python/make_embedding_golden.py) on real hh-rlhf transcripts,
//! including two longer than the model's 256 tokens.

use serde_json::Value;

use crate::support::{fixtures, hh_rlhf_lines, init_runtime};

#[test]
fn minilm_embeddings_match_the_packages_runtime() {
    init_runtime();
    let folder = seal::config::embedder_dir();
    assert!(
        folder.join("model.onnx").is_file(),
        "{}: run `cargo xtask setup` (seal runtime install) first",
        folder.display()
    );
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("embeddings").join("minilm_golden.json")).unwrap(),
    )
    .unwrap();
    let lines = hh_rlhf_lines();
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let texts: Vec<String> = cases
        .iter()
        .map(|c| {
            let row: Value = serde_json::from_str(&lines[c["line"].as_u64().unwrap() as usize]).unwrap();
            row[c["side"].as_str().unwrap()].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(texts.iter().any(|t| t.len() > 4000), "a text longer than 256 tokens is among them");
    let mut embedder = seal::score::embed::Embedder::load(&folder, 256, None).unwrap();
    // All at once (padded batches) and one by one (as the package runs them) agree with it.
    let batched = embedder.embed(&texts.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    for (k, (c, got)) in cases.iter().zip(&batched).enumerate() {
        let want: Vec<f32> = c["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(got.len(), 384);
        let single = embedder.embed(&[texts[k].as_str()]).unwrap().remove(0);
        for (name, v) in [("batched", got), ("single", &single)] {
            let worst = v.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 2e-4, "case {k} ({name}): largest difference {worst}");
            let cos = seal::score::embed::cosine(v, &want);
            assert!(cos > 0.99999, "case {k} ({name}): cosine {cos}");
        }
    }
    // Unit length, and different texts are not the same vector.
    for v in &batched {
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
    }
    assert!(seal::score::embed::cosine(&batched[0], &batched[2]) < 0.99);
}

#[test]
fn a_long_transcript_is_compared_by_its_end() {
    init_runtime();
    let folder = seal::config::embedder_dir();
    let long = hh_rlhf_lines()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["chosen"].as_str().unwrap().to_owned())
        .max_by_key(String::len)
        .unwrap();
    // Two transcripts far past 256 tokens that differ only in their last words, as a rewrite
    // of the last response leaves them.
    let (a, b) = (format!("{long} It tastes good."), format!("{long} It tastes awful, I would never eat it."));
    let cosine = seal::score::embed::cosine;
    let mut start = seal::score::embed::Embedder::load(&folder, 256, None).unwrap();
    let v = start.embed(&[&a, &b]).unwrap();
    assert!((cosine(&v[0], &v[1]) - 1.0).abs() < 1e-6, "cut on the right, the change is out of sight");
    let mut end = seal::score::embed::Embedder::load_keeping_end(&folder, 256, None).unwrap();
    let v = end.embed(&[&a, &b]).unwrap();
    assert!(cosine(&v[0], &v[1]) < 0.999, "{}", cosine(&v[0], &v[1]));
    assert_eq!(end.truncated(), 2);
}
