//! The deployment files in `deploy/`: the systemd unit passes `systemd-analyze verify` with no
//! complaint, the example settings pass `seal config check` without a warning, and the container
//! recipe builds an image that runs as its comments say.

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

/// The `name`/`data_type`/`dims` entries of one block (`input [ … ]`) of a Triton config; with
/// `commented`, those of the entries commented out in it (`# ` before each line) instead.
fn tensors(config: &str, block: &str, commented: bool) -> Vec<(String, String, String)> {
    let start = config.find(&format!("\n{block} [")).unwrap_or_else(|| panic!("no `{block}` block"));
    let body = &config[start..];
    let body = &body[..body.find("\n]").unwrap()];
    let lines: Vec<&str> = body
        .lines()
        .filter_map(|l| match l.trim_start().strip_prefix('#') {
            Some(rest) => commented.then_some(rest),
            None => (!commented).then_some(l),
        })
        .collect();
    lines
        .join("\n")
        .split('}')
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
    // Triton loads a graph only if the config names exactly its inputs. The config is that of the
    // README's DeBERTa-v3 export, whose graph has no token_type_ids (the exporter drops an input
    // the graph never reads); the fixture's graph has it (type_vocab_size 2), and the entry
    // commented out in the config is what its export adds.
    assert!(info.inputs.iter().any(|i| i == "token_type_ids"), "{:?}", info.inputs);
    let inputs = tensors(&config, "input", false);
    let names: Vec<&str> = inputs.iter().map(|(n, _, _)| n.as_str()).collect();
    let without: Vec<&str> = info.inputs.iter().map(String::as_str).filter(|i| *i != "token_type_ids").collect();
    assert_eq!(names, without, "the config's inputs are a DeBERTa-v3 export's graph inputs, in order");
    let optional = tensors(&config, "input", true);
    let all: Vec<&str> = names.iter().copied().chain(optional.iter().map(|(n, _, _)| n.as_str())).collect();
    assert_eq!(all, info.inputs, "with the entry commented out, an export's inputs with token types");
    assert!(inputs.iter().chain(&optional).all(|(_, t, d)| t == "TYPE_INT64" && d == "[ -1 ]"), "{inputs:?}");
    assert_eq!(tensors(&config, "output", false), vec![("logits".into(), "TYPE_FP32".into(), "[ 1 ]".into())]);
    // ONNX Runtime's CUDA provider uses TF32 unless told; SEAL Lab's scores (and its canary
    // check) are fp32.
    assert!(config.contains("name: \"cuda\"") && config.contains("parameters { key: \"use_tf32\" value: \"0\" }"));
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

/// Podman for the container test: its own settings file, and names of this run's own.
struct Podman {
    dir: tempfile::TempDir,
    tag: String,
    made: std::cell::RefCell<Vec<(&'static str, String)>>,
}

impl Podman {
    fn new() -> Podman {
        let dir = tempfile::tempdir().unwrap();
        // runc sets each container's resource limits from outside it (prlimit), which the
        // sandboxes of some CI machines refuse; this runtime drops them from the OCI config, so
        // the container keeps the limits it inherits. Elsewhere it changes nothing that matters.
        let runtime = dir.path().join("runc-inherited-limits");
        std::fs::write(
            &runtime,
            r#"#!/bin/sh
prev=""
for a in "$@"; do
  f=""
  case "$prev" in --bundle|-b) f="$a/config.json";; --process|-p) f="$a";; esac
  case "$a" in --bundle=*) f="${a#--bundle=}/config.json";; --process=*) f="${a#--process=}";; esac
  if [ -n "$f" ] && [ -f "$f" ]; then
    python3 -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); (c.get("process") or c).pop("rlimits",None); json.dump(c,open(p,"w"))' "$f"
  fi
  prev="$a"
done
exec runc "$@"
"#,
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("containers.conf"), format!("[engine]\nruntime = \"{}\"\n", runtime.display()))
            .unwrap();
        let tag = format!("seal-test-{}", std::process::id());
        Podman { dir, tag, made: Default::default() }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"));
        c
    }

    /// Runs podman; its stdout, or a panic with what it said.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None)
    }

    fn ok_with(&self, args: &[&str], stdin: Option<&str>) -> String {
        use std::io::Write;
        let mut child = self
            .cmd()
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running podman");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            writeln!(input, "{text}").unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "podman {args:?} failed:\n{stdout}\n{stderr}");
        stdout.into_owned()
    }

    /// Remembers something to remove when the test ends (`podman KIND rm -f NAME`).
    fn made(&self, kind: &'static str, name: &str) -> String {
        self.made.borrow_mut().push((kind, name.to_owned()));
        name.to_owned()
    }

    /// A bookworm image to build on: `debootstrap --variant=minbase` from Debian's mirror (this
    /// machine reaches no image registry), with this machine's trusted certificates, so that
    /// the build's downloads (PyPI) trust what this machine trusts. Made once per machine.
    fn bookworm(&self) -> String {
        let name = "localhost/seal-test-bookworm:12";
        if self.cmd().args(["image", "exists", name]).status().unwrap().success() {
            return name.to_owned();
        }
        let root = self.dir.path().join("bookworm");
        let out = Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&root)
            .arg("http://deb.debian.org/debian")
            .output()
            .expect("running debootstrap");
        assert!(out.status.success(), "debootstrap: {}", String::from_utf8_lossy(&out.stderr));
        let certs = root.join("usr/local/share/ca-certificates");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::copy("/etc/ssl/certs/ca-certificates.crt", certs.join("this-machine.crt")).unwrap();
        let tar = self.dir.path().join("bookworm.tar");
        let packed = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status().unwrap();
        assert!(packed.success());
        self.ok(&["import", "--change", "CMD [\"/bin/bash\"]", tar.to_str().unwrap(), name]);
        std::fs::remove_dir_all(&root).ok();
        name.to_owned()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for (kind, name) in self.made.borrow().iter().rev() {
            let _ = self.cmd().args([kind, "rm", "-f", name]).output();
        }
    }
}

#[test]
#[ignore = "needs podman with runc, and debootstrap; run by `cargo xtask test`"]
fn the_container_recipe_builds_an_image_that_serves_its_volume_as_its_comments_say() {
    let podman = Podman::new();
    let base = podman.bookworm();
    // The recipe, packaging the binary under test (built on this bookworm machine).
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_seal"), context.path().join("seal")).unwrap();
    let image = podman.made("image", &format!("localhost/{}:latest", podman.tag));
    let recipe = root().join("deploy/container/Containerfile");
    podman.ok(&[
        "build",
        "-f",
        recipe.to_str().unwrap(),
        "-t",
        &image,
        "--build-arg",
        &format!("BUILDER={base}"),
        "--build-arg",
        &format!("BASE={base}"),
        "--build-arg",
        "SEAL_PREBUILT=seal",
        context.path().to_str().unwrap(),
    ]);
    let volume = podman.made("volume", &format!("{}-data", podman.tag));
    let mount = format!("{volume}:/data");

    // As its comments say: the first admin, then the server on the published port. Without an
    // account the server does not start on the container's every address.
    let name = podman.made("container", &podman.tag);
    let port = crate::support::free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let run = ["run", "-d", "--name", &name, "-p", &publish, "-v", &mount, "-e", "SEAL_SERVER_ALLOWED_HOSTS=127.0.0.1"];
    podman.ok(&[&run[..], &[image.as_str()]].concat());
    let exited = podman.ok(&["wait", &name]);
    assert_eq!(exited.trim(), "1", "a store without accounts is not served on 0.0.0.0");
    let said = podman.cmd().args(["logs", &name]).output().unwrap();
    assert!(String::from_utf8_lossy(&said.stderr).contains("Create an admin first"), "{said:?}");
    podman.ok(&["rm", &name]);
    let added = podman.ok_with(
        &[
            "run",
            "--rm",
            "-i",
            "-v",
            &mount,
            &image,
            "seal",
            "users",
            "add",
            "alice",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(crate::access::PASSWORD),
    );
    assert!(added.contains("added alice (admin)"), "{added}");
    podman.ok(&[&run[..], &[image.as_str()]].concat());
    let base_url = format!("http://127.0.0.1:{port}/");
    // (The port answers once the server listens: until then, connections are refused.)
    let up = (0..150).any(|_| {
        let ok = ureq::get(&format!("{base_url}api/health")).call().is_ok_and(|r| r.status() == 200);
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        ok
    });
    assert!(up, "the server never answered: {:?}", podman.cmd().args(["logs", &name]).output().unwrap());
    assert_eq!(crate::support::get(&format!("{base_url}api/datasets")).0, 401, "accounts: sign-in required");
    let (status, page) = crate::support::get(&base_url);
    assert!(status == 200 && page.contains("<html"), "the embedded web app: {status}");

    // It runs as its own user, its store private, with ONNX Runtime in the image.
    assert_eq!(podman.ok(&["exec", &name, "id", "-u"]).trim(), "10001");
    assert_eq!(podman.ok(&["exec", &name, "stat", "-c", "%a %U", "/data"]).trim(), "700 seal");
    let info = podman.ok(&["exec", &name, "seal", "runtime", "info"]);
    assert!(info.contains("ONNX Runtime 1.31.1"), "{info}");
    // Commands in the container go through its running server: a token, a model, pairs and a
    // scoring job, whose results the server answers with.
    let token = podman.ok(&["exec", &name, "seal", "tokens", "create", "--user", "alice"]).trim().to_owned();
    assert!(token.starts_with("seal_pat_"), "{token}");
    podman.ok(&["cp", crate::support::fixture_model("pre").to_str().unwrap(), &format!("{name}:/tmp/pre")]);
    let pairs = context.path().join("harmless-base");
    std::fs::create_dir_all(&pairs).unwrap();
    std::fs::write(pairs.join("test.jsonl"), crate::support::hh_rlhf_lines()[..40].join("\n") + "\n").unwrap();
    podman.ok(&["cp", pairs.to_str().unwrap(), &format!("{name}:/tmp/harmless-base")]);
    podman.ok(&["exec", &name, "seal", "models", "add", "--name", "pre", "/tmp/pre"]);
    podman.ok(&["exec", &name, "seal", "ingest", "--dataset", "hh", "/tmp/harmless-base/test.jsonl"]);
    podman.ok(&["exec", &name, "seal", "score", "--dataset", "hh", "--model", "pre"]);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut answer = agent
        .get(&format!("{base_url}api/accuracy/hh/pre"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    let body = answer.body_mut().read_to_string().unwrap();
    assert_eq!(serde_json::from_str::<seal_shared::Accuracy>(&body).unwrap().n, 40, "{body}");

    // `podman stop` sends SIGTERM: the server ends cleanly, and the volume keeps the store.
    podman.ok(&["stop", "-t", "20", &name]);
    assert_eq!(podman.ok(&["inspect", "--format", "{{.State.ExitCode}}", &name]).trim(), "0");
    let listed = podman.ok(&["run", "--rm", "-v", &mount, &image, "seal", "--json", "datasets", "list"]);
    let datasets: Vec<seal_shared::DatasetInfo> = serde_json::from_str(&listed).unwrap();
    assert_eq!(datasets.iter().map(|d| (d.name.as_str(), d.n_pairs)).collect::<Vec<_>>(), [("hh", 40)]);
}
