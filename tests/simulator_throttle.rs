//! Throttling: 60 requests per second per credential, then 429 E429 with `Retry-After: 1`
//! (reference §10, A13, §15.6).

mod simulator_support;

use infobip_billing_exporter::simulator::SimulatorOptions;
use serde_json::json;
use simulator_support::*;
use time::macros::datetime;

#[tokio::test]
async fn more_than_sixty_a_second_gets_429() {
    let opts = SimulatorOptions {
        unscoped_api_key: Some("other".into()),
        ..fast()
    };
    let run = start(opts, datetime!(2026-04-10 12:00 UTC)).await;
    // Invalid bodies are cheap and still count against the limit.
    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..90 {
        let answer = post_raw(&run.base, Some("App demo-key"), "{}").await;
        if answer.status == 429 && throttled.is_none() {
            throttled = Some(answer);
        } else {
            statuses.push(answer.status);
        }
    }
    assert!(
        statuses[..60].iter().all(|s| *s == 400),
        "the burst of 60 passes"
    );
    let answer = throttled.expect("a 429 after 60 requests");
    assert_valid(&answer.body, "ApiError");
    assert_eq!(
        answer.body,
        json!({
            "errorCode": "E429",
            "description": "Too many requests sent.",
            "action": "Check request rate limit specified in the API endpoint documentation resource.",
            "violations": [],
            "resources": [{
                "name": "Throttling handling errors",
                "url": "https://www.infobip.com/docs/essentials/integration-best-practices#throttling-handling-errors"
            }]
        })
    );
    assert_eq!(answer.headers["retry-after"], "1");
    assert!(run.sim.stats().throttled() >= 1, "{:?}", run.sim.stats());

    // Buckets are per credential; bad credentials are refused before throttling.
    assert_eq!(
        post_raw(&run.base, Some("App other"), "{}").await.status,
        403
    );
    assert_eq!(
        post_raw(&run.base, Some("App nope"), "{}").await.status,
        401
    );
}

#[tokio::test]
async fn the_bucket_refills() {
    let opts = SimulatorOptions {
        requests_per_second: 20,
        ..fast()
    };
    let run = start(opts, datetime!(2026-04-10 12:00 UTC)).await;
    // The bucket holds 20; on a busy machine it refills while it is drained, so drain until
    // refused rather than a fixed 21 times.
    let mut last = 0;
    for _ in 0..500 {
        last = post_raw(&run.base, Some("App demo-key"), "{}").await.status;
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429);
    // Refill is a matter of real time: 20 per second gives a token every 50 ms.
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    assert_eq!(
        post_raw(&run.base, Some("App demo-key"), "{}").await.status,
        400
    );
}
