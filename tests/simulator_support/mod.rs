//! Shared helpers of the `simulator_*` tests: a simulator on `127.0.0.1:0` with a manual clock,
//! a callback sink that hands every POST to the test through a channel, and JSON Schema checks
//! (the `jsonschema` crate) against the OpenAPI file's component schemas. Every answer
//! [`post_raw`] gets and every JSON callback [`Sink::next`] gets is checked on the way in.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use infobip_billing_exporter::billing::calendar::ManualClock;
use infobip_billing_exporter::infobip::model::{BillingUsageResult, Cell};
use infobip_billing_exporter::simulator::{Simulator, SimulatorOptions, SimulatorStats};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
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
    /// The n-th POST gets the n-th status; the last one repeats.
    script: Arc<[u16]>,
    seen: Arc<AtomicUsize>,
}

async fn receive(
    State(state): State<SinkState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let n = state.seen.fetch_add(1, Ordering::Relaxed);
    let status = state.script[n.min(state.script.len() - 1)];
    let _ = state.tx.send(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

/// A callback receiver answering `status` to every POST.
pub async fn sink(status: u16) -> Sink {
    sink_answering(&[status]).await
}

/// A callback receiver answering the statuses in turn, the last one from then on.
pub async fn sink_answering(script: &[u16]) -> Sink {
    assert!(!script.is_empty());
    let (tx, rx) = mpsc::unbounded_channel();
    let state = SinkState {
        tx,
        script: script.into(),
        seen: Arc::new(AtomicUsize::new(0)),
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
    /// The next callback; a JSON one must be a valid `BillingUsageResult` (a malformed-callback
    /// fault's body is not JSON and is left to the test).
    pub async fn next(&mut self) -> Received {
        let received = tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a callback within the timeout")
            .expect("sink open");
        check_callback(&received);
        received
    }

    /// What arrived so far, without waiting, each checked as [`Self::next`] does.
    pub fn pending(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(r) = self.rx.try_recv() {
            check_callback(&r);
            out.push(r);
        }
        out
    }
}

fn check_callback(received: &Received) {
    if let Ok(value) = serde_json::from_slice::<Value>(&received.body) {
        assert_valid(&value, "BillingUsageResult");
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

/// POSTs a raw body to the query endpoint with `Authorization: <auth>` when given, and checks
/// the answer against the schema the spec gives its status (a status the spec does not list
/// fails the test).
pub async fn post_raw(base: &str, auth: Option<&str>, body: impl Into<reqwest::Body>) -> Answer {
    let mut req = http()
        .post(format!("{base}/billing/1/usage/query"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    let answer = answer(req).await;
    assert_answer_valid(answer.status, &answer.body);
    answer
}

/// GETs `path` from the simulator, with `Authorization: <auth>` when given; no schema check,
/// since the only GET endpoint (the status endpoint) is not Infobip's.
pub async fn get(base: &str, path: &str, auth: Option<&str>) -> Answer {
    let mut req = http().get(format!("{base}{path}"));
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    answer(req).await
}

/// Sends `req` and reads the answer; a body that is not JSON reads as `null`.
async fn answer(req: reqwest::RequestBuilder) -> Answer {
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
/// The callback body a simulator with `opts`, pinned at `now`, delivers for the query `body`
/// builds around a callback URL.
pub async fn delivered_for(
    opts: SimulatorOptions,
    now: OffsetDateTime,
    body: impl FnOnce(&str) -> Value,
) -> Value {
    let run = start(opts, now).await;
    let mut sink = sink(200).await;
    let body = body(&sink.url);
    let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
    received.json()
}

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

const SPEC_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/simulator_support/billing-usage-api.openapi.json"
);

/// The OpenAPI document as the tests use it: the file as published, with the one known error
/// patched (see [`patch_row_cells`]).
pub fn openapi() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut spec: Value =
            serde_json::from_str(&std::fs::read_to_string(SPEC_PATH).unwrap()).unwrap();
        patch_row_cells(&mut spec);
        spec
    })
}

/// Reference §14 A16: the spec types each row cell as `object`, but real cells are JSON
/// scalars (strings, numbers, and `"N/A"` even in NUMBER columns). Taken literally, every row
/// of every real result would fail, so this one node accepts any scalar instead.
fn patch_row_cells(spec: &mut Value) {
    let (_, response) = component_mut(spec, "AggregateDataResponse");
    let cell = response
        .pointer_mut("/properties/rows/items/items")
        .expect("the rows schema has a cell node");
    assert_eq!(cell["type"], "object", "the A16 error is still in the spec");
    cell["type"] = json!(["string", "number", "boolean", "null"]);
}

fn component_mut<'a>(spec: &'a mut Value, title: &str) -> (String, &'a mut Value) {
    let (name, schema) = spec["components"]["schemas"]
        .as_object_mut()
        .unwrap()
        .iter_mut()
        .find(|(name, _)| is_component(name, title))
        .unwrap_or_else(|| panic!("no schema {title}"));
    (name.clone(), schema)
}

/// Component names carry a hash prefix: `99c5….BillingUsageResult`; errors have none.
fn is_component(name: &str, title: &str) -> bool {
    name == title || name.strip_suffix(title).is_some_and(|p| p.ends_with('.'))
}

/// Follows `{"$ref": "#/…"}` inside the document.
pub fn deref(value: &Value) -> &Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => deref(
            openapi()
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {r}")),
        ),
        None => value,
    }
}

/// The component the spec names as the JSON body of the query operation's `status` answer.
pub fn response_component(status: u16) -> String {
    let responses = &openapi()["paths"]["/billing/1/usage/query"]["post"]["responses"];
    let response = responses
        .get(status.to_string())
        .unwrap_or_else(|| panic!("the spec defines no {status} answer to the query"));
    let schema_ref = deref(response)["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap();
    schema_ref
        .trim_start_matches("#/components/schemas/")
        .to_owned()
}

/// Infobip's own examples write `2026-03-01T00:00:00.000+0000` (no colon in the offset), which
/// strict RFC 3339 refuses; reference A6 says to read both, so `date-time` accepts both.
fn is_date_time(text: &str) -> bool {
    let infobip = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory][offset_minute]"
    );
    OffsetDateTime::parse(text, &Rfc3339).is_ok() || OffsetDateTime::parse(text, infobip).is_ok()
}

/// A JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) for one component. The whole
/// document is the root resource, so the components' `#/components/schemas/…` references
/// resolve; the root's only schema keyword is the `$ref` to the component, the OpenAPI keys
/// beside it are unknown keywords and ignored.
fn validator(title: &str) -> Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    cache
        .entry(title.to_owned())
        .or_insert_with(|| {
            let mut root = openapi().clone();
            let (name, _) = component_mut(&mut root, title);
            root["$ref"] = json!(format!("#/components/schemas/{name}"));
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .with_format("date-time", is_date_time)
                .build(&root)
                .unwrap_or_else(|e| panic!("schema {title} does not compile: {e}"));
            Arc::new(validator)
        })
        .clone()
}

/// Every problem of `value` against the component schema `title` (its name, or the part after
/// the hash prefix), as `path: message`.
pub fn check(value: &Value, title: &str) -> Vec<String> {
    validator(title)
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

pub fn assert_valid(value: &Value, title: &str) {
    let problems = check(value, title);
    assert!(problems.is_empty(), "{title}: {problems:#?}\n{value}");
}

/// An answer of the query endpoint against the schema the spec gives its status.
pub fn assert_answer_valid(status: u16, body: &Value) {
    assert_valid(body, &response_component(status));
}
