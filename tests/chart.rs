//! The Helm chart, in the prometheus-community conventions: its copies of `alerts/` and
//! `dashboards/` are the canonical files, its image is the one the README and the Dockerfile
//! name, its README's values table is generated from `values.yaml`, its rule parameters are the
//! defaults of `alerts/`; and it renders, lints and validates for the minimal values and with
//! every toggle on, refusing placeholder URLs with a message that says what to set.
//!
//! `UPDATE_CHART_README=1 cargo test --test chart` rewrites the README's values table.

mod monitoring;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use monitoring::{ROOT, RUNBOOKS_URL, files_with, params, with_params};
use serde_json::Value;

const CHART: &str = "charts/infobip-billing-exporter";
const TABLE_START: &str = "<!-- values-table: generated from values.yaml by tests/chart.rs -->";
const TABLE_END: &str = "<!-- /values-table -->";

fn read(path: &str) -> String {
    let path = Path::new(ROOT).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap()
}

fn files(dir: &Path, ext: &str) -> BTreeMap<String, String> {
    files_with(dir, ext)
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

/// Helm cannot read outside the chart, so it carries copies; they must not drift.
#[test]
fn chart_carries_exact_copies_of_alerts_and_dashboards() {
    let root = Path::new(ROOT);
    for (canonical, copy, ext) in [
        ("alerts", "files/alerts", "yml"),
        ("dashboards", "files/dashboards", "json"),
    ] {
        let want = files(&root.join(canonical), ext);
        let have = files(&root.join(CHART).join(copy), ext);
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            have.keys().collect::<Vec<_>>(),
            "{CHART}/{copy} must hold exactly {canonical}/*.{ext}; refresh with: cp {canonical}/*.{ext} {CHART}/{copy}/"
        );
        for (name, text) in &want {
            assert!(
                have[name] == *text,
                "{CHART}/{copy}/{name} differs from {canonical}/{name}; refresh with: cp {canonical}/*.{ext} {CHART}/{copy}/"
            );
        }
    }
}

/// One image name everywhere: the chart's default, the README, the Dockerfile (its comment and
/// its source label, which links a ghcr.io image to its repository), the Chart.yaml annotation;
/// and the chart's appVersion is the crate's version.
#[test]
fn the_chart_deploys_the_image_the_readme_and_the_dockerfile_name() {
    let values = yaml(&read(&format!("{CHART}/values.yaml")));
    let (registry, repository) = (
        values["image"]["registry"].as_str().unwrap(),
        values["image"]["repository"].as_str().unwrap(),
    );
    assert_eq!(registry, "ghcr.io");
    let image = format!("{registry}/{repository}");
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!(
            "org.opencontainers.image.source=\"https://github.com/{repository}\""
        )),
        "the Dockerfile's source label names github.com/{repository}"
    );
    assert!(
        dockerfile.contains(&format!("The image the Helm chart deploys: {image}\n")),
        "the Dockerfile names {image}"
    );
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("`{image}` (the image the Helm chart deploys)")),
        "README.md names {image}"
    );
    let chart = yaml(&read(&format!("{CHART}/Chart.yaml")));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(chart["appVersion"], version, "appVersion is the crate's");
    assert!(
        chart["annotations"]["artifacthub.io/images"]
            .as_str()
            .unwrap()
            .contains(&format!("image: {image}:{version}\n")),
        "the Artifact Hub annotation names {image}:{version}"
    );
    assert_eq!(values["image"]["tag"], "", "the tag defaults to appVersion");
}

#[test]
fn chart_yaml_names_home_sources_and_maintainers() {
    let chart = yaml(&read(&format!("{CHART}/Chart.yaml")));
    let home = chart["home"].as_str().unwrap();
    assert!(home.starts_with("https://github.com/"), "{home}");
    assert!(
        chart["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == home),
        "sources"
    );
    let maintainers = chart["maintainers"].as_array().unwrap();
    assert!(
        !maintainers.is_empty() && maintainers.iter().all(|m| m["name"].is_string()),
        "maintainers"
    );
    assert!(
        RUNBOOKS_URL.starts_with(home),
        "the runbooks live in the home repository"
    );
}

/// The chart's rule parameters are those of `alerts/`, with the same defaults, so that the
/// PrometheusRule with default values is alerts/ as shipped.
#[test]
fn the_rule_parameters_are_the_defaults_of_alerts() {
    let values = yaml(&read(&format!("{CHART}/values.yaml")));
    let rule = &values["prometheusRule"];
    assert_eq!(rule["runbookUrl"], RUNBOOKS_URL);
    assert_eq!(rule["selector"], "", "defaults to the ServiceMonitor's job");
    assert_eq!(values["serviceMonitor"]["jobName"], monitoring::JOB);
    let chart: BTreeMap<String, String> = rule["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    let mut alerts = BTreeMap::new();
    for text in files(&Path::new(ROOT).join("alerts"), "yml").values() {
        alerts.extend(params(text));
    }
    assert_eq!(
        chart, alerts,
        "prometheusRule.params and the # param: markers of alerts/"
    );
}

// --- The README's values table ---------------------------------------------------------------

/// One row of the values table.
#[derive(Debug)]
struct Row {
    key: String,
    kind: &'static str,
    default: String,
    description: String,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "float",
        Value::Bool(_) => "bool",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

fn at<'a>(root: &'a Value, key: &str) -> &'a Value {
    key.split('.').fold(root, |v, k| &v[k])
}

/// The rows of the `# --` comments of values.yaml (helm-docs style: `# -- text` and the
/// comment lines right after it document the next key; keys inside lists are not walked).
fn value_rows(text: &str) -> Vec<Row> {
    let values = yaml(text);
    let mut rows = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut description: Option<String> = None;
    let mut inside_list: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if let Some(list) = inside_list {
            if trimmed.is_empty() || indent > list || trimmed.starts_with("- ") {
                continue;
            }
            inside_list = None;
        }
        if trimmed.is_empty() {
            description = None;
            continue;
        }
        if let Some(text) = trimmed.strip_prefix("# --") {
            description = Some(text.trim().to_owned());
            continue;
        }
        if let Some(text) = trimmed.strip_prefix('#') {
            if let Some(d) = &mut description {
                d.push(' ');
                d.push_str(text.trim());
            }
            continue;
        }
        let Some((key, _)) = trimmed.split_once(':') else {
            continue;
        };
        path.retain(|(i, _)| *i < indent);
        path.push((indent, key.to_owned()));
        let full: Vec<&str> = path.iter().map(|(_, k)| k.as_str()).collect();
        let full = full.join(".");
        let value = at(&values, &full);
        if let Some(description) = description.take() {
            rows.push(Row {
                key: full,
                kind: kind(value),
                default: serde_json::to_string(value).unwrap(),
                description,
            });
        }
        if value.is_array() {
            inside_list = Some(indent);
        }
    }
    rows
}

fn values_table(rows: &[Row]) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = String::from(
        "| Key | Type | Default | Description |\n|-----|------|---------|-------------|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} |\n",
            r.key,
            r.kind,
            cell(&r.default),
            cell(&r.description)
        ));
    }
    out
}

/// Every value is documented: a row for itself or for the map that holds it.
#[test]
fn every_value_has_a_description() {
    let text = read(&format!("{CHART}/values.yaml"));
    let rows = value_rows(&text);
    let documented: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    fn leaves(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&key, v, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }
    let mut all = Vec::new();
    leaves("", &yaml(&text), &mut all);
    for leaf in &all {
        assert!(
            documented
                .iter()
                .any(|d| leaf == d || leaf.starts_with(&format!("{d}."))),
            "{leaf}: no `# --` description in values.yaml (for it or a map above it)"
        );
    }
    assert!(rows.len() >= 80, "{} rows", rows.len());
}

#[test]
fn chart_readme_values_table_is_current() {
    let readme_path = format!("{CHART}/README.md");
    let readme = read(&readme_path);
    let table = values_table(&value_rows(&read(&format!("{CHART}/values.yaml"))));
    let (before, rest) = readme
        .split_once(TABLE_START)
        .unwrap_or_else(|| panic!("{readme_path}: no {TABLE_START}"));
    let (_, after) = rest
        .split_once(TABLE_END)
        .unwrap_or_else(|| panic!("{readme_path}: no {TABLE_END}"));
    let want = format!("{before}{TABLE_START}\n{table}{TABLE_END}{after}");
    if std::env::var_os("UPDATE_CHART_README").is_some_and(|v| v == "1") {
        std::fs::write(Path::new(ROOT).join(&readme_path), &want).unwrap();
        return;
    }
    assert!(
        readme == want,
        "{readme_path}: the values table is stale; run UPDATE_CHART_README=1 cargo test --test chart"
    );
}

// --- Rendering --------------------------------------------------------------------------------

/// Renders with `charts/render.py` (helm-python-sdk; strict lint, schema check): the manifests
/// as text, or what stderr says.
fn try_render(values: &str, dir: &Path) -> Result<String, String> {
    let file = dir.join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let out = Command::new("python3")
        .current_dir(ROOT)
        .arg("charts/render.py")
        .arg(CHART)
        .arg(&file)
        .output()
        .expect("python3 (pip install helm-python-sdk kubernetes-validate)");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Renders, validates with `kubernetes-validate --strict`, and returns the manifests.
fn render(values_file: &str, dir: &Path) -> Vec<Value> {
    render_values(&read(values_file), values_file, dir)
}

fn render_values(values: &str, what: &str, dir: &Path) -> Vec<Value> {
    let text = try_render(values, dir).unwrap_or_else(|e| panic!("render {what}: {e}"));
    let rendered = dir.join("rendered.yaml");
    std::fs::write(&rendered, &text).unwrap();
    let validate = Command::new("kubernetes-validate")
        .args(["-k", "1.30.0", "--strict", "--quiet"])
        .arg(&rendered)
        .output()
        .expect("kubernetes-validate (pip install kubernetes-validate)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&validate.stdout),
        String::from_utf8_lossy(&validate.stderr)
    );
    assert!(
        validate.status.success(),
        "kubernetes-validate {what}: {report}"
    );
    // Its only allowed remarks: no schema for the prometheus-operator kinds.
    for line in report.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("Couldn't find schema for kind PrometheusRule")
                || line.contains("Couldn't find schema for kind ServiceMonitor"),
            "kubernetes-validate {what}: {line}"
        );
    }
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|d| !d.is_null())
        .collect();
    let kinds: Vec<String> = docs
        .iter()
        .map(|d| format!("{}/{}", d["kind"].as_str().unwrap(), d["metadata"]["name"]))
        .collect();
    println!(
        "{what}: {} manifests, valid: {}",
        docs.len(),
        kinds.join(", ")
    );
    docs
}

fn find<'a>(docs: &'a [Value], kind: &str, name_suffix: &str) -> Option<&'a Value> {
    docs.iter().find(|d| {
        d["kind"] == kind
            && d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with(name_suffix))
    })
}

fn exporter(docs: &[Value]) -> &Value {
    &find(docs, "Deployment", "").expect("a Deployment")["spec"]["template"]["spec"]
}

fn args(docs: &[Value]) -> Vec<&str> {
    exporter(docs)["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

fn named<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|v| v["name"] == name)
}

/// What every value set must give: a hardened single-replica Deployment whose config the
/// exporter accepts, the two Services and the `helm test` pod.
fn assert_core(docs: &[Value]) {
    let pod = exporter(docs);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(container["resources"]["requests"]["memory"].is_string());

    let config = find(docs, "ConfigMap", "billing-exporter").expect("the config ConfigMap");
    let yaml = config["data"]["config.yaml"].as_str().unwrap();
    infobip_billing_exporter::config::Config::from_yaml(yaml)
        .unwrap_or_else(|e| panic!("the exporter refuses the rendered config: {e}\n{yaml}"));
    assert!(yaml.contains("api_key_file: "), "keys come from files");
    let args = args(docs);
    assert_eq!(
        args[..3],
        [
            "run",
            "--config",
            "/etc/infobip-billing-exporter/config.yaml"
        ]
    );
    for flag in ["--log.level", "--log.format"] {
        let at = args.iter().position(|a| *a == flag).expect(flag);
        assert!(
            !args[at + 1].starts_with('-'),
            "{flag} has a value: {args:?}"
        );
    }

    let callback = find(docs, "Service", "-callback").expect("the callback Service");
    assert_eq!(callback["spec"]["publishNotReadyAddresses"], true);
    assert_eq!(callback["spec"]["ports"][0]["targetPort"], "callback");
    let metrics = find(docs, "Service", "billing-exporter").expect("the metrics Service");
    assert_eq!(metrics["spec"]["ports"][0]["targetPort"], "web");

    // `helm test`: a hook pod asking the metrics Service for /-/ready.
    let test = find(docs, "Pod", "-test-ready").expect("the helm test pod");
    assert_eq!(test["metadata"]["annotations"]["helm.sh/hook"], "test");
    assert_eq!(test["spec"]["restartPolicy"], "Never");
    let script = test["spec"]["containers"][0]["args"][0].as_str().unwrap();
    let service = metrics["metadata"]["name"].as_str().unwrap();
    let port = metrics["spec"]["ports"][0]["port"].as_u64().unwrap();
    assert!(
        script.contains(&format!("{service}:{port}/-/ready")) && script.contains("--fail"),
        "{script}"
    );
    assert_eq!(
        test["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
}

#[test]
#[ignore = "needs python3 with helm-python-sdk and kubernetes-validate (pip install helm-python-sdk kubernetes-validate), run by .ci/run"]
fn chart_renders_and_validates_with_minimal_values() {
    let dir = tempfile::tempdir().unwrap();
    let docs = render(&format!("{CHART}/ci/minimal-values.yaml"), dir.path());
    assert_core(&docs);
    for kind in [
        "PrometheusRule",
        "ServiceMonitor",
        "Ingress",
        "NetworkPolicy",
        "Secret",
    ] {
        assert!(find(&docs, kind, "").is_none(), "{kind} is off by default");
    }
    assert!(find(&docs, "PersistentVolumeClaim", "-state").is_some());
    let pod = exporter(&docs);
    assert!(named(&pod["volumes"], "otlp-headers").is_none());
    assert!(named(&pod["volumes"], "web-config").is_none());
    assert!(!args(&docs).contains(&"--web.config.file"));
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        format!(
            "ghcr.io/infobip-billing-exporter/infobip-billing-exporter:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    for (probe, path) in [
        ("livenessProbe", "/-/healthy"),
        ("readinessProbe", "/-/ready"),
    ] {
        assert_eq!(container[probe]["httpGet"]["path"], path);
        assert_eq!(container[probe]["httpGet"]["port"], "web");
        assert_eq!(container[probe]["httpGet"]["scheme"], "HTTP");
    }
    // Today's hardened defaults.
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    assert!(pod.get("imagePullSecrets").is_none());
}

/// The URLs the exporter cannot do without: left empty or on a documentation placeholder, the
/// chart refuses to render and says what to set.
#[test]
#[ignore = "needs python3 with helm-python-sdk and kubernetes-validate (pip install helm-python-sdk kubernetes-validate), run by .ci/run"]
fn placeholder_urls_fail_to_render_with_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let values = |base: &str, public: &str| {
        format!(
            "targets:\n  - name: eu\n    baseUrl: \"{base}\"\ncallback:\n  publicUrl: \"{public}\"\n"
        )
    };
    let good = (
        "https://q7k2m.api.infobip.com",
        "https://billing.finops.acme.io",
    );
    for (base, public, wants) in [
        (
            "",
            good.1,
            ["targets[0].baseUrl is required", "from the Infobip portal"].as_slice(),
        ),
        (
            "https://xxxxx.api.infobip.com",
            good.1,
            &[
                "targets[0].baseUrl: xxxxx.api.infobip.com is the documentation's placeholder",
                "--set targets[0].baseUrl=",
            ],
        ),
        (
            "http://q7k2m.api.infobip.com",
            good.1,
            &["targets[0].baseUrl: http://q7k2m.api.infobip.com is not https://"],
        ),
        (
            good.0,
            "",
            &[
                "callback.publicUrl is required",
                "--set callback.publicUrl=",
            ],
        ),
        (
            good.0,
            "https://billing-exporter.example.com",
            &[
                "callback.publicUrl: billing-exporter.example.com is a placeholder",
                "Infobip reaches the callback Service",
            ],
        ),
        (
            good.0,
            "https://billing.example.org/infobip",
            &["callback.publicUrl: billing.example.org is a placeholder"],
        ),
    ] {
        let err = try_render(&values(base, public), dir.path())
            .expect_err(&format!("{base} / {public} must not render"));
        let line = err
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no error line: {err}"));
        for want in wants {
            assert!(line.contains(want), "{base} / {public}: {line}");
        }
        println!("refused: {line}");
    }
    // Hosts that only look like placeholders render.
    try_render(
        &values("https://q7k2m.api.infobip.com", "https://examples.acme.io"),
        dir.path(),
    )
    .expect("examples.acme.io is a real host");
}

/// The Ingress routes the path of `callback.publicUrl`, where Infobip posts.
#[test]
#[ignore = "needs python3 with helm-python-sdk and kubernetes-validate (pip install helm-python-sdk kubernetes-validate), run by .ci/run"]
fn the_ingress_path_follows_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    for (public, path) in [
        ("https://billing.finops.acme.io", "/callback/"),
        ("https://billing.finops.acme.io/", "/callback/"),
        (
            "https://api.acme.io/infobip-billing",
            "/infobip-billing/callback/",
        ),
        ("https://api.acme.io:8443/a/b/", "/a/b/callback/"),
    ] {
        let values = format!(
            "targets:\n  - name: eu\n    baseUrl: https://q7k2m.api.infobip.com\ncallback:\n  publicUrl: {public}\n  ingress:\n    enabled: true\n"
        );
        let docs = render_values(&values, public, dir.path());
        let rule = &find(&docs, "Ingress", "-callback").expect("the Ingress")["spec"]["rules"][0];
        let host = public.split('/').nth(2).unwrap().split(':').next().unwrap();
        assert_eq!(rule["host"], host, "{public}");
        assert_eq!(rule["http"]["paths"][0]["path"], path, "{public}");
        assert_eq!(rule["http"]["paths"][0]["pathType"], "Prefix");
    }
}

#[test]
#[ignore = "needs python3 with helm-python-sdk and kubernetes-validate (pip install helm-python-sdk kubernetes-validate), run by .ci/run"]
fn chart_renders_and_validates_with_every_toggle_on() {
    let dir = tempfile::tempdir().unwrap();
    let values_file = format!("{CHART}/ci/all-on-values.yaml");
    let values = yaml(&read(&values_file));
    let docs = render(&values_file, dir.path());
    assert_core(&docs);
    for kind in [
        "ServiceMonitor",
        "PrometheusRule",
        "Ingress",
        "NetworkPolicy",
        "Secret",
        "PersistentVolumeClaim",
    ] {
        assert!(find(&docs, kind, "").is_some(), "{kind} is on");
    }
    let pod = exporter(&docs);
    let container = &pod["containers"][0];

    // The NetworkPolicy lets the `helm test` pod reach /-/ready, and does not select it.
    let policy = &find(&docs, "NetworkPolicy", "").unwrap()["spec"];
    let test_pod = find(&docs, "Pod", "-test-ready").unwrap();
    let test_labels = test_pod["metadata"]["labels"].as_object().unwrap();
    let selects = |selector: &Value| {
        selector["matchLabels"]
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| test_labels.get(k) == Some(v))
    };
    assert!(
        !selects(&policy["podSelector"]),
        "the policy leaves the test pod alone"
    );
    let web_from = policy["ingress"][0]["from"].as_array().unwrap();
    assert!(
        web_from
            .iter()
            .any(|peer| peer.get("podSelector").is_some_and(selects)),
        "the test pod may reach the web port: {web_from:?}"
    );
    for service in docs.iter().filter(|d| d["kind"] == "Service") {
        assert!(
            !service["spec"]["selector"]
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| test_labels.get(k) == Some(v)),
            "{} selects the test pod",
            service["metadata"]["name"]
        );
    }

    // global: the registry of every image, and the pull secrets before the chart's own.
    assert_eq!(
        container["image"],
        "registry.acme.io/mirror/infobip-billing-exporter/infobip-billing-exporter:0.1.0-rc1"
    );
    let test = &find(&docs, "Pod", "-test-ready").unwrap()["spec"];
    assert_eq!(
        test["containers"][0]["image"],
        "registry.acme.io/mirror/curlimages/curl:8.11.0"
    );
    for spec in [pod, test] {
        assert_eq!(spec["imagePullSecrets"][0]["name"], "acme-registry");
        assert_eq!(spec["imagePullSecrets"][1]["name"], "ghcr-pull");
    }

    // Every extra* key lands where it belongs.
    let args = args(&docs);
    assert!(
        args.ends_with(&["--web.listen-address", "0.0.0.0:9477"]),
        "{args:?}"
    );
    assert!(named(&container["env"], "HTTPS_PROXY").is_some());
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        "billing-proxy-credentials"
    );
    assert!(named(&pod["volumes"], "billing-tls").is_some());
    assert!(named(&container["volumeMounts"], "billing-tls").is_some());
    // The security contexts are the values'.
    assert_eq!(pod["securityContext"]["runAsUser"], 10001);
    assert_eq!(container["securityContext"]["privileged"], false);
    // A probe handler of the values replaces the default httpGet.
    for probe in ["livenessProbe", "readinessProbe"] {
        assert!(
            container[probe].get("httpGet").is_none(),
            "{probe}: {}",
            container[probe]
        );
        assert_eq!(container[probe]["tcpSocket"]["port"], "web");
    }

    assert_secrets(&docs, &values);
    assert_service_monitor(&docs, &values);
    assert_prometheus_rule(&docs, &values);

    let ingress = &find(&docs, "Ingress", "-callback").unwrap()["spec"]["rules"][0];
    assert_eq!(ingress["host"], "billing.finops.acme.io");
    assert_eq!(ingress["http"]["paths"][0]["path"], "/infobip/callback/");

    // The dashboards ConfigMap: exactly dashboards/*.json, byte for byte, for the sidecar.
    let dashboards = find(&docs, "ConfigMap", "-dashboards").expect("a dashboards ConfigMap");
    assert_eq!(dashboards["metadata"]["labels"]["grafana_dashboard"], "1");
    let have: BTreeMap<String, String> = dashboards["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let want = files(&Path::new(ROOT).join("dashboards"), "json");
    assert_eq!(
        have, want,
        "dashboards ConfigMap differs from dashboards/*.json"
    );
    println!(
        "dashboards ConfigMap: {:?}",
        have.keys().collect::<Vec<&String>>()
    );
}

/// The web config, the OTLP headers and the API keys each come from a Secret, mounted read-only
/// for the exporter's user only, named by the flag or the config, never written in the ConfigMap.
fn assert_secrets(docs: &[Value], values: &Value) {
    let pod = exporter(docs);
    let container = &pod["containers"][0];
    let keys = named(&pod["volumes"], "api-keys").unwrap();
    let mount_of = |volume: &str| {
        named(&container["volumeMounts"], volume).unwrap_or_else(|| panic!("{volume} mounted"))["mountPath"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let config_yaml = find(docs, "ConfigMap", "billing-exporter").unwrap()["data"]["config.yaml"]
        .as_str()
        .unwrap();
    let config = infobip_billing_exporter::config::Config::from_yaml(config_yaml).unwrap();

    // API keys: the chart's Secret (no existingSecret), one file per target.
    let secret = find(docs, "Secret", "-api-keys").expect("the API-key Secret");
    assert_eq!(keys["secret"]["secretName"], secret["metadata"]["name"]);
    assert_eq!(secret["stringData"]["us-key"], "test-key-us");
    assert!(config_yaml.contains(&format!("{}/us-key", mount_of("api-keys"))));
    assert!(!config_yaml.contains("test-key"), "no key in the ConfigMap");

    // The web config: rendered into a Secret, mounted, passed as --web.config.file.
    let web = named(&pod["volumes"], "web-config").expect("the web-config volume");
    let web_secret = find(docs, "Secret", "-web-config").expect("the web config Secret");
    assert_eq!(web["secret"]["secretName"], web_secret["metadata"]["name"]);
    let file = web_secret["stringData"]["web-config.yml"].as_str().unwrap();
    assert_eq!(
        yaml(file),
        values["webConfig"]["config"],
        "the web config as given"
    );
    let args = args(docs);
    let at = args
        .iter()
        .position(|a| *a == "--web.config.file")
        .expect("--web.config.file");
    assert_eq!(
        args[at + 1],
        format!("{}/web-config.yml", mount_of("web-config"))
    );

    // The OTLP headers: the existing Secret's key, as the file the config names.
    let otlp = named(&pod["volumes"], "otlp-headers").expect("the otlp-headers volume");
    assert_eq!(otlp["secret"]["secretName"], "otlp-headers");
    assert_eq!(otlp["secret"]["items"][0]["key"], "collector-headers");
    let headers_file = format!(
        "{}/{}",
        mount_of("otlp-headers"),
        otlp["secret"]["items"][0]["path"].as_str().unwrap()
    );
    let pushed = config.metrics.otlp.expect("the otlp section");
    assert_eq!(
        pushed.headers_file.as_deref(),
        Some(Path::new(&headers_file))
    );
    assert_eq!(
        pushed.endpoint.as_deref(),
        Some("https://otel-collector.monitoring:4317"),
        "the values' own otlp keys are kept"
    );
    for volume in [keys, web, otlp] {
        assert_eq!(
            volume["secret"]["defaultMode"], keys["secret"]["defaultMode"],
            "{volume}"
        );
        assert!(
            named(&container["volumeMounts"], volume["name"].as_str().unwrap()).unwrap()["readOnly"]
                == true
        );
    }
}

/// OTLP headers rendered by the chart (no existing Secret) become the same file.
#[test]
#[ignore = "needs python3 with helm-python-sdk and kubernetes-validate (pip install helm-python-sdk kubernetes-validate), run by .ci/run"]
fn otlp_headers_and_web_config_from_existing_or_rendered_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let base = "targets:\n  - name: eu\n    baseUrl: https://q7k2m.api.infobip.com\ncallback:\n  publicUrl: https://billing.finops.acme.io\n";
    let values = format!(
        "{base}config:\n  otlp:\n    endpoint: https://otel.acme.io:4317\notlp:\n  headers:\n    Authorization: Bearer t0ken\n    X-Scope-OrgID: finops\nwebConfig:\n  existingSecret: billing-web\n  key: web.yml\nweb:\n  scheme: https\n"
    );
    let docs = render_values(
        &values,
        "rendered OTLP headers, existing web config",
        dir.path(),
    );
    let pod = exporter(&docs);
    let secret = find(&docs, "Secret", "-otlp-headers").expect("the OTLP headers Secret");
    assert_eq!(
        secret["stringData"]["headers"],
        "Authorization: Bearer t0ken\nX-Scope-OrgID: finops\n"
    );
    let otlp = named(&pod["volumes"], "otlp-headers").unwrap();
    assert_eq!(otlp["secret"]["secretName"], secret["metadata"]["name"]);
    assert_eq!(otlp["secret"]["items"][0]["key"], "headers");
    let web = named(&pod["volumes"], "web-config").unwrap();
    assert_eq!(web["secret"]["secretName"], "billing-web");
    assert!(find(&docs, "Secret", "-web-config").is_none());
    let args = args(&docs);
    assert!(
        args.windows(2).any(|w| w
            == [
                "--web.config.file",
                "/etc/infobip-billing-exporter/web/web.yml"
            ]),
        "{args:?}"
    );
    let container = &pod["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    let config = find(&docs, "ConfigMap", "billing-exporter").unwrap()["data"]["config.yaml"]
        .as_str()
        .unwrap();
    assert!(!config.contains("t0ken"), "no header in the ConfigMap");

    // Contradictions are refused with what to change.
    for (extra, want) in [
        (
            "web:\n  scheme: https\n",
            "web.scheme is https, but there is no web config",
        ),
        (
            "webConfig:\n  config:\n    tls_server_config: {cert_file: a, key_file: b}\n",
            "set web.scheme to https",
        ),
        (
            "otlp:\n  headersSecret: {name: h}\n  headers: {A: b}\n",
            "set headersSecret.name or headers, not both",
        ),
    ] {
        let err = try_render(&format!("{base}{extra}"), dir.path()).expect_err(extra);
        assert!(err.contains(want), "{extra}: {err}");
    }
}

fn assert_service_monitor(docs: &[Value], values: &Value) {
    let sm = &values["serviceMonitor"];
    let monitor = find(docs, "ServiceMonitor", "").unwrap();
    assert_eq!(monitor["metadata"]["namespace"], "monitoring");
    assert_eq!(
        monitor["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"][0], "finops",
        "the release's Service"
    );
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["scheme"], "https", "web.scheme");
    assert_eq!(endpoint["tlsConfig"], sm["tlsConfig"]);
    assert_eq!(endpoint["basicAuth"], sm["basicAuth"]);
    assert_eq!(endpoint["metricRelabelings"], sm["metricRelabelings"]);
    let relabelings = endpoint["relabelings"].as_array().unwrap();
    assert_eq!(relabelings[0]["targetLabel"], "job");
    assert_eq!(relabelings[0]["replacement"], sm["jobName"]);
    assert_eq!(relabelings[1..], sm["relabelings"].as_array().unwrap()[..]);
}

/// The PrometheusRule: the groups of alerts/*.yml with the values' selector, runbook URL and
/// parameters (as tests/monitoring applies them), the disabled rule left out, the additional
/// rules in a group of their own.
fn assert_prometheus_rule(docs: &[Value], values: &Value) {
    let pr = &values["prometheusRule"];
    let rule = find(docs, "PrometheusRule", "").unwrap();
    assert_eq!(rule["metadata"]["namespace"], "monitoring");
    assert_eq!(
        rule["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    let selector = pr["selector"].as_str().unwrap();
    let runbooks = pr["runbookUrl"].as_str().unwrap();
    let set: BTreeMap<String, String> = pr["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    let disabled: Vec<&str> = pr["disabled"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = Vec::new();
    for text in files(&Path::new(ROOT).join("alerts"), "yml").values() {
        let text = with_params(text, &set)
            .replace(monitoring::JOB_MATCHER, selector)
            .replace(RUNBOOKS_URL, runbooks);
        let mut rules = yaml(&text);
        for group in rules["groups"].as_array_mut().unwrap() {
            group["rules"].as_array_mut().unwrap().retain(|r| {
                !disabled
                    .iter()
                    .any(|d| r["alert"] == *d || r["record"] == *d)
            });
            want.push(group.clone());
        }
    }
    want.push(serde_json::json!({
        "name": "billing-infobip-billing-exporter.additional",
        "rules": pr["additionalRules"],
    }));
    let have = rule["spec"]["groups"].as_array().unwrap();
    assert_eq!(
        have, &want,
        "PrometheusRule groups differ from alerts/*.yml with the values"
    );
    let exprs = serde_json::to_string(have).unwrap();
    assert!(
        !exprs.contains("InfobipBillingUnexpectedCurrency"),
        "disabled by name"
    );
    assert!(
        exprs.contains("4 # param:spendSpikeFactor"),
        "a parameter set"
    );
    assert!(
        exprs.contains("25.5 # param:newDestinationMinimum"),
        "a fractional parameter set"
    );
    assert!(
        !exprs.contains(monitoring::JOB_MATCHER),
        "the selector everywhere"
    );
    println!(
        "PrometheusRule: {} groups, {} rules, as in alerts/*.yml with the values",
        have.len(),
        have.iter()
            .map(|g| g["rules"].as_array().unwrap().len())
            .sum::<usize>()
    );
}

/// With default rule values, the PrometheusRule is alerts/ as shipped.
#[test]
#[ignore = "needs python3 with helm-python-sdk and kubernetes-validate (pip install helm-python-sdk kubernetes-validate), run by .ci/run"]
fn the_default_prometheus_rule_is_alerts_as_shipped() {
    let dir = tempfile::tempdir().unwrap();
    let values = format!(
        "{}prometheusRule:\n  enabled: true\n",
        read(&format!("{CHART}/ci/minimal-values.yaml"))
    );
    let docs = render_values(&values, "default PrometheusRule", dir.path());
    let have = &find(&docs, "PrometheusRule", "").unwrap()["spec"]["groups"];
    let mut want = Vec::new();
    for text in files(&Path::new(ROOT).join("alerts"), "yml").values() {
        want.extend(yaml(text)["groups"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(have.as_array().unwrap(), &want);
}
