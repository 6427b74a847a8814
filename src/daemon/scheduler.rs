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

use crate::billing::calendar::{DayRange, YearMonth, month_query_range, retention_months};
use crate::daemon::Shared;
use crate::infobip::client::{Client, ClientError};
use crate::infobip::model::{
    BillingUsageAggregate, BillingUsageDataFilter, BillingUsageQueryOptions,
    QueryBillingUsageApiRequest, QueryBillingUsageRequest,
};

/// Dimensions every query asks for, before configured extras: the labels of the cost metrics.
pub const AGGREGATE_BY: [BillingUsageAggregate; 4] = [
    BillingUsageAggregate::DAY,
    BillingUsageAggregate::ACCOUNT_NAME,
    BillingUsageAggregate::ACCOUNT_KEY,
    BillingUsageAggregate::CATEGORY_CODE,
];

/// How long a settled token is remembered: a duplicate delivery still gets 200 without being
/// applied again, and a callback that comes after its timeout is still used.
const SETTLED_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryState {
    Sent,
    Done,
    /// Failed (a FAILED result or an unusable body): to be sent again.
    Failed,
    /// Sent again after a failure or a timeout. Kept so that a late or repeated callback is
    /// still recognised (and a late result still used) rather than taken for an unknown token.
    Resent,
}

/// Real time, for timeouts and ages. The injected [`crate::billing::calendar::Clock`] decides only the
/// billing calendar (which months, which are final), so tests can pin the calendar and still
/// see timeouts fire.
pub fn wall_now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
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

    pub fn in_flight_count(&self, target: &str) -> usize {
        self.queries
            .iter()
            .filter(|q| q.state == QueryState::Sent && q.target == target)
            .count()
    }

    /// Whether a later query for the same month already delivered: then this result is older
    /// than what the ledger holds and must not replace it.
    pub fn superseded(&self, query: &PendingQuery) -> bool {
        self.queries.iter().any(|q| {
            q.state == QueryState::Done
                && q.target == query.target
                && q.month == query.month
                && q.submitted_at > query.submitted_at
        })
    }

    /// When this target's oldest unanswered query times out.
    pub fn next_deadline(&self, target: &str, timeout: Duration) -> Option<OffsetDateTime> {
        self.queries
            .iter()
            .filter(|q| q.state == QueryState::Sent && q.target == target)
            .map(|q| q.submitted_at + timeout)
            .min()
    }

    /// Returns this target's queries to send again, failed ones and those past `timeout`, as
    /// they were, and marks them resent. Forgets settled entries older than the retention
    /// window.
    pub fn take_failed(
        &mut self,
        target: &str,
        now: OffsetDateTime,
        timeout: Duration,
    ) -> Vec<PendingQuery> {
        let mut failed = Vec::new();
        self.queries.retain_mut(|q| {
            let age = now - q.submitted_at;
            let timed_out = q.state == QueryState::Sent && age >= timeout;
            if q.target == target && (timed_out || q.state == QueryState::Failed) {
                failed.push(q.clone());
                q.state = QueryState::Resent;
            }
            q.state == QueryState::Sent || age < SETTLED_RETENTION
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

impl Retry {
    fn after(
        retries: &mut HashMap<YearMonth, Retry>,
        month: YearMonth,
        wait: impl FnOnce(u32) -> Duration,
    ) {
        let retry = retries.entry(month).or_insert(Retry {
            attempts: 0,
            at: tokio::time::Instant::now(),
        });
        retry.attempts += 1;
        retry.at = tokio::time::Instant::now() + wait(retry.attempts);
    }
}

/// Runs one target's query loop until `shutdown`.
pub async fn run_target(
    shared: Arc<Shared>,
    target: String,
    client: Client,
    shutdown: CancellationToken,
) {
    let (interval, timeout, first_retry) = (
        shared.interval,
        shared.callback_timeout,
        shared.retry_backoff,
    );
    let mut next_cycle = tokio::time::Instant::now();
    let mut retries: HashMap<YearMonth, Retry> = HashMap::new();
    let mut settled = shared.settled.subscribe();
    let mut refused = false;
    loop {
        let now = tokio::time::Instant::now();
        let to_resend = shared
            .lock_pending()
            .take_failed(&target, wall_now(), timeout);
        for q in to_resend {
            if q.state == QueryState::Sent {
                tracing::warn!(target = %target, month = %q.month, "no callback within {}; sending the query again", humantime::format_duration(timeout));
                shared.metrics.query_timed_out(&target);
            }
            Retry::after(&mut retries, q.month, |n| backoff(n, first_retry, interval));
        }
        let cycle_due = now >= next_cycle;
        if cycle_due {
            next_cycle = now + interval;
        }
        for month in months_to_query(&shared, &target) {
            // A month in backoff waits for its retry time even when a cycle is due.
            let due = retries.get(&month).map_or(cycle_due, |r| now >= r.at);
            if !due || shared.lock_pending().in_flight(&target, month) {
                continue;
            }
            let result = tokio::select! {
                () = shutdown.cancelled() => return,
                result = submit(&shared, &target, &client, month) => result,
            };
            match result {
                Ok(()) => {
                    retries.remove(&month);
                    if std::mem::take(&mut refused) {
                        tracing::info!(target = %target, "Infobip accepts the API key again");
                    }
                }
                Err(err) => {
                    if let ClientError::Unauthorized { .. } = err {
                        // One clear line when the target goes down, not one per retry.
                        if !std::mem::replace(&mut refused, true) {
                            tracing::error!(target = %target, "target is down: {err}; retrying every {}", humantime::format_duration(interval));
                        }
                    } else {
                        tracing::warn!(target = %target, month = %month, "query failed: {err}");
                    }
                    Retry::after(&mut retries, month, |n| match &err {
                        ClientError::Throttled {
                            retry_after: Some(d),
                        } => *d,
                        // A refused key will not heal by itself: retry slowly.
                        ClientError::Unauthorized { .. } => interval,
                        _ => backoff(n, first_retry, interval),
                    });
                }
            }
        }
        let wake_at = {
            let pending = shared.lock_pending();
            shared
                .metrics
                .queries_in_flight(&target, pending.in_flight_count(&target));
            let deadline = pending.next_deadline(&target, timeout).map(|at| {
                let left = (at - wall_now()).max(time::Duration::ZERO);
                tokio::time::Instant::now() + left.unsigned_abs()
            });
            retries
                .values()
                .map(|r| r.at)
                .chain(deadline)
                .fold(next_cycle, std::cmp::min)
        };
        let wall_wake = wall_now() + wake_at.saturating_duration_since(tokio::time::Instant::now());
        shared
            .metrics
            .next_query_at(&target, wall_wake.unix_timestamp_nanos() as f64 / 1e9);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(wake_at) => {}
            changed = settled.changed() => if changed.is_err() { return },
        }
    }
}

/// Months in retention still worth asking for: the current one always; earlier ones until a
/// result said they are final, and again after a dimension was added to the config.
fn months_to_query(shared: &Shared, target: &str) -> Vec<YearMonth> {
    let today = shared.clock.today();
    let ledger = shared.lock_ledger();
    let stored = ledger.targets.get(target);
    retention_months(today)
        .into_iter()
        .filter(|m| *m == YearMonth::of(today) || stored.is_none_or(|t| t.wants(*m)))
        .collect()
}

/// Exponential backoff from `first`, capped at `cap`, with jitter (half to full) so that
/// several targets do not retry in lockstep.
fn backoff(attempts: u32, first: Duration, cap: Duration) -> Duration {
    let exp = first.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
    let ceiling = exp.min(cap.max(first));
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
        .register(target, month, range, wall_now());
    let request = QueryBillingUsageRequest {
        callback_url: format!("{}/callback/{target}/{token}", shared.public_url),
        request: QueryBillingUsageApiRequest {
            filter_by: BillingUsageDataFilter {
                date_interval: range.into(),
                ..Default::default()
            },
            aggregate_by: shared.aggregate_by.clone(),
            options: Some(BillingUsageQueryOptions {
                include_unfinalized_data: true,
            }),
        },
    };
    match client.submit(&request).await {
        Ok(request_id) => {
            shared
                .lock_pending()
                .record_request_id(&token, request_id.clone());
            shared.request_id_recorded.notify_waiters();
            // Saved before anything else: a crash from here on still knows this query.
            shared.persist_pending();
            shared.metrics.query_accepted(target);
            tracing::info!(target = %target, month = %month, request_id = %request_id, "query accepted");
            Ok(())
        }
        Err(err) => {
            shared.lock_pending().forget(&token);
            shared
                .metrics
                .query_failed(target, err.reason(), err.status());
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
        let taken = table.take_failed("eu", t0 + time::Duration::minutes(30), TIMEOUT);
        let tokens: Vec<_> = taken.iter().map(|q| q.token.clone()).collect();
        assert_eq!(tokens, [old.clone(), failed]);
        assert!(
            table
                .take_failed("eu", t0 + time::Duration::hours(1), TIMEOUT)
                .is_empty()
        );
        // The timed-out query is remembered, so its late callback is still accepted.
        assert_eq!(table.find(&old).unwrap().state, QueryState::Resent);
        assert!(!table.in_flight("eu", m));
    }

    const TIMEOUT: Duration = Duration::from_secs(30 * 60);

    #[test]
    fn backoff_grows_and_is_capped() {
        let (first, cap) = (Duration::from_secs(15), Duration::from_secs(3600));
        assert!(backoff(1, first, cap) <= first);
        assert!(backoff(3, first, cap) >= first * 2);
        assert!(backoff(30, first, cap) <= cap);
    }

    #[test]
    fn an_older_result_is_superseded_by_a_newer_delivery() {
        let (m, r) = nov();
        let mut table = PendingTable::default();
        let t0 = datetime!(2026-11-27 0:00 UTC);
        let old = table.register("eu", m, r, t0);
        let new = table.register("eu", m, r, t0 + time::Duration::minutes(31));
        assert!(!table.superseded(table.find(&old).unwrap()));
        table.settle(&new, QueryState::Done);
        assert!(table.superseded(table.find(&old).unwrap()));
        assert!(!table.superseded(table.find(&new).unwrap()));
    }
}
