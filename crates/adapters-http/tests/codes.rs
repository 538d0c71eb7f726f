//! Every error code of the API is answered by at least one router test through HTTP, with its
//! status — or is listed here with the reason no request can produce it.
//!
//! Every test runs in a process of its own (nextest), so no test can see the others' answers:
//! this reads the sources of the router tests (the top-level files of `tests/`) instead. An answer
//! checked with `reply.assert(<status>, "<code>")` (or, in the fault tests that read the raw body,
//! `["code"], "<code>"`) counts. The harness checks every answer against the OpenAPI document,
//! so a code counted here is also one its operation documents.

use adapters_http::error::ErrorCode;
use std::path::Path;

/// Codes in `ErrorCode::ALL` that no request can produce, and why.
const NOT_ANSWERED: &[(&str, &str)] = &[];

fn router_test_sources() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut all = String::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        // Not this file (its list would count itself) nor the binary's list of modules; the
        // support modules are directories and not read.
        if path.extension().is_some_and(|e| e == "rs") && name != "codes.rs" && name != "main.rs" {
            all.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    // One line per statement, whatever rustfmt made of it.
    all.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn answered(sources: &str, status: u16, code: &str) -> bool {
    [
        format!(".assert({status}, \"{code}\")"),
        format!("[\"code\"], \"{code}\")"),
    ]
    .iter()
    .any(|p| sources.contains(p.as_str()))
}

#[test]
fn every_error_code_is_answered_by_a_router_test_or_listed_as_unanswerable() {
    let sources = router_test_sources();
    assert!(
        sources.contains(".assert(401, \"unauthenticated\")"),
        "sources were read"
    );
    let mut missing = Vec::new();
    for c in ErrorCode::ALL {
        let listed = NOT_ANSWERED.iter().any(|(code, _)| *code == c.as_str());
        let seen = answered(&sources, c.status_u16(), c.as_str());
        assert!(
            !(listed && seen),
            "{} is answered by a router test now: take it off NOT_ANSWERED",
            c.as_str()
        );
        if !listed && !seen {
            missing.push(format!("{} ({})", c.as_str(), c.status_u16()));
        }
    }
    assert!(
        missing.is_empty(),
        "no router test answers these codes: {}",
        missing.join(", ")
    );
    for (code, why) in NOT_ANSWERED {
        assert!(
            ErrorCode::ALL.iter().any(|c| c.as_str() == *code),
            "{code} is no code any more"
        );
        assert!(!why.is_empty());
    }
}

#[test]
fn codes_no_request_can_produce_are_not_documented_for_any_operation() {
    let config = adapters_http::HttpConfig::new(
        "https://portal.example.com",
        adapters_http::CookieKey::generate(),
    )
    .unwrap();
    let spec = serde_json::to_string(&adapters_http::openapi(&config)).unwrap();
    for (code, _) in NOT_ANSWERED {
        assert!(
            !spec.contains(&format!("`{code}`")),
            "the OpenAPI document promises {code}, which no operation answers"
        );
    }
    // The document lists the answerable codes (e.g. conflict) the same way.
    assert!(spec.contains("`conflict`"));
}
