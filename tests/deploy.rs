//! The deployment files in `deploy/`: the systemd unit passes `systemd-analyze verify` with no
//! complaint, and the example settings pass `seal config check` without a warning.

use std::process::Command;

use crate::support::root;

#[test]
#[ignore = "needs systemd-analyze (systemd); run by `cargo xtask test`"]
fn the_systemd_unit_verifies_cleanly() {
    let unit = std::fs::read_to_string(root().join("deploy/systemd/seal.service")).unwrap();
    let exec = "ExecStart=/usr/local/bin/seal ";
    assert!(unit.contains(exec), "the unit runs /usr/local/bin/seal");
    // The unit as installed, but starting the binary under test: verify checks that it exists.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("seal.service");
    std::fs::write(&copy, unit.replace(exec, &format!("ExecStart={} ", env!("CARGO_BIN_EXE_seal")))).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&copy).output().expect("running systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Bad values are only warned about: there must be none.
    assert!(!stderr.contains("seal.service"), "{stderr}");

    // The check bites: a misspelt setting is named.
    std::fs::write(&copy, unit.replace("ProtectSystem=strict", "ProtectSystem=strictest")).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&copy).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("seal.service:") && stderr.contains("strictest"), "a bad value is reported: {stderr}");
}

#[test]
fn the_example_settings_check_without_warnings() {
    let file = root().join("deploy/seal.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_seal"))
        .env("SEAL_DATA_DIR", dir.path())
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stdout.contains("# warning") && !stderr.contains("warning"), "{stdout}{stderr}");
    for line in ["allowed_hosts = [\"seal.lab.example\"]", "enabled = true", "max_running_score = 1"] {
        assert!(stdout.contains(line), "{line} in:\n{stdout}");
    }
}

/// A default as docs/settings.md writes it: TOML.
fn toml_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(items) => format!("[{}]", items.iter().map(toml_value).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String, serde_json::Value)>) {
    for (k, child) in v.as_object().unwrap() {
        if child.is_object() {
            let section = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            leaves(&section, child, out);
        } else {
            out.push((prefix.to_owned(), k.clone(), child.clone()));
        }
    }
}

#[test]
fn every_setting_is_documented_with_its_default() {
    let doc = std::fs::read_to_string(root().join("docs/settings.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)]| -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_seal"))
            .env("SEAL_DATA_DIR", dir.path())
            .env_remove("SEAL_CONFIG")
            .envs(envs.iter().copied())
            .args(["--json", "config", "check"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let mut defaults = Vec::new();
    leaves("", &run(&[]), &mut defaults);
    assert!(defaults.len() >= 20, "{defaults:?}");
    // The section of docs/settings.md that documents `[section]`.
    let section = |name: &str| -> String {
        let heading = format!("`[{name}]`");
        let start = doc
            .lines()
            .position(|l| l.starts_with('#') && l.contains(&heading))
            .unwrap_or_else(|| panic!("no section {heading}"));
        doc.lines().skip(start + 1).take_while(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n")
    };
    for (sec, key, value) in &defaults {
        if (sec.as_str(), key.as_str()) == ("server", "data_dir") {
            // Set by this test (SEAL_DATA_DIR); its default is the user's data directory.
            assert!(section(sec).contains("| `data_dir` | the user's data directory |"));
            continue;
        }
        let row = format!("| `{key}` | `{}` |", toml_value(value));
        assert!(section(sec).contains(&row), "docs/settings.md [{sec}] lacks the row {row}");
    }
    // Keys without a default are documented too; given a value, they appear in effect.
    let mut set = Vec::new();
    leaves(
        "",
        &run(&[
            ("SEAL_SERVER_PUBLIC_URL", "https://seal.lab.example/"),
            ("SEAL_LLM_BASE_URL", "http://127.0.0.1:11434/v1"),
        ]),
        &mut set,
    );
    for (sec, key, _) in set.iter().filter(|l| !defaults.iter().any(|d| d.0 == l.0 && d.1 == l.1)) {
        assert!(section(sec).contains(&format!("| `{key}` |")), "docs/settings.md [{sec}] lacks `{key}`");
    }
    assert!(set.len() > defaults.len(), "public_url appears once set");
}

/// The `name`/`data_type`/`dims` entries of one block (`input [ … ]`) of a Triton config.
fn tensors(config: &str, block: &str) -> Vec<(String, String, String)> {
    let start = config.find(&format!("\n{block} [")).unwrap_or_else(|| panic!("no `{block}` block"));
    let body = &config[start..];
    let body = &body[..body.find("\n]").unwrap()];
    body.split('}')
        .filter(|entry| entry.contains("name:"))
        .map(|entry| {
            let field = |key: &str| {
                let at = entry.find(key).unwrap_or_else(|| panic!("{block} entry without {key}: {entry}"));
                entry[at + key.len()..].lines().next().unwrap().trim().trim_matches('"').to_owned()
            };
            (field("name:"), field("data_type:"), field("dims:"))
        })
        .collect()
}

#[test]
fn the_triton_model_repository_declares_what_an_export_takes_and_gives() {
    crate::support::init_runtime();
    let config = std::fs::read_to_string(root().join("deploy/triton/model_repository/seal-rm/config.pbtxt")).unwrap();
    let info = seal::score::inspect(&crate::support::fixture_model("pre")).unwrap();
    let inputs = tensors(&config, "input");
    let names: Vec<&str> = inputs.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, info.inputs, "the config's inputs are an export's graph inputs, in order");
    assert!(inputs.iter().all(|(_, t, d)| t == "TYPE_INT64" && d == "[ -1 ]"), "{inputs:?}");
    assert_eq!(tensors(&config, "output"), vec![("logits".into(), "TYPE_FP32".into(), "[ 1 ]".into())]);
    let max_batch: u32 = config
        .lines()
        .find_map(|l| l.strip_prefix("max_batch_size:"))
        .expect("a dynamic batch dimension")
        .trim()
        .parse()
        .unwrap();
    assert!(max_batch >= 64, "room for SEAL Lab's batches: {max_batch}");
    assert!(config.contains("\ndynamic_batching {"), "dynamic batching");
    assert!(config.contains("kind: KIND_GPU") && config.contains("count: 1"), "one instance per GPU");
    assert!(config.contains("backend: \"onnxruntime\""));
}
