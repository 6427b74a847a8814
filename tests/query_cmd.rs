//! `query` as a user runs it: the real binary against the in-repo simulator on loopback, in each
//! output format, with the per-currency totals checked against the simulator's own figures
//! (FOCUS and XLSX in tests/focus_export.rs and tests/xlsx_export.rs).

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use infobip_billing_exporter::billing::calendar::{
    Clock, DayRange, YearMonth, retention_months, retention_start,
};
use infobip_billing_exporter::infobip::model::{
    BillingUsageAggregate, Cell, QueryBillingUsageApiRequest,
};
use rust_decimal::Decimal;

use common::{BIN, LiveSim, start_live_sim};

/// Runs the binary with `INFOBIP_API_KEY=key`; `--timeout` in `args` bounds the wait.
async fn run(args: Vec<String>, key: &str) -> Output {
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&args)
            .env("INFOBIP_API_KEY", key)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run the binary")
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The simulator's own per-currency totals and row count for this month to date by day and
/// category, the query the tests run.
fn expected(sim: &LiveSim) -> (BTreeMap<String, Decimal>, usize) {
    let today = sim.clock.today();
    let month_to_date = DayRange {
        since: YearMonth::of(today).first_day(),
        until: today.next_day().unwrap(),
    };
    let request = QueryBillingUsageApiRequest::unfiltered(
        month_to_date,
        vec![
            BillingUsageAggregate::DAY,
            BillingUsageAggregate::CATEGORY_CODE,
        ],
    );
    let result = sim
        .simulator
        .result_for(&request, "EXPECTED", sim.clock.now());
    let response = result.response.expect("simulator answers SUCCESS");
    let col = |name: &str| {
        response
            .columns
            .iter()
            .position(|c| c.column_name == name)
            .unwrap()
    };
    let (total, currency) = (col("TOTAL_PER_UNIT"), col("CURRENCY"));
    let mut totals = BTreeMap::new();
    for row in &response.rows {
        if let (Cell::Number(amount), Cell::Text(code)) = (&row[total], &row[currency]) {
            *totals.entry(code.clone()).or_default() += *amount;
        }
    }
    assert!(!totals.is_empty(), "the simulator has costs this month");
    (totals, response.rows.len())
}

fn query_args(sim: &LiveSim, format: &str) -> Vec<String> {
    let today = sim.clock.today();
    args(&[
        "query",
        "--base-url",
        &sim.url,
        "--from",
        &YearMonth::of(today).first_day().to_string(),
        "--until",
        &today.to_string(),
        "--by",
        "DAY",
        "--by",
        "category_code",
        "--timeout",
        "20s",
        "--format",
        format,
    ])
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn dec(text: &str) -> Decimal {
    infobip_billing_exporter::infobip::model::parse_decimal(text)
        .unwrap_or_else(|| panic!("not a decimal: {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_output_totals_match_the_simulator() {
    let sim = start_live_sim().await;
    let (want, rows) = expected(&sim);
    let text = stdout_of(&run(query_args(&sim, "table"), "demo-key").await);
    let lines: Vec<&str> = text.lines().collect();
    let header = lines[0];
    for column in [
        "DAY",
        "ACCOUNT_NAME",
        "CATEGORY_CODE",
        "TOTAL_PER_UNIT",
        "CURRENCY",
    ] {
        assert!(header.contains(column), "{header}");
    }
    // Header, rows, a blank line, then one TOTAL line per currency.
    assert_eq!(lines[rows + 1], "", "{text}");
    assert_eq!(lines.len(), rows + 2 + want.len(), "{text}");
    let got = totals_lines(&text);
    assert_eq!(got, want);
    // Aligned: every row is as wide as the header's columns place it, so CURRENCY lines up.
    let at = header.find("CURRENCY").unwrap();
    for row in &lines[1..=rows] {
        assert_eq!(row.len(), at + 3, "{row:?}");
    }
}

/// Per-currency sums of a CSV's TOTAL_PER_UNIT column, read as a spreadsheet or pandas would:
/// every record as wide as the header, no totals mixed in.
fn csv_sums(text: &str) -> (BTreeMap<String, Decimal>, usize) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let pos = |name: &str| header.iter().position(|c| c == name).unwrap();
    let (total, currency) = (pos("TOTAL_PER_UNIT"), pos("CURRENCY"));
    let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.expect("a well-formed record, as wide as the header");
        assert_ne!(&record[0], "TOTAL", "no totals among the data");
        rows += 1;
        *sums.entry(record[currency].to_owned()).or_default() += dec(&record[total]);
    }
    (sums, rows)
}

/// `TOTAL EUR 12.15` lines, as the table and `--totals` print them.
fn totals_lines(text: &str) -> BTreeMap<String, Decimal> {
    text.lines()
        .filter(|l| l.starts_with("TOTAL "))
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(parts.len(), 3, "{l}");
            (parts[1].to_owned(), dec(parts[2]))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_has_data_rows_only_and_sums_to_the_simulator() {
    let sim = start_live_sim().await;
    let (want, rows) = expected(&sim);
    let mut a = query_args(&sim, "csv");
    a.push("--totals".into());
    let out = run(a, "demo-key").await;
    let text = stdout_of(&out);
    assert!(
        text.ends_with("\r\n") && !text.contains("\n\n"),
        "RFC 4180 line ends"
    );
    let (sums, count) = csv_sums(&text);
    assert_eq!(count, rows, "one record per row, the header apart");
    assert_eq!(sums, want, "the column sums to the totals");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(totals_lines(&stderr), want, "--totals on stderr: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_from_a_config_target_matches_the_simulator() {
    let sim = start_live_sim().await;
    let (want, rows) = expected(&sim);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "targets:\n  - name: other\n    base_url: https://other.api.infobip.com\n    api_key_env: UNSET_KEY\n\
             \x20 - name: sim\n    base_url: {}\n    api_key_env: INFOBIP_API_KEY\n\
             callback:\n  listen: 127.0.0.1:9478\n  public_url: https://x.example.com\nstate_dir: {}\n",
            sim.url,
            dir.path().display()
        ),
    )
    .unwrap();
    let mut a = query_args(&sim, "json");
    a.splice(
        1..3,
        args(&["--config", config.to_str().unwrap(), "--target", "sim"]),
    );
    let text = stdout_of(&run(a, "demo-key").await);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), rows);
    let got: BTreeMap<String, Decimal> = v["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["currency"].as_str().unwrap().to_owned(),
                dec(&t["total"].to_string()),
            )
        })
        .collect();
    assert_eq!(got, want);
    // The rows add up to the totals, per currency.
    let mut summed: BTreeMap<String, Decimal> = BTreeMap::new();
    for row in v["rows"].as_array().unwrap() {
        *summed
            .entry(row["CURRENCY"].as_str().unwrap().to_owned())
            .or_default() += dec(&row["TOTAL_PER_UNIT"].to_string());
    }
    assert_eq!(summed, want);
    let today = sim.clock.today();
    assert_eq!(v["period"]["until"], today.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_a_clear_error() {
    let sim = start_live_sim().await;
    let out = run(query_args(&sim, "table"), "wrong-key").await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused the API key"), "{stderr}");
    assert!(
        !stderr.contains("wrong-key"),
        "the key is never printed: {stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_are_refused_before_anything_is_sent() {
    let sim = start_live_sim().await;
    let too_old = (YearMonth::of(sim.clock.today())
        .previous()
        .previous()
        .first_day()
        - time::Duration::days(1))
    .to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            args(&["query", "--base-url", &sim.url, "--from", &too_old]),
            "Infobip keeps only the current month and the two before",
        ),
        (
            args(&["query", "--base-url", &sim.url, "--category", "FAX"]),
            "invalid value 'FAX'",
        ),
        (
            args(&["query", "--base-url", &sim.url, "--from", "2026-02-30"]),
            "expected a date as yyyy-MM-dd",
        ),
        (
            args(&["query", "--base-url", "ftp://x", "--format", "csv"]),
            "--base-url \"ftp://x\" has the unsupported scheme \"ftp\"",
        ),
        (
            args(&[
                "query",
                "--base-url",
                &sim.url,
                "--public-url",
                "http://callback.example.com",
            ]),
            "--public-url \"http://callback.example.com\" uses http://, which would send the callback tokens in its path in clear text",
        ),
        (args(&["query"]), "give either --config FILE or --base-url"),
        (
            args(&["query", "--base-url", &sim.url, "--format", "xlsx"]),
            "the following required arguments were not provided:\n  --out <FILE>",
        ),
        (
            args(&[
                "query",
                "--base-url",
                &sim.url,
                "--format",
                "focus",
                "--by",
                "MONTH",
            ]),
            "--format focus has one charge per day: drop --by MONTH",
        ),
    ];
    for (a, message) in cases {
        let out = run(a.clone(), "demo-key").await;
        assert_ne!(out.status.code(), Some(0), "{a:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{a:?}: {stderr}");
    }
    let out = run(args(&["query", "--base-url", &sim.url]), "").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("INFOBIP_API_KEY"));
    let stats = sim.simulator.stats();
    assert_eq!(stats.queries_accepted, 0);
    assert!(stats.rejected.is_empty(), "{:?}", stats.rejected);
}

/// `--base-url http://example.com` would send the API key in clear text: refused before
/// anything is sent. A loopback listener stands in as the proxy for every scheme, so a request
/// that did go out would land there (and nowhere beyond this machine).
#[test]
fn cleartext_base_url_is_refused_before_anything_is_sent() {
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let mut cmd = Command::new(BIN);
    cmd.args([
        "query",
        "--base-url",
        "http://example.com",
        "--timeout",
        "5s",
    ])
    .env("INFOBIP_API_KEY", "k-not-for-the-wire")
    .env("RUST_LOG", "warn");
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
    ] {
        cmd.env(var, &proxy_url);
    }
    cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: --base-url \"http://example.com\" uses http://, which would send the API key in clear text; use https://, or http:// to a loopback host (127.0.0.1, ::1, localhost) such as a local proxy or the simulator"
    );
    assert!(!stderr.contains("k-not-for-the-wire"));
    proxy.set_nonblocking(true).unwrap();
    assert_eq!(
        proxy.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "nothing was sent"
    );
}

/// A network error names its cause once: reqwest's message does not repeat through the chain.
#[test]
fn a_network_error_names_its_cause_once() {
    let closed = common::free_port();
    let out = Command::new(BIN)
        .args(["query", "--base-url"])
        .arg(format!("http://127.0.0.1:{closed}"))
        .args(["--timeout", "5s"])
        .env("INFOBIP_API_KEY", "k")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().last().unwrap();
    assert!(
        line.starts_with("error: could not reach Infobip: "),
        "{line}"
    );
    for cause in ["error sending request for url", "Connection refused"] {
        assert_eq!(line.matches(cause).count(), 1, "{cause:?} once: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_only_gives_the_final_period_or_says_there_is_none() {
    let sim = start_live_sim().await;
    let today = sim.clock.today();
    let now = sim.clock.now();
    // This month is never final: no month from its 1st to today is.
    let out = run(
        args(&[
            "query",
            "--base-url",
            &sim.url,
            "--final-only",
            "--format",
            "json",
            "--timeout",
            "20s",
        ]),
        "demo-key",
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(v["period"], serde_json::Value::Null, "{v}");
    assert_eq!(v["rows"].as_array().unwrap().len(), 0);
    let first = YearMonth::of(today).first_day();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "no month from {first} to {today} is final yet: --final-only gives no rows"
        )),
        "{stderr}"
    );
    // From the start of retention: the period ends with the last final month.
    let since = retention_start(today);
    let first_provisional = retention_months(today)
        .into_iter()
        .find(|m| now < m.expected_final_at())
        .expect("this month at least");
    let last_final = first_provisional.first_day().previous_day().unwrap();
    let out = run(
        args(&[
            "query",
            "--base-url",
            &sim.url,
            "--from",
            &since.to_string(),
            "--final-only",
            "--format",
            "json",
            "--timeout",
            "20s",
        ]),
        "demo-key",
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(
        v["period"],
        serde_json::json!({"from": since.to_string(), "until": last_final.to_string()})
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "only {since} to {last_final} is final: --final-only leaves out the days after"
        )),
        "{stderr}"
    );
}

/// README.md's "CSV and JSON for scripts" example, run as shown against the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_csv_and_json_example_runs_as_shown() {
    let sim = start_live_sim().await;
    let (want, rows) = expected(&sim);
    let dir = tempfile::tempdir().unwrap();
    let commands = common::readme_commands("## CSV and JSON for scripts", &sim.url);
    assert_eq!(commands.len(), 2, "{commands:?}");
    for command in commands {
        let totals = command.contains(&"--totals".to_owned());
        let dir = dir.path().to_owned();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args(&command)
                .current_dir(dir)
                .env("INFOBIP_API_KEY", "demo-key")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        stdout_of(&out);
        if totals {
            assert_eq!(totals_lines(&String::from_utf8_lossy(&out.stderr)), want);
        }
    }
    let csv = std::fs::read_to_string(dir.path().join("usage.csv")).unwrap();
    assert_eq!(csv_sums(&csv), (want.clone(), rows));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("usage.json")).unwrap())
            .unwrap();
    let totals: BTreeMap<String, Decimal> = json["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["currency"].as_str().unwrap().to_owned(),
                dec(&t["total"].to_string()),
            )
        })
        .collect();
    assert_eq!(totals, want);
}
