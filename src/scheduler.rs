//! What to query when. Each target has its own loop: the current month every `interval`, the
//! previous months until a result says `volumeFinalized: true`, then never again. The pending
//! table maps each query's secret callback token to what was asked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::calendar::{DayRange, YearMonth, month_query_range, retention_months};
use crate::exporter::Shared;
use crate::infobip::client::{Client, ClientError};
use crate::infobip::model::{
    BillingUsageAggregate, BillingUsageDataFilter, BillingUsageQueryOptions,
    QueryBillingUsageApiRequest, QueryBillingUsageRequest,
};

/// Dimensions every query asks for: the labels of the cost metrics.
pub const AGGREGATE_BY: [BillingUsageAggregate; 4] = [
    BillingUsageAggregate::DAY,
    BillingUsageAggregate::ACCOUNT_NAME,
    BillingUsageAggregate::ACCOUNT_KEY,
    BillingUsageAggregate::CATEGORY_CODE,
];

/// How long a callback may take before the query is given up and sent again. Infobip documents
/// no deadline (reference §10); half an hour leaves room for slow aggregation.
pub const CALLBACK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How long a finished token still answers 200 to a duplicate delivery without re-applying it.
const DONE_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

const RETRY_FIRST: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryState {
    Sent,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingQuery {
    pub token: String,
    pub target: String,
    pub month: YearMonth,
    pub range: DayRange,
    /// `None` between registering the query and Infobip's `201` (a callback may beat it: A27).
    pub request_id: Option<String>,
    pub submitted_at: OffsetDateTime,
    pub state: QueryState,
}

/// Queries sent and not yet settled, plus recently settled ones for duplicate detection.
#[derive(Debug, Default)]
pub struct PendingTable {
    queries: Vec<PendingQuery>,
}

impl PendingTable {
    /// Registers a query before it is sent and returns its fresh 256-bit token.
    pub fn register(
        &mut self,
        target: &str,
        month: YearMonth,
        range: DayRange,
        now: OffsetDateTime,
    ) -> String {
        let bytes: [u8; 32] = rand::rng().random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.queries.push(PendingQuery {
            token: token.clone(),
            target: target.to_owned(),
            month,
            range,
            request_id: None,
            submitted_at: now,
            state: QueryState::Sent,
        });
        token
    }

    /// Restores the table saved before a restart.
    pub fn restore(queries: Vec<PendingQuery>) -> Self {
        Self { queries }
    }

    pub fn queries(&self) -> &[PendingQuery] {
        &self.queries
    }

    /// Looks a token up comparing every entry in constant time, so timing tells nothing about
    /// how much of a guessed token was right.
    pub fn find(&self, token: &str) -> Option<&PendingQuery> {
        let mut found = None;
        for q in &self.queries {
            if bool::from(q.token.as_bytes().ct_eq(token.as_bytes())) {
                found = Some(q);
            }
        }
        found
    }

    fn find_mut(&mut self, token: &str) -> Option<&mut PendingQuery> {
        self.queries.iter_mut().find(|q| q.token == token)
    }

    pub fn record_request_id(&mut self, token: &str, request_id: String) {
        if let Some(q) = self.find_mut(token) {
            q.request_id = Some(request_id);
        }
    }

    pub fn forget(&mut self, token: &str) {
        self.queries.retain(|q| q.token != token);
    }

    pub fn settle(&mut self, token: &str, state: QueryState) {
        if let Some(q) = self.find_mut(token) {
            q.state = state;
        }
    }

    pub fn in_flight(&self, target: &str, month: YearMonth) -> bool {
        self.queries
            .iter()
            .any(|q| q.state == QueryState::Sent && q.target == target && q.month == month)
    }

    /// When this target's oldest unanswered query times out.
    pub fn next_deadline(&self, target: &str, timeout: Duration) -> Option<OffsetDateTime> {
        self.queries
            .iter()
            .filter(|q| q.state == QueryState::Sent && q.target == target)
            .map(|q| q.submitted_at + timeout)
            .min()
    }

    /// Removes and returns this target's failed queries and those past `timeout`; drops
    /// settled entries older than the duplicate window.
    pub fn take_failed(
        &mut self,
        target: &str,
        now: OffsetDateTime,
        timeout: Duration,
    ) -> Vec<PendingQuery> {
        let mut failed = Vec::new();
        self.queries.retain(|q| {
            let age = now - q.submitted_at;
            let timed_out = q.state == QueryState::Sent && age >= timeout;
            if q.target == target && (q.state == QueryState::Failed || timed_out) {
                failed.push(q.clone());
                return false;
            }
            !(q.state == QueryState::Done && age >= DONE_RETENTION)
        });
        failed
    }
}

/// Backoff state of one month's query after failures.
#[derive(Debug, Clone, Copy)]
struct Retry {
    attempts: u32,
    at: tokio::time::Instant,
}

/// Runs one target's query loop until `shutdown`.
pub async fn run_target(
    shared: Arc<Shared>,
    target: String,
    client: Client,
    shutdown: CancellationToken,
) {
    let interval = shared.interval;
    let mut next_cycle = tokio::time::Instant::now();
    let mut retries: HashMap<YearMonth, Retry> = HashMap::new();
    let mut settled = shared.settled.subscribe();
    loop {
        let now = tokio::time::Instant::now();
        let timed_out =
            shared
                .lock_pending()
                .take_failed(&target, shared.clock.now(), CALLBACK_TIMEOUT);
        for q in timed_out {
            if q.state == QueryState::Sent {
                tracing::warn!(target = %target, month = %q.month, "no callback within {}; sending the query again", humantime::format_duration(CALLBACK_TIMEOUT));
                shared.metrics.query_timed_out(&target);
            }
            let retry = retries.entry(q.month).or_insert(Retry {
                attempts: 0,
                at: now,
            });
            retry.attempts += 1;
            retry.at = now + backoff(retry.attempts, interval);
        }
        let cycle_due = now >= next_cycle;
        if cycle_due {
            next_cycle = now + interval;
        }
        for month in months_to_query(&shared, &target) {
            // A month in backoff waits for its retry time even when a cycle is due.
            let due = retries.get(&month).map_or(cycle_due, |r| now >= r.at);
            if !due {
                continue;
            }
            if shared.lock_pending().in_flight(&target, month) {
                continue;
            }
            match submit(&shared, &target, &client, month).await {
                Ok(()) => {
                    retries.remove(&month);
                }
                Err(err) => {
                    let retry = retries.entry(month).or_insert(Retry {
                        attempts: 0,
                        at: now,
                    });
                    retry.attempts += 1;
                    let wait = match &err {
                        ClientError::Throttled {
                            retry_after: Some(d),
                        } => *d,
                        // A refused key will not heal by itself: retry slowly (the interval).
                        ClientError::Unauthorized { .. } => interval,
                        _ => backoff(retry.attempts, interval),
                    };
                    retry.at = tokio::time::Instant::now() + wait;
                }
            }
        }
        let deadline = shared
            .lock_pending()
            .next_deadline(&target, CALLBACK_TIMEOUT)
            .map(|at| {
                let left = (at - shared.clock.now()).max(time::Duration::ZERO);
                tokio::time::Instant::now() + left.unsigned_abs()
            });
        let wake_at = retries
            .values()
            .map(|r| r.at)
            .chain(deadline)
            .fold(next_cycle, std::cmp::min);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(wake_at) => {}
            changed = settled.changed() => if changed.is_err() { return },
        }
    }
}

/// Months in retention still worth asking for: the current one always; earlier ones until a
/// result said they are final.
fn months_to_query(shared: &Shared, target: &str) -> Vec<YearMonth> {
    let today = shared.clock.today();
    let ledger = shared.lock_ledger();
    let stored = ledger.targets.get(target);
    retention_months(today)
        .into_iter()
        .filter(|m| *m == YearMonth::of(today) || !stored.is_some_and(|t| t.month_final(*m)))
        .collect()
}

/// Exponential backoff with full jitter, capped at the interval.
fn backoff(attempts: u32, cap: Duration) -> Duration {
    let exp = RETRY_FIRST.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
    let ceiling = exp.min(cap.max(RETRY_FIRST));
    let jitter = rand::rng().random_range(0.5..=1.0);
    ceiling.mul_f64(jitter)
}

async fn submit(
    shared: &Shared,
    target: &str,
    client: &Client,
    month: YearMonth,
) -> Result<(), ClientError> {
    let range = month_query_range(month, shared.clock.today());
    let token = shared
        .lock_pending()
        .register(target, month, range, shared.clock.now());
    let request = QueryBillingUsageRequest {
        callback_url: format!("{}/callback/{target}/{token}", shared.public_url),
        request: QueryBillingUsageApiRequest {
            filter_by: BillingUsageDataFilter {
                date_interval: range.into(),
                ..Default::default()
            },
            aggregate_by: AGGREGATE_BY.to_vec(),
            options: Some(BillingUsageQueryOptions {
                include_unfinalized_data: true,
            }),
        },
    };
    match client.submit(&request).await {
        Ok(request_id) => {
            tracing::info!(target = %target, month = %month, request_id = %request_id, "query accepted");
            shared.lock_pending().record_request_id(&token, request_id);
            shared.request_id_recorded.notify_waiters();
            shared.persist();
            shared.metrics.query_accepted(target);
            Ok(())
        }
        Err(err) => {
            shared.lock_pending().forget(&token);
            shared
                .metrics
                .query_failed(target, err.reason(), err.status());
            match &err {
                ClientError::Unauthorized { .. } => {
                    tracing::error!(target = %target, "target is down: {err}")
                }
                _ => tracing::warn!(target = %target, month = %month, "query failed: {err}"),
            }
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn nov() -> (YearMonth, DayRange) {
        let m = YearMonth::of(date!(2026 - 11 - 01));
        (m, month_query_range(m, date!(2026 - 11 - 27)))
    }

    #[test]
    fn tokens_are_unique_and_found_only_whole() {
        let (m, r) = nov();
        let mut table = PendingTable::default();
        let a = table.register("eu", m, r, datetime!(2026-11-27 0:00 UTC));
        let b = table.register("eu", m, r, datetime!(2026-11-27 0:00 UTC));
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(table.find(&a).unwrap().token, a);
        assert!(table.find(&a[..63]).is_none());
        assert!(table.in_flight("eu", m));
        assert!(!table.in_flight("us", m));
    }

    #[test]
    fn timed_out_and_failed_queries_are_taken_once() {
        let (m, r) = nov();
        let mut table = PendingTable::default();
        let t0 = datetime!(2026-11-27 0:00 UTC);
        let old = table.register("eu", m, r, t0);
        let failed = table.register("eu", m, r, t0 + time::Duration::minutes(29));
        table.settle(&failed, QueryState::Failed);
        let taken = table.take_failed("eu", t0 + time::Duration::minutes(30), CALLBACK_TIMEOUT);
        let tokens: Vec<_> = taken.iter().map(|q| q.token.clone()).collect();
        assert_eq!(tokens, [old, failed]);
        assert!(
            table
                .take_failed("eu", t0 + time::Duration::hours(1), CALLBACK_TIMEOUT)
                .is_empty()
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let cap = Duration::from_secs(3600);
        assert!(backoff(1, cap) <= RETRY_FIRST);
        assert!(backoff(3, cap) >= RETRY_FIRST * 2);
        assert!(backoff(30, cap) <= cap);
    }
}
