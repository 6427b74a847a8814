//! The log lines as an operator's pipeline reads them: `--log.format json` gives one JSON object
//! per stderr line for a whole daemon run and for a failing command, logfmt lines parse as
//! logfmt, the events' fields (target, month, request_id) are fields, and `--log.level warn`
//! hides info lines.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{BIN, Proc, WAIT};

/// One logfmt line as key → value; `Err` says what is not logfmt.
fn logfmt(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("no '=' in {rest:?}"))?;
        if key.is_empty() || key.contains([' ', '"']) {
            return Err(format!("bad key {key:?}"));
        }
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            // A quoted value ends at the first quote not escaped by a backslash.
            let mut escaped = false;
            let end = quoted
                .char_indices()
                .find(|&(_, c)| {
                    let closes = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    closes
                })
                .map(|(i, _)| i + 2)
                .ok_or_else(|| format!("unterminated quote in {after:?}"))?;
            let value: String = serde_json::from_str(&after[..end])
                .map_err(|e| format!("bad quoted value {:?}: {e}", &after[..end]))?;
            (value, &after[end..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            let value = &after[..end];
            if value.is_empty() || value.contains(['"', '=']) {
                return Err(format!("bad bare value {value:?}"));
            }
            (value.to_owned(), &after[end..])
        };
        pairs.push((key.to_owned(), value));
        rest = match after.strip_prefix(' ') {
            Some(next) if !next.is_empty() => next,
            Some(_) => return Err("trailing space".into()),
            None if after.is_empty() => after,
            None => return Err(format!("no space before {after:?}")),
        };
    }
    Ok(pairs)
}

/// Every line from `rx` until `until` returns true for one, within `WAIT`.
fn lines_until(rx: &mpsc::Receiver<String>, mut until: impl FnMut(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("stopped waiting after {lines:#?}: {e}"));
        let done = until(&line);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

/// Interrupts `proc` and returns the rest of its stderr once it exited cleanly.
fn stop(mut proc: Proc) -> Vec<String> {
    let pid = proc.child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while proc.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "did not stop within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(proc.child.wait().unwrap().success());
    let mut rest = Vec::new();
    while let Ok(line) = proc.stderr.recv_timeout(WAIT) {
        rest.push(line);
    }
    rest
}

fn simulator(extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["simulator", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let sim = Proc::spawn(&args);
    let line = Proc::wait_line(&sim.stdout, "listening on");
    let url = line.split_whitespace().last().unwrap().to_owned();
    (sim, url)
}

/// A daemon run against the simulator with `flags`: start, three queries and their callbacks,
/// shutdown. Returns every stderr line.
fn daemon_run(flags: &[&str], rust_log: &str) -> Vec<String> {
    let (_sim, sim_url) = simulator(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = common::write_run_config(dir.path(), &sim_url);
    let mut args = vec!["run", "--config", config.to_str().unwrap()];
    args.extend_from_slice(flags);
    let run = Proc::spawn_with_env(&args, &[("RUST_LOG", OsStr::new(rust_log))]);
    let mut applied = 0;
    let mut lines = lines_until(&run.stderr, |line| {
        applied += usize::from(line.contains("result applied"));
        applied == 3
    });
    lines.extend(stop(run));
    lines
}

#[test]
fn json_logs_of_a_daemon_run_are_one_object_per_line_with_fields() {
    let lines = daemon_run(&["--log.format", "json"], "info");
    let events: Vec<BTreeMap<String, serde_json::Value>> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let with = |msg: &str| -> Vec<&BTreeMap<String, serde_json::Value>> {
        events.iter().filter(|e| e["msg"] == msg).collect()
    };
    for event in &events {
        for key in ["ts", "level", "msg"] {
            assert!(event[key].is_string(), "{key} in {event:?}");
        }
    }
    assert_eq!(with("exporter started").len(), 1, "{lines:#?}");
    assert_eq!(with("shutting down").len(), 1, "{lines:#?}");
    for msg in ["query accepted", "result applied"] {
        let found = with(msg);
        assert_eq!(found.len(), 3, "{msg}: {lines:#?}");
        for event in found {
            assert_eq!(event["target"], "demo", "{event:?}");
            assert!(event["month"].as_str().unwrap().len() == 7, "{event:?}");
            assert!(
                !event["request_id"].as_str().unwrap().is_empty(),
                "{event:?}"
            );
            assert!(
                !event["msg"].as_str().unwrap().contains("demo"),
                "fields stay out of msg"
            );
        }
    }
    assert_eq!(
        with("result applied")[0]["days"].as_u64().map(|d| d > 0),
        Some(true)
    );
}

#[test]
fn logfmt_logs_of_a_daemon_run_parse_as_logfmt() {
    let lines = daemon_run(&[], "info");
    let events: Vec<Vec<(String, String)>> = lines
        .iter()
        .map(|l| logfmt(l).unwrap_or_else(|e| panic!("not logfmt ({e}): {l}")))
        .collect();
    for event in &events {
        let keys: Vec<&str> = event.iter().take(3).map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["ts", "level", "msg"], "{event:?}");
    }
    let applied: Vec<BTreeMap<&str, &str>> = events
        .iter()
        .map(|e| e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
        .filter(|e: &BTreeMap<&str, &str>| e["msg"] == "result applied")
        .collect();
    assert_eq!(applied.len(), 3, "{lines:#?}");
    for event in applied {
        assert_eq!(event["level"], "info");
        assert_eq!(event["target"], "demo");
        assert!(event.contains_key("month") && event.contains_key("request_id"));
    }
}

/// At warn, the info lines (start, queries, shutdown) are gone; the warnings stay.
#[test]
fn log_level_warn_hides_info_lines() {
    let (_sim, sim_url) = simulator(&["--server-error-ratio", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = common::write_run_config(dir.path(), &sim_url);
    let run = Proc::spawn_with_env(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--log.level",
            "warn",
        ],
        &[("RUST_LOG", OsStr::new(""))],
    );
    let mut lines = lines_until(&run.stderr, |line| line.contains("query failed"));
    lines.extend(stop(run));
    for line in &lines {
        let event: BTreeMap<String, String> = logfmt(line).unwrap().into_iter().collect();
        assert!(
            ["warn", "error"].contains(&event["level"].as_str()),
            "{line}"
        );
    }
    let failed = lines.iter().find(|l| l.contains("query failed")).unwrap();
    assert!(failed.contains(" target=demo month="), "{failed}");
}

/// A failing command ends with one JSON line too, the cause included once.
#[test]
fn a_failing_command_ends_with_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    for args in [
        vec![
            "run",
            "--log.format",
            "json",
            "--config",
            missing.to_str().unwrap(),
        ],
        vec![
            "--log.format",
            "json",
            "query",
            "--base-url",
            "http://example.com",
        ],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .env("INFOBIP_API_KEY", "k")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!stderr.is_empty(), "{args:?}");
        for line in stderr.lines() {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {line}"));
            assert_eq!(event["level"], "error", "{line}");
        }
        let last: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
        let msg = last["msg"].as_str().unwrap();
        assert!(
            msg.contains("cannot read config file") || msg.contains("in clear text"),
            "{msg}"
        );
        if msg.contains("cannot read config file") {
            assert_eq!(msg.matches("No such file or directory").count(), 1, "{msg}");
        }
    }
}

#[test]
fn the_logfmt_parser_refuses_what_is_not_logfmt() {
    assert!(logfmt("ts=1 level=info msg=\"a \\\"b\\\"\" k=v").is_ok());
    for bad in ["error: something", "k=\"open", "k=v  x=y", "k=v x"] {
        assert!(logfmt(bad).is_err(), "{bad}");
    }
}

/// README.md's "Logs" example, run as shown: the command, its JSON line (but for the time) and
/// its exit code.
#[test]
fn the_readme_logs_example_runs_as_shown() {
    let example = common::readme_example("## Logs", "console");
    let mut lines = example.lines();
    let command = lines.next().unwrap().strip_prefix("$ ").unwrap();
    let expected_line = lines.next().unwrap();
    assert_eq!(lines.next(), Some("$ echo $?"));
    let expected_code: i32 = lines.next().unwrap().parse().unwrap();
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("infobip-billing-exporter"));
    let out = Command::new(BIN)
        .args(words)
        .env_remove("RUST_LOG")
        .env_remove("INFOBIP_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(expected_code));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let mut got: serde_json::Value = serde_json::from_str(stderr.trim_end()).unwrap();
    let mut want: serde_json::Value = serde_json::from_str(expected_line).unwrap();
    assert!(got["ts"].as_str().unwrap().ends_with('Z'), "{got}");
    got["ts"] = serde_json::Value::Null;
    want["ts"] = serde_json::Value::Null;
    assert_eq!(got, want);
}
