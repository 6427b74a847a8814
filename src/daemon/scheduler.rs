//! What to query when. Each target has its own loop: the current month every `interval`, the
//! previous months until a result says `volumeFinalized: true`, then never again. A month whose
//! last result (remembered across restarts) is younger than `interval` waits for the rest of it:
//! a crash loop costs no API calls beyond the schedule.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::billing::calendar::{YearMonth, month_query_range, retention_months};
use crate::billing::ledger::SegmentKey;
use crate::daemon::pending::{QueryState, wall_now};
pub use crate::daemon::shared::AGGREGATE_BY;
use crate::daemon::shared::Shared;
use crate::infobip::client::{Client, ClientError};
use crate::infobip::filters::UsageFilter;
use crate::infobip::model::{
    BillingUsageQueryOptions, QueryBillingUsageApiRequest, QueryBillingUsageRequest,
};

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

/// Runs one target's query loop until `shutdown`; every query carries `filter`.
pub async fn run_target(
    shared: Arc<Shared>,
    target: String,
    (client, filter): (Client, UsageFilter),
    shutdown: CancellationToken,
) {
    // A reload that changes these starts the loop over, so they hold for its whole life.
    let settings = shared.settings();
    let (interval, timeout, first_retry) = (
        settings.interval,
        settings.callback_timeout,
        settings.retry_backoff,
    );
    shared
        .metrics
        .query_interval(&target, interval.as_secs_f64());
    let mut next_cycle = tokio::time::Instant::now();
    let mut retries = recent_results(&shared, &target, interval);
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
                result = submit(&shared, &target, (&client, &filter), month) => result,
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
    let meta = shared.store.meta();
    retention_months(today)
        .into_iter()
        .filter(|m| {
            *m == YearMonth::of(today)
                || meta
                    .get(&SegmentKey::new(target, *m))
                    .is_none_or(|s| s.wants)
        })
        .collect()
}

/// The months whose stored result is younger than `interval`, each due once that age reaches
/// `interval`, as if a query had just been sent for them: a restart does not ask again. A month
/// that lacks a dimension added since is asked for at once.
fn recent_results(shared: &Shared, target: &str, interval: Duration) -> HashMap<YearMonth, Retry> {
    let now = wall_now();
    let meta = shared.store.meta();
    meta.iter()
        .filter(|(key, segment)| key.target == target && !segment.reshaped)
        .filter_map(|(key, segment)| {
            let left = (segment.last_result_at? + interval - now).max(time::Duration::ZERO);
            let left = left.unsigned_abs();
            (!left.is_zero()).then(|| {
                let at = tokio::time::Instant::now() + left;
                (key.month, Retry { attempts: 0, at })
            })
        })
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
    (client, filter): (&Client, &UsageFilter),
    month: YearMonth,
) -> Result<(), ClientError> {
    let settings = shared.settings();
    let range = month_query_range(month, shared.clock.today());
    let token = shared
        .lock_pending()
        .register(target, month, range, wall_now());
    let request = QueryBillingUsageRequest {
        callback_url: format!("{}/callback/{target}/{token}", settings.public_url),
        request: QueryBillingUsageApiRequest {
            filter_by: filter.over(range.into()),
            aggregate_by: settings.aggregate_by.clone(),
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
            shared.persist_pending().await;
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

    #[test]
    fn backoff_grows_and_is_capped() {
        let (first, cap) = (Duration::from_secs(15), Duration::from_secs(3600));
        assert!(backoff(1, first, cap) <= first);
        assert!(backoff(3, first, cap) >= first * 2);
        assert!(backoff(30, first, cap) <= cap);
    }
}
