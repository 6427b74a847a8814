//! The pending table: queries sent and not yet settled, found by the secret token in their
//! callback URL, plus recently settled ones so that a duplicate delivery is recognised.

use std::time::Duration;

use rand::Rng;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::billing::calendar::{DayRange, YearMonth};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::calendar::month_query_range;
    use time::macros::{date, datetime};

    fn nov() -> (YearMonth, DayRange) {
        let m = YearMonth::of(date!(2026 - 11 - 01));
        (m, month_query_range(m, date!(2026 - 11 - 27)))
    }

    const TIMEOUT: Duration = Duration::from_secs(30 * 60);

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
