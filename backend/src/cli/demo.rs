//! `seal demo`, the README's first command: install the runtime, ingest hh-rlhf harmless-base
//! test, register a pre-D and a post-D reward model, and serve the app at once, scoring with
//! both models as jobs of the server (with `--no-serve`: scoring in the terminal instead).
//!
//! With the Hugging Face hub reachable it uses the paper's OpenAssistant RMs, exported by
//! `seal models export`. Without it, it says so and falls back to local files: the hh-rlhf copy
//! in `../shared/data` and the generated test models under `tests/fixtures`, which are marked
//! as test models everywhere their scores are shown.

use anyhow::{bail, Result};
use seal_shared::jobs::JobRequest;
use seal_shared::JobKind;

use super::{DemoArgs, ScoreArgs};
use crate::config;
use crate::domain::{InputFormat, Truncation};
use crate::pipeline::{self, AddModel, IngestOptions, SourceFormat};
use crate::store::Store;

pub const DATASET: &str = "hh-rlhf-harmless-test";
const HUB_SOURCE: &str = "hf://datasets/Anthropic/hh-rlhf/harmless-base/test.jsonl.gz";
/// The paper's pre-D and post-D reward models (as named in SEAL's released `compare/__init__.py`
/// and `rewrite/__init__.py`).
const HUB_MODELS: [(&str, &str); 2] = [
    ("oa-deberta-v3-large", "OpenAssistant/reward-model-deberta-v3-large"),
    ("oa-deberta-v3-large-v2", "OpenAssistant/reward-model-deberta-v3-large-v2"),
];

/// Whether `seal score --device cuda` can work here: the CUDA build of ONNX Runtime is installed
/// (its CUDA provider beside it) and every CUDA library it needs was found.
fn gpu_ready(data: &config::DataDir) -> bool {
    config::find_cuda_ort(data).is_some() && crate::runtime::find_cuda_libraries().missing_required().is_empty()
}

pub fn run(ctx: &super::Ctx, a: &DemoArgs) -> Result<()> {
    let data = &ctx.data;
    // A machine with the GPU runtime installed and its CUDA libraries found scores on its GPU.
    let gpu = gpu_ready(data);
    if gpu {
        // Restarts the demo once with the CUDA libraries on LD_LIBRARY_PATH, when they are elsewhere.
        super::with_cuda_library_path()?;
        eprintln!("Scoring on the GPU (ONNX Runtime's CUDA build and the CUDA libraries were found)");
    }
    if config::find_ort(data, false).is_err() {
        eprintln!("ONNX Runtime is not installed yet; fetching it from PyPI");
        let index = std::env::var("SEAL_PYPI_URL").unwrap_or_else(|_| "https://pypi.org/simple".to_owned());
        crate::runtime::install(&config::project_dir().join("onnxruntime"), false, &index)?;
    }
    let hub = crate::net::probe(&format!("{}/api/models/{}", a.hub_url.trim_end_matches('/'), HUB_MODELS[1].1));
    let mut store = Store::open(&data.store_file())?;
    let (source, models, test_models) = match hub {
        Ok(()) => {
            let mut models = Vec::new();
            for (name, id) in HUB_MODELS {
                let out = data.0.join("models").join(name);
                // The export's report is written last: without it the export did not finish.
                if !out.join("seal-export.json").is_file() {
                    crate::pyenv::export(id, &out, Default::default())?;
                }
                models.push((name.to_owned(), out));
            }
            (HUB_SOURCE.to_owned(), models, false)
        }
        Err(e) => {
            eprintln!("The Hugging Face hub cannot be reached ({e:#}).");
            eprintln!("Falling back to local files: the hh-rlhf copy in ../shared/data and the generated TEST models in tests/fixtures.");
            eprintln!("Scores below come from small random test models, not from real reward models.");
            let Some(file) = config::shared_data_file("hh-rlhf/harmless-base/test.jsonl.gz") else {
                bail!("no local copy of hh-rlhf harmless-base/test.jsonl.gz in ../shared/data, and the hub is unreachable");
            };
            let fixtures = config::project_root().join("tests").join("fixtures").join("models");
            let models = vec![
                ("test-pre".to_owned(), fixtures.join("pre").join("seal")),
                ("test-post".to_owned(), fixtures.join("post").join("seal")),
            ];
            (file.display().to_string(), models, true)
        }
    };
    let opts = IngestOptions {
        format: SourceFormat::HhRlhf,
        skip_invalid: false,
        replace: true,
        columns: Default::default(),
        subset: None,
        split: None,
        hub_url: a.hub_url.clone(),
        policy: None,
        stop: None,
    };
    let summary = pipeline::ingest(&mut store, data, DATASET, &[source], &opts)?;
    for s in &summary.sources {
        eprintln!("{} {}: {} pairs in `{DATASET}`", s.outcome, s.uri, s.n_pairs);
    }
    for (name, folder) in &models {
        let registered = store.model(name).ok();
        let current = crate::score::sha256_file(&folder.join("model.onnx")).ok();
        if registered.as_ref().and_then(|m| m.onnx_sha256.clone()) != current {
            pipeline::add_model(
                &store,
                data,
                &AddModel {
                    name: name.clone(),
                    folder: folder.clone(),
                    input_format: InputFormat::Pair,
                    max_length: None,
                    truncation: Truncation::None,
                    replace: true,
                    // The demo's own store: scores of the graph it no longer runs go.
                    drop_scores: true,
                    is_test_model: test_models,
                    endpoints: Vec::new(),
                    token_env: None,
                },
            )?;
        }
    }
    if !a.no_serve {
        // The app serves at once; the scores come from jobs of the server, one per model, which
        // the overview follows and fills in from as they commit.
        let mut ctx_gpu;
        // A device the settings name other than the default is the user's choice.
        let ctx = if gpu && ctx.settings.jobs.score_device == "cpu" {
            ctx_gpu = ctx.clone();
            ctx_gpu.settings.jobs.score_device = "cuda".into();
            &ctx_gpu
        } else {
            ctx
        };
        let jobs = models
            .iter()
            .map(|(name, _)| JobRequest {
                model: Some(name.clone()),
                limit: a.limit.map(|n| n as u64),
                ..JobRequest::new(JobKind::Score, DATASET)
            })
            .collect();
        eprintln!(
            "Scoring {} with {} as jobs of the server: the overview shows their progress and fills in as scores arrive.",
            DATASET,
            models.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(" and ")
        );
        if test_models {
            eprintln!(
                "NOTE: these scores come from generated TEST models (the hub was unreachable), not real reward models."
            );
        }
        return super::serve(store, ctx, &a.serve, jobs);
    }
    let args = ScoreArgs {
        dataset: DATASET.to_owned(),
        models: models.iter().map(|(n, _)| n.clone()).collect(),
        device: if gpu { "cuda" } else { "cpu" }.into(),
        batch_tokens: None,
        tf32: false,
        max_batch: None,
        threads: None,
        instances: None,
        io_binding: None,
        commit_every: None,
        limit: a.limit,
        in_flight: super::args::DEFAULT_IN_FLIGHT,
        shard: None,
        out: None,
    };
    super::score(&mut store, data, &args, false)?;
    if test_models {
        println!(
            "NOTE: these accuracies come from generated TEST models (the hub was unreachable), not real reward models."
        );
    }
    Ok(())
}
