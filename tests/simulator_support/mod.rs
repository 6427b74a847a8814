//! Shared helpers of the `simulator_*` tests: a simulator on `127.0.0.1:0` with a manual clock,
//! a callback sink that hands every POST to the test through a channel, and a small validator
//! for the OpenAPI schemas the contract tests check against.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use infobip_billing_exporter::calendar::ManualClock;
use infobip_billing_exporter::infobip::model::{BillingUsageResult, Cell, parse_instant};
use infobip_billing_exporter::simulator::{Simulator, SimulatorOptions, SimulatorStats};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Long enough for a debug build under load; a hang fails instead of blocking CI.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Running {
    pub sim: Simulator,
    pub base: String,
    pub clock: Arc<ManualClock>,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start(opts: SimulatorOptions, now: OffsetDateTime) -> Running {
    let clock = Arc::new(ManualClock::new(now));
    let sim = Simulator::new(opts, clock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(sim.clone().serve(listener, shutdown.clone()));
    Running {
        sim,
        base,
        clock,
        shutdown,
    }
}

/// Options for fast tests: no callback delay.
pub fn fast() -> SimulatorOptions {
    SimulatorOptions {
        callback_delay: Duration::ZERO,
        ..SimulatorOptions::default()
    }
}

pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("callback body is JSON")
    }

    pub fn result(&self) -> BillingUsageResult {
        serde_json::from_slice(&self.body).expect("callback body is a BillingUsageResult")
    }
}

/// A callback receiver answering `status` to every POST.
pub struct Sink {
    pub url: String,
    rx: mpsc::UnboundedReceiver<Received>,
    shutdown: CancellationToken,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Clone)]
struct SinkState {
    tx: mpsc::UnboundedSender<Received>,
    status: Arc<AtomicU16>,
}

async fn receive(
    State(state): State<SinkState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let _ = state.tx.send(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    StatusCode::from_u16(state.status.load(Ordering::Relaxed)).unwrap_or(StatusCode::OK)
}

pub async fn sink(status: u16) -> Sink {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = SinkState {
        tx,
        status: Arc::new(AtomicU16::new(status)),
    };
    let app = axum::Router::new().fallback(receive).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/hooks/billing/secret-token",
        listener.local_addr().unwrap()
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    Sink { url, rx, shutdown }
}

impl Sink {
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a callback within the timeout")
            .expect("sink open")
    }

    /// What arrived so far, without waiting.
    pub fn pending(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(r) = self.rx.try_recv() {
            out.push(r);
        }
        out
    }
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| reqwest::Client::builder().no_proxy().build().unwrap())
}

/// POSTs a raw body to the query endpoint with `Authorization: <auth>` when given.
pub async fn post_raw(base: &str, auth: Option<&str>, body: impl Into<reqwest::Body>) -> Answer {
    let mut req = http()
        .post(format!("{base}/billing/1/usage/query"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

pub async fn post(base: &str, body: &Value) -> Answer {
    post_raw(base, Some("App demo-key"), body.to_string()).await
}

pub fn query(callback: &str, since: &str, until: &str, aggregate_by: &[&str]) -> Value {
    json!({
        "callbackUrl": callback,
        "request": {
            "filterBy": { "dateInterval": { "sentSince": since, "sentUntil": until } },
            "aggregateBy": aggregate_by,
        }
    })
}

/// Submits, expects 201, and returns the callback.
pub async fn submit_and_receive(
    run: &Running,
    sink: &mut Sink,
    body: &Value,
) -> (String, Received) {
    let answer = post(&run.base, body).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id = answer.body["requestId"].as_str().unwrap().to_owned();
    let received = sink.next().await;
    (id, received)
}

pub async fn wait_stats(sim: &Simulator, done: impl Fn(&SimulatorStats) -> bool) -> SimulatorStats {
    let mut rx = sim.watch_stats();
    let stats = tokio::time::timeout(WAIT, rx.wait_for(|s| done(s)))
        .await
        .expect("stats reached the expected state in time")
        .expect("simulator alive");
    stats.clone()
}

/// The index of a column by name.
pub fn column(result: &BillingUsageResult, name: &str) -> usize {
    let response = result.response.as_ref().expect("a response");
    response
        .columns
        .iter()
        .position(|c| c.column_name == name)
        .unwrap_or_else(|| panic!("column {name} missing"))
}

pub fn text(cell: &Cell) -> &str {
    match cell {
        Cell::Text(t) => t,
        Cell::NotApplicable => "N/A",
        Cell::Number(_) => panic!("expected text, got {cell:?}"),
    }
}

pub fn number(cell: &Cell) -> Decimal {
    match cell {
        Cell::Number(d) => *d,
        other => panic!("expected a number, got {other:?}"),
    }
}

/// Sum of TOTAL_PER_UNIT per currency.
pub fn totals(result: &BillingUsageResult) -> HashMap<String, Decimal> {
    let (total, currency) = (column(result, "TOTAL_PER_UNIT"), column(result, "CURRENCY"));
    let mut out = HashMap::new();
    for row in &result.response.as_ref().unwrap().rows {
        *out.entry(text(&row[currency]).to_owned()).or_default() += number(&row[total]);
    }
    out
}

// ---- OpenAPI schema checks -------------------------------------------------------------------

pub fn openapi() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/simulator_support/billing-usage-api.openapi.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

/// The component schema whose name ends with `.{title}` (or equals it).
pub fn schema(title: &str) -> Value {
    let schemas = openapi()["components"]["schemas"].as_object().unwrap();
    let (_, schema) = schemas
        .iter()
        .find(|(name, _)| *name == title || name.ends_with(&format!(".{title}")))
        .unwrap_or_else(|| panic!("no schema {title}"));
    schema.clone()
}

/// Problems of `value` against `schema` (the subset of JSON Schema the spec uses: `$ref`,
/// `allOf`, `type`, `properties`, `required`, `items`, `enum`, `uniqueItems`, `format`).
/// One deliberate exception, reference A16: a row cell's schema says `object` but real cells are
/// scalars, so an `object` schema without properties accepts any scalar.
pub fn check(value: &Value, schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    walk(value, schema, "$", &mut problems);
    problems
}

pub fn assert_valid(value: &Value, title: &str) {
    let problems = check(value, &schema(title));
    assert!(problems.is_empty(), "{title}: {problems:#?}\n{value}");
}

fn resolve(schema: &Value) -> &Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(&openapi()["components"]["schemas"][name])
        }
        None => schema,
    }
}

fn walk(value: &Value, schema: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(schema);
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            walk(value, s, at, problems);
        }
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let scalar_cell = t == "object"
            && schema.get("properties").is_none()
            && !value.is_object()
            && !value.is_array();
        let ok = match t {
            "object" => value.is_object() || scalar_cell,
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            problems.push(format!("{at}: expected {t}, got {value}"));
            return;
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let items: Vec<&Value> = match value.as_array() {
            Some(a) => a.iter().collect(),
            None => vec![value],
        };
        for item in items {
            if !values.contains(item) {
                problems.push(format!("{at}: {item} not in enum"));
            }
        }
    }
    if schema.get("format").and_then(Value::as_str) == Some("date-time") {
        if let Some(s) = value.as_str() {
            if parse_instant(s).is_none() {
                problems.push(format!("{at}: {s:?} is not a date-time"));
            }
        }
    }
    if let Some(obj) = value.as_object() {
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = key.as_str().unwrap();
            if !obj.contains_key(key) {
                problems.push(format!("{at}: missing required {key}"));
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (key, v) in obj {
                match props.get(key) {
                    Some(s) => walk(v, s, &format!("{at}.{key}"), problems),
                    None => problems.push(format!("{at}: unexpected property {key}")),
                }
            }
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                walk(item, item_schema, &format!("{at}[{i}]"), problems);
            }
        }
        if schema.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    problems.push(format!("{at}[{i}]: duplicate item"));
                }
            }
        }
    }
}
