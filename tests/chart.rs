//! The Helm chart: its copies of `alerts/` and `dashboards/` are the canonical files, and it
//! renders, lints and validates for the default values and with every toggle on.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CHART: &str = "charts/infobip-billing-exporter";

fn files(dir: &Path, ext: &str) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
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
        assert!(!want.is_empty(), "no {canonical}/*.{ext}");
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

/// Renders with `charts/render.py` (helm-python-sdk; strict lint, schema check) and validates
/// with kubernetes-validate; returns the manifests.
fn render(values: Option<&str>, dir: &Path) -> Vec<Value> {
    let mut cmd = Command::new("python3");
    cmd.current_dir(ROOT).arg("charts/render.py").arg(CHART);
    if let Some(v) = values {
        cmd.arg(v);
    }
    let out = cmd
        .output()
        .expect("python3 (pip install helm-python-sdk kubernetes-validate)");
    assert!(
        out.status.success(),
        "render {values:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = dir.join(format!("rendered-{}.yaml", values.is_some()));
    std::fs::write(&rendered, &out.stdout).unwrap();

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
        "kubernetes-validate {values:?}: {report}"
    );
    // Its only allowed remarks: no schema for the prometheus-operator kinds.
    for line in report.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("Couldn't find schema for kind PrometheusRule")
                || line.contains("Couldn't find schema for kind ServiceMonitor"),
            "kubernetes-validate {values:?}: {line}"
        );
    }

    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|d| !d.is_null())
        .collect();
    let kinds: Vec<String> = docs
        .iter()
        .map(|d| format!("{}/{}", d["kind"].as_str().unwrap(), d["metadata"]["name"]))
        .collect();
    println!(
        "{}: {} manifests, valid: {}",
        values.unwrap_or("default values"),
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

/// What every value set must give: a hardened single-replica Deployment whose config the
/// exporter accepts, and the two Services.
fn assert_core(docs: &[Value]) {
    let deployment = find(docs, "Deployment", "").expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/-/healthy");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "web");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/-/ready");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "web");

    let config = find(docs, "ConfigMap", "billing-exporter").expect("the config ConfigMap");
    let yaml = config["data"]["config.yaml"].as_str().unwrap();
    infobip_billing_exporter::config::Config::from_yaml(yaml)
        .unwrap_or_else(|e| panic!("the exporter refuses the rendered config: {e}\n{yaml}"));
    assert!(yaml.contains("api_key_file: "), "keys come from files");
    // The log flags are the exporter's own, each with a value.
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
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
}

#[test]
#[ignore = "needs python3 with helm-python-sdk and kubernetes-validate (pip install helm-python-sdk kubernetes-validate), run by .ci/run"]
fn chart_renders_and_validates_with_default_values() {
    let dir = tempfile::tempdir().unwrap();
    let docs = render(None, dir.path());
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
    let pod = &find(&docs, "Deployment", "").unwrap()["spec"]["template"]["spec"];
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(
        volumes.iter().all(|v| v["name"] != "otlp-headers"),
        "no OTLP headers Secret by default"
    );
}

/// The OTLP headers Secret of all-on-values.yaml: mounted read-only as the file the rendered
/// config names as otlp.headers_file, never written into the ConfigMap.
fn assert_otlp_headers_from_the_secret(docs: &[Value]) {
    let pod = &find(docs, "Deployment", "").unwrap()["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "otlp-headers")
        .expect("the otlp-headers volume");
    assert_eq!(volume["secret"]["secretName"], "otlp-headers");
    assert_eq!(volume["secret"]["items"][0]["key"], "collector-headers");
    let keys = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "api-keys")
        .unwrap();
    assert_eq!(
        volume["secret"]["defaultMode"], keys["secret"]["defaultMode"],
        "readable by the exporter's user only, as the API keys"
    );
    let file = format!(
        "{}/{}",
        pod["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "otlp-headers")
            .expect("mounted")["mountPath"]
            .as_str()
            .unwrap(),
        volume["secret"]["items"][0]["path"].as_str().unwrap()
    );
    let yaml = find(docs, "ConfigMap", "billing-exporter").unwrap()["data"]["config.yaml"]
        .as_str()
        .unwrap();
    let config = infobip_billing_exporter::config::Config::from_yaml(yaml).unwrap();
    let otlp = config.metrics.otlp.expect("the otlp section");
    assert_eq!(otlp.headers_file.as_deref(), Some(Path::new(&file)));
    assert_eq!(
        otlp.endpoint.as_deref(),
        Some("https://otel-collector.monitoring:4317"),
        "the values' own otlp keys are kept"
    );
    let args = &pod["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .windows(2)
            .any(|w| w[0] == "--log.format" && w[1] == "json"),
        "{args}"
    );
}

#[test]
#[ignore = "needs python3 with helm-python-sdk and kubernetes-validate (pip install helm-python-sdk kubernetes-validate), run by .ci/run"]
fn chart_renders_and_validates_with_every_toggle_on() {
    let dir = tempfile::tempdir().unwrap();
    let values_file = format!("{CHART}/ci/all-on-values.yaml");
    let docs = render(Some(&values_file), dir.path());
    assert_core(&docs);
    assert_otlp_headers_from_the_secret(&docs);
    for kind in [
        "ServiceMonitor",
        "Ingress",
        "NetworkPolicy",
        "Secret",
        "PersistentVolumeClaim",
    ] {
        assert!(find(&docs, kind, "").is_some(), "{kind} is on");
    }
    let monitor = find(&docs, "ServiceMonitor", "").unwrap();
    assert_eq!(
        monitor["spec"]["endpoints"][0]["relabelings"][0]["replacement"],
        "infobip-billing-exporter",
        "the job name the alert rules expect"
    );

    // The PrometheusRule: exactly the groups of alerts/*.yml, runbook URLs prefixed.
    let values: Value = serde_norway::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join(&values_file)).unwrap(),
    )
    .unwrap();
    let base = values["prometheusRule"]["runbookBaseUrl"]
        .as_str()
        .unwrap()
        .trim_end_matches('/');
    let mut want = Vec::new();
    for text in files(&Path::new(ROOT).join("alerts"), "yml").values() {
        let text = text.replace(
            "runbook_url: docs/runbooks.md",
            &format!("runbook_url: {base}/docs/runbooks.md"),
        );
        let rules: Value = serde_norway::from_str(&text).unwrap();
        want.extend(rules["groups"].as_array().unwrap().iter().cloned());
    }
    let rule = find(&docs, "PrometheusRule", "").expect("a PrometheusRule");
    let have = rule["spec"]["groups"].as_array().unwrap();
    assert_eq!(
        have, &want,
        "PrometheusRule groups differ from alerts/*.yml"
    );
    println!(
        "PrometheusRule: {} groups, {} rules, as in alerts/*.yml",
        have.len(),
        have.iter()
            .map(|g| g["rules"].as_array().unwrap().len())
            .sum::<usize>()
    );

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
