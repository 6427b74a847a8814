//! The schema check itself: the `jsonschema` crate over the OpenAPI file, with the A16 patch.
//! The other `simulator_*` tests run every answer and callback through it; these show it accepts
//! the spec's own examples and really rejects what the spec forbids.

mod simulator_support;

use serde_json::{Value, json};
use simulator_support::*;

const RESULT: &str = "BillingUsageResult";

fn success(rows: Value, since: &str) -> Value {
    json!({
        "requestId": "B61D150B0F6596F68D88D253886432B5",
        "status": "SUCCESS",
        "response": {
            "requestedPeriod": { "sentSince": since, "sentUntil": "2026-04-01T00:00:00Z" },
            "totalRows": 1,
            "columns": [{ "columnName": "CATEGORY_CODE", "columnDataType": "STRING" }],
            "rows": rows
        }
    })
}

#[test]
fn the_spec_examples_pass() {
    let spec = openapi();
    let mut checked = 0;
    let responses = spec["paths"]["/billing/1/usage/query"]["post"]["responses"]
        .as_object()
        .unwrap();
    for (status, response) in responses {
        let status: u16 = status.parse().unwrap();
        // Either named `examples` or, in the shared error answers, a single `example`.
        let json = &deref(response)["content"]["application/json"];
        let named = json["examples"]
            .as_object()
            .into_iter()
            .flat_map(|e| e.values());
        let values = named
            .map(|example| &deref(example)["value"])
            .chain(json.get("example"));
        for value in values {
            assert_answer_valid(status, value);
            checked += 1;
        }
    }
    let webhook = &spec["webhooks"]["receive-billing-usage-result"]["post"]["requestBody"];
    for example in webhook["content"]["application/json"]["examples"]
        .as_object()
        .unwrap()
        .values()
    {
        assert_valid(&deref(example)["value"], RESULT);
        checked += 1;
    }
    // 201, 400, the four shared error answers, and three webhook results.
    assert!(checked >= 9, "{checked} examples");
}

#[test]
fn every_answer_status_has_a_schema() {
    for status in [201, 400, 401, 403, 429, 500] {
        let component = response_component(status);
        let expected = if status == 201 {
            "QueryAggregateDataResponse"
        } else {
            "ApiError"
        };
        assert!(component.ends_with(expected), "{status}: {component}");
    }
}

#[test]
fn row_cells_are_any_scalar_but_not_structures() {
    let scalars = json!([["SMS", 0.0072, 12040, "N/A", true, null]]);
    assert_valid(&success(scalars, "2026-03-01T00:00:00.000+0000"), RESULT);
    for bad in [json!([[{"value": 1}]]), json!([[["SMS"]]]), json!(["SMS"])] {
        let problems = check(&success(bad.clone(), "2026-03-01T00:00:00Z"), RESULT);
        assert!(!problems.is_empty(), "{bad} passed");
    }
}

#[test]
fn date_times_in_both_infobip_and_rfc3339_forms_only() {
    for good in [
        "2026-03-01T00:00:00.000+0000",
        "2026-03-01T00:00:00Z",
        "2026-03-01T00:00:00+00:00",
    ] {
        assert_valid(&success(json!([]), good), RESULT);
    }
    for bad in ["2026-03-01", "yesterday", "2026-03-01T00:00:00.000+00"] {
        let problems = check(&success(json!([]), bad), RESULT);
        assert!(
            problems.iter().any(|p| p.contains("requestedPeriod")),
            "{bad}: {problems:?}"
        );
    }
}

#[test]
fn violations_of_the_spec_are_caught() {
    let cases: [(&str, Value); 6] = [
        (
            "ApiError",
            json!({"description": "d", "action": "a", "violations": [], "resources": []}),
        ),
        (
            "ApiError",
            json!({"errorCode": "E400", "description": "d", "action": "a", "violations": [{"property": 1}], "resources": []}),
        ),
        ("QueryAggregateDataResponse", json!({"id": "X"})),
        (RESULT, json!({"requestId": "X", "status": "DONE"})),
        (
            RESULT,
            json!({"requestId": "X", "status": "SUCCESS", "metadata": {"clientRequestedPeriod": {"sentSince": "2026-03-01T00:00:00Z", "sentUntil": "2026-04-01T00:00:00Z"}, "billingPeriods": [{"month": "2026-03"}]}}),
        ),
        (
            RESULT,
            json!({"requestId": "X", "status": "SUCCESS", "response": {"requestedPeriod": {"sentSince": "2026-03-01T00:00:00Z", "sentUntil": "2026-04-01T00:00:00Z"}, "totalRows": 0, "columns": [{"columnName": "DAY", "columnDataType": "DATE"}], "rows": []}}),
        ),
    ];
    for (title, value) in cases {
        assert!(!check(&value, title).is_empty(), "{title} accepted {value}");
    }
}
