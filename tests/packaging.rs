//! Packaging: the systemd unit verifies, the example config is valid, completions and the man
//! page come out of the clap definitions, and the Dockerfile keeps its promises.

mod common;

use std::path::Path;
use std::process::Command;

use common::BIN;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
#[ignore = "needs systemd-analyze (apt-get install systemd); .ci/run installs it"]
fn systemd_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    // verify insists the ExecStart binary exists: point it at the one cargo built, and give it
    // our own man page so the Documentation= line is checked too.
    let unit = std::fs::read_to_string(repo("packaging/infobip-billing-exporter.service"))
        .unwrap()
        .replace("/usr/bin/infobip-billing-exporter", BIN);
    let path = dir.path().join("infobip-billing-exporter.service");
    std::fs::write(&path, unit).unwrap();
    let man1 = dir.path().join("man").join("man1");
    std::fs::create_dir_all(&man1).unwrap();
    let status = Command::new(BIN)
        .args(["man", "--out-dir"])
        .arg(&man1)
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", dir.path().join("man"))
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .expect("systemd-analyze on PATH");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify:\n{printed}");
    assert!(printed.trim().is_empty(), "verify warned:\n{printed}");
}

#[test]
fn systemd_unit_is_hardened() {
    let unit = std::fs::read_to_string(repo("packaging/infobip-billing-exporter.service")).unwrap();
    for line in [
        "DynamicUser=yes",
        "StateDirectory=infobip-billing-exporter",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "LoadCredential=infobip-api-key:",
        "ExecStart=/usr/bin/infobip-billing-exporter run --config",
        // Above both listeners' connection bounds together.
        "LimitNOFILE=65536",
    ] {
        assert!(unit.contains(line), "missing {line:?}");
    }
}

#[test]
fn example_config_is_valid_and_reads_the_systemd_credential() {
    let config = repo("packaging/config.example.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    let key_path = "/run/credentials/infobip-billing-exporter.service/infobip-api-key";
    assert!(text.contains(key_path));
    // The credential does not exist here: point the key at a temporary file instead.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "k").unwrap();
    let copy = dir.path().join("config.yaml");
    std::fs::write(&copy, text.replace(key_path, key.to_str().unwrap())).unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--offline", "--config"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn completions_and_man_page_come_from_the_cli() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["backfill", "final-only", "check-config"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = Command::new(BIN).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("infobip\\-billing\\-exporter"));
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(BIN)
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    for page in [
        "infobip-billing-exporter.1",
        "infobip-billing-exporter-query.1",
        "infobip-billing-exporter-backfill.1",
    ] {
        assert!(dir.path().join(page).is_file(), "{page}");
    }
}

#[test]
fn dockerfile_is_multi_stage_distroless_and_non_root() {
    let text = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[1].contains("distroless"), "{}", froms[1]);
    assert!(text.contains("--locked"));
    let user = text
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    assert!(text.contains("ghcr.io/infobip-billing-exporter/infobip-billing-exporter"));
    let ignore = std::fs::read_to_string(repo(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "target/"));
    // benches/ is declared in Cargo.toml: the build context must keep it.
    assert!(!ignore.lines().any(|l| l.starts_with("benches")));
}
