//! HMA conformance: the requests of HMA's own test suite
//! (facebook/ThreatExchange `hasher-matcher-actioner/src/OpenMediaMatch/
//! tests/test_api*.py`, `test_match_api.py`) with HMA's expected status
//! codes and bodies, plus the rules HMA's blueprints state (error texts,
//! coin flip, `disable_until_ts`), on SQLite and on PostgreSQL. Distances
//! are checked against a brute-force Hamming distance written here on hex
//! strings, independent of frankly's index.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::hma::Hma;
use common::{Engine, Harness};
use frankly_server::Scope;
use serde_json::{Value, json};

/// `PdqSignal.get_examples()` of python-threatexchange, in order.
const PDQ_EXAMPLES: [&str; 16] = [
    "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
    "f8f8f0cee0f4a84f06370a2a038f63f0b36e26d596621e1d33e6b39c4e9c9b22",
    "f8f8f0cee0f4a84f0637022a038f67f0b36e26d596621e1d33e6b39c4e9c9b22",
    "f8f8f0cee0f4a84f06370a2a068f67f0b36e26d596621e1d33e6339c4e9c9b22",
    "f8f8f0cee0f4a84f06370a22038f67f0b36e2ed596221e1d33e6b39c4e9c9b22",
    "f8f8f0cee0f4a84f0e370a22038f67f0b36e2ed596221e1d33e6b39c4a9c9b22",
    "d8f8f0cec0f4a84f8e370a22038f67f0b36a2ed597231e1d72e6b39c4a9c9b22",
    "f8f8f0cee0f4a84f06370a22038f67f0b36e2ed596621e1d33e6339c4e9c9b22",
    "d0f8f1ccc0f4a84d0a370a3a228f67f0b36e2ed5b6623e1d33e6339c4e9c9b22",
    "d8f8f1eec0f4a84f0e37022a078f63f0b36e2ed596621e1d33e6239c4e9c9b22",
    "d8f8f0cec4f4a84f0637022a078f67f0b36e2ee5b6621e1d33e6239c4e9c9b22",
    "d8f8f0cec0f4a84f0637022a278f67f0b36e2ed596621e1d33e6339c4e9c9b22",
    "e64cc9d91c623882f8d1f1d9a398e78c9f199b3bd83924f2b7e11e0bf861b064",
    "6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94deeb2d",
    "c186f9619659658c4b6916daf934496985f4259c72c39676ab9edb631c3c349c",
    "62c9789627838f69f23cf98c29e37836d61c87c31c59587c4b49a783f496725c",
];

/// The Hamming distance of two hex strings, nibble by nibble.
fn hamming(a: &str, b: &str) -> u32 {
    a.chars().zip(b.chars()).map(|(x, y)| (x.to_digit(16).unwrap() ^ y.to_digit(16).unwrap()).count_ones()).sum()
}

fn ids(matches: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = matches["matches"].as_array().unwrap().iter().map(|m| m.as_i64().unwrap()).collect();
    ids.sort_unstable();
    ids
}

/// HMA's `test_status_response` and `test_status_live_always_alive`: plain
/// `I-AM-ALIVE`; frankly's index is loaded before it listens, so never 503.
async fn status_is_alive(s: Hma) {
    for path in ["/status", "/status/live"] {
        let (status, body) = s.call_with(Method::GET, path, None, None).await;
        assert_eq!((status, body), (StatusCode::OK, json!("I-AM-ALIVE")), "{path}");
    }
}

/// HMA's `test_banks_empty_index`, `test_banks_create`, `test_banks_update`,
/// `test_banks_delete`, and the 403/404 texts of its curation blueprint.
async fn banks_follow_hma(s: Hma) {
    assert_eq!(s.get("/c/banks").await, (StatusCode::OK, json!([])));
    for bad in ["01_TEST_BANK", "my_test_bank", ""] {
        let (status, body) = s.post("/c/banks", json!({ "name": bad })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body, json!({ "message": "Bank names must be UPPER_WITH_UNDERSCORE" }));
    }
    s.create_bank("MY_TEST_BANK_01").await;
    assert_eq!(
        s.get("/c/banks").await,
        (StatusCode::OK, json!([{ "matching_enabled_ratio": 1.0, "name": "MY_TEST_BANK_01" }]))
    );
    assert_eq!(
        s.post("/c/banks", json!({ "name": "MY_TEST_BANK_01" })).await,
        (StatusCode::FORBIDDEN, json!({ "message": "Bank already exists" }))
    );
    // pydantic's 422 list for a body that is not the model.
    let (status, body) = s.post("/c/banks", json!({ "name": 5 })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((body[0]["type"].clone(), body[0]["loc"].clone()), (json!("string_type"), json!(["name"])));
    let (status, body) = s.post("/c/banks", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body[0]["type"], json!("missing"));

    s.create_bank("MY_TEST_BANK").await;
    let (status, _) = s.put("/c/bank/MY_TEST_BANK", json!({ "name": "1_invalid_name" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = s.put("/c/bank/MY_TEST_BANK", json!({ "name": "MY_TEST_BANK_RENAMED" })).await;
    assert_eq!((status, body["name"].clone()), (StatusCode::OK, json!("MY_TEST_BANK_RENAMED")));
    let (status, body) = s.put("/c/bank/MY_TEST_BANK_RENAMED", json!({ "enabled": false })).await;
    assert_eq!(status, StatusCode::OK);
    // HMA answers the int it stored from `enabled`.
    assert_eq!(body["matching_enabled_ratio"], json!(0));
    let (status, body) = s.put("/c/bank/MY_TEST_BANK_RENAMED", json!({ "enabled_ratio": 0.5 })).await;
    assert_eq!((status, body["matching_enabled_ratio"].clone()), (StatusCode::OK, json!(0.5)));
    assert_eq!(
        s.put("/c/bank/MY_TEST_BANK_RENAMED", json!({ "name": "MY_TEST_BANK_01" })).await,
        (StatusCode::FORBIDDEN, json!({ "message": "Bank name already exists" }))
    );
    assert_eq!(
        s.get("/c/bank/MY_TEST_BANK_RENAMED").await.1,
        json!({ "matching_enabled_ratio": 0.5, "name": "MY_TEST_BANK_RENAMED" })
    );
    assert_eq!(
        s.get("/c/bank/MY_TEST_BANK").await,
        (StatusCode::NOT_FOUND, json!({ "message": "bank 'MY_TEST_BANK' not found" }))
    );
    assert_eq!(
        s.put("/c/bank/NO_SUCH_BANK", json!({ "enabled": true })).await,
        (StatusCode::NOT_FOUND, json!({ "message": "Bank not found" }))
    );
    // Deleting succeeds, and so does deleting what is not there.
    for _ in 0..2 {
        assert_eq!(s.delete("/c/bank/MY_TEST_BANK_RENAMED").await, (StatusCode::OK, json!({ "message": "Done" })));
    }
    assert_eq!(s.get("/c/banks").await.1.as_array().unwrap().len(), 1);
    // Coop's base URL ends in '/', so it asks for `//c/banks`.
    assert_eq!(s.get("//c/banks").await, s.get("/c/banks").await);
}

/// HMA's `test_raw_lookups`, `test_lookups` and `test_compare_hashes` on
/// the 16 PDQ examples, every answer checked against brute force.
async fn lookups_are_exact(s: Hma) {
    s.create_bank("TEST_BANK").await;
    let mut banked = Vec::new();
    for (i, pdq) in PDQ_EXAMPLES.iter().enumerate() {
        let id = s.add_pdq("TEST_BANK", pdq).await;
        assert_eq!(id, i as i64 + 1, "content ids count from 1");
        banked.push((id, *pdq));
    }
    for query in PDQ_EXAMPLES {
        let mut want: Vec<(i64, u32)> =
            banked.iter().map(|(id, h)| (*id, hamming(query, h))).filter(|(_, d)| *d <= 31).collect();
        want.sort_unstable();
        let (status, raw) = s.get(&format!("/m/raw_lookup?signal_type=pdq&signal={query}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ids(&raw), want.iter().map(|(id, _)| *id).collect::<Vec<_>>(), "{query}");
        let (_, with) = s.get(&format!("/m/raw_lookup?signal_type=pdq&signal={query}&include_distance=true")).await;
        let mut got: Vec<(i64, u32)> = with["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["bank_content_id"].as_i64().unwrap(), m["distance"].as_str().unwrap().parse().unwrap()))
            .collect();
        got.sort_unstable();
        assert_eq!(got, want, "{query}");
        let (status, found) = s.get(&format!("/m/lookup?signal_type=pdq&signal={query}")).await;
        assert_eq!(status, StatusCode::OK);
        let mut got: Vec<(i64, u32)> = found["TEST_BANK"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["bank_content_id"].as_i64().unwrap(), m["distance"].as_str().unwrap().parse().unwrap()))
            .collect();
        got.sort_unstable();
        assert_eq!(got, want, "{query}");
    }
    // The octocat is far from everything else.
    assert_eq!(
        s.get(&format!("/m/lookup?signal_type=pdq&signal={}", PDQ_EXAMPLES[15])).await.1,
        json!({ "TEST_BANK": [{ "bank_content_id": 16, "distance": "0" }] })
    );
    assert_eq!(
        s.get(&format!("/m/lookup?signal_type=pdq&signal={}", "5".repeat(64))).await,
        (StatusCode::OK, json!({}))
    );
    // max_distance narrows, never widens.
    let (_, narrow) = s.get(&format!("/m/raw_lookup?signal_type=pdq&signal={}", PDQ_EXAMPLES[0])).await;
    let (_, close) = s.get(&format!("/m/lookup?signal_type=pdq&signal={}&max_distance=4", PDQ_EXAMPLES[0])).await;
    let want: Vec<i64> = banked.iter().filter(|(_, h)| hamming(PDQ_EXAMPLES[0], h) <= 4).map(|(id, _)| *id).collect();
    let mut got: Vec<i64> =
        close["TEST_BANK"].as_array().unwrap().iter().map(|m| m["bank_content_id"].as_i64().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, want);
    assert!(want.len() < ids(&narrow).len());
    let (status, _) = s.get(&format!("/m/lookup?signal_type=pdq&signal={}&max_distance=32", PDQ_EXAMPLES[0])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Errors, with HMA's texts.
    assert_eq!(
        s.get("/m/lookup?signal_type=nope&signal=ab").await,
        (StatusCode::BAD_REQUEST, json!({ "message": "No such SignalType 'nope'" }))
    );
    assert_eq!(
        s.get(&format!("/m/lookup?signal_type=pdq&signal={}", "A".repeat(64))).await,
        (StatusCode::BAD_REQUEST, json!({ "message": "invalid signal: invalid PDQ hash" }))
    );
    assert_eq!(
        s.get("/m/lookup?signal_type=pdq").await,
        (StatusCode::BAD_REQUEST, json!({ "message": "Either url or both signal and signal_type are required" }))
    );
    let (status, body) = s.get("/m/raw_lookup?signal_type=pdq").await;
    assert_eq!((status, body[0]["loc"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!(["signal"])));
    let (status, body) =
        s.get(&format!("/m/raw_lookup?signal_type=pdq&signal={}&include_distance=maybe", PDQ_EXAMPLES[0])).await;
    assert_eq!((status, body[0]["type"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("bool_parsing")));

    // compare
    let a = "facd8bcb2a49bcebdec1985298d5fe84bcd006c187c598c720c3c087b3fdb318";
    let b = "facd8bcb2a49bcebdec1985228d5ae84bcd006c187c598c720c2b087b3fdb318";
    assert_eq!(hamming(a, b), 9);
    assert_eq!(
        s.post("/m/compare", json!({ "pdq": [a, b] })).await,
        (StatusCode::OK, json!({ "pdq": [true, { "distance": 9 }] }))
    );
    let far = PDQ_EXAMPLES[13];
    assert_eq!(
        s.post("/m/compare", json!({ "pdq": [a, far] })).await.1,
        json!({ "pdq": [hamming(a, far) <= 31, { "distance": hamming(a, far) }] })
    );
    for bad in [
        json!(["banana"]),
        json!({"pdq": "banana"}),
        json!({"pdq": []}),
        json!({"pdq": ["banana", "banana"]}),
        json!({"pdq": [a, b, a]}),
    ] {
        assert_eq!(s.post("/m/compare", bad.clone()).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }
    // Not JSON: werkzeug's 415.
    let (status, _, _) =
        s.h.request(
            Request::post("/m/compare")
                .header(header::AUTHORIZATION, format!("Bearer {}", s.key))
                .body(Body::from("pdq=1"))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // index status counts signals.
    let (status, body) = s.get("/m/index/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((body["pdq"]["present"].clone(), body["pdq"]["size"].clone()), (json!(true), json!(16)));
    assert_eq!(s.get("/m/index/status?signal_type=video_md5").await.1["video_md5"]["size"], json!(0));
    assert_eq!(
        s.get("/m/index/status?signal_type=nope").await,
        (StatusCode::BAD_REQUEST, json!({ "message": "No such signal type 'nope'" }))
    );

    // What was banked survives a restart: another instance loads it.
    let other = frankly_server::app(s.h.another_instance().await);
    let req = Request::get(format!("/m/raw_lookup?signal_type=pdq&signal={}", PDQ_EXAMPLES[15]))
        .header(header::AUTHORIZATION, format!("Bearer {}", s.key))
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(other, req).await.unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), json!({ "matches": [16] }));
}

/// HMA's `test_raw_lookup_with_bank_filter`, `test_lookup_with_bank_filter`
/// and its coin flip: a bank is consulted when its ratio is at least
/// `random.Random(seed).random()`.
async fn bank_filters_and_coin_flips(s: Hma) {
    for bank in ["BANK_A", "BANK_B", "BANK_C"] {
        s.create_bank(bank).await;
        s.add_pdq(bank, PDQ_EXAMPLES[0]).await;
    }
    let q = format!("/m/raw_lookup?signal_type=pdq&signal={}", PDQ_EXAMPLES[0]);
    for (banks, n) in [("", 3), ("&banks=BANK_A", 1), ("&banks=BANK_A,BANK_B", 2), ("&banks=NON_EXISTENT_BANK", 0)] {
        assert_eq!(ids(&s.get(&format!("{q}{banks}")).await.1).len(), n, "{banks}");
    }
    let q = format!("/m/lookup?signal_type=pdq&signal={}", PDQ_EXAMPLES[0]);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&s.get(&q).await.1), ["BANK_A", "BANK_B", "BANK_C"]);
    assert_eq!(keys(&s.get(&format!("{q}&banks=BANK_A,BANK_C")).await.1), ["BANK_A", "BANK_C"]);
    assert_eq!(s.get(&format!("{q}&banks=NON_EXISTENT_BANK")).await.1, json!({}));

    // random.Random("1234").random() is 0.24836460312826447 and
    // random.Random("").random() is 0.9602256525641875 (CPython).
    s.put("/c/bank/BANK_A", json!({ "enabled_ratio": 0.2 })).await;
    s.put("/c/bank/BANK_B", json!({ "enabled_ratio": "0.25" })).await;
    s.put("/c/bank/BANK_C", json!({ "enabled": false })).await;
    assert_eq!(keys(&s.get(&format!("{q}&seed=1234")).await.1), ["BANK_B"]);
    assert_eq!(s.get(&format!("{q}&seed=")).await.1, json!({}));
    // GET ignores bypass_coinflip, as HMA's does.
    assert_eq!(s.get(&format!("{q}&seed=&bypass_coinflip=true")).await.1, json!({}));
    // raw_lookup ignores ratios.
    assert_eq!(ids(&s.get(&format!("/m/raw_lookup?signal_type=pdq&signal={}", PDQ_EXAMPLES[0])).await.1).len(), 3);
}

/// HMA's `test_bank_update_content`, `..._400`, `test_banks_delete_content`
/// and `test_bank_get_content_404`, on content banked by signal.
async fn content_can_be_disabled_noted_and_deleted(s: Hma) {
    assert_eq!(s.get("/c/bank/TEST_BANK_GET/content/1").await.0, StatusCode::NOT_FOUND);
    s.create_bank("TEST_BANK_GET").await;
    assert_eq!(s.get("/c/bank/TEST_BANK_GET/content/1").await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.get("/c/bank/TEST_BANK_GET/content/abc").await.0, StatusCode::NOT_FOUND);
    let (status, body) =
        s.post("/c/bank/TEST_BANK_GET/signal", json!({ "pdq": PDQ_EXAMPLES[14], "note": "from the tests" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["id"].as_i64().unwrap();
    let path = format!("/c/bank/TEST_BANK_GET/content/{id}");
    let (status, body) = s.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((body["id"].clone(), body["disable_until_ts"].clone()), (json!(id), json!(1)));
    assert_eq!(body["note"], json!("from the tests"));
    assert!(body.get("signals").is_none());
    assert_eq!(body["original_media_uri"], Value::Null);
    assert_eq!(s.get(&format!("{path}?include_signals=true")).await.1["signals"], json!({ "pdq": PDQ_EXAMPLES[14] }));

    let lookup = format!("/m/lookup?signal_type=pdq&signal={}", PDQ_EXAMPLES[14]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let later = now + 365 * 24 * 3600;
    let (status, body) = s.put(&path, json!({ "disable_until_ts": later })).await;
    assert_eq!((status, body["disable_until_ts"].clone()), (StatusCode::OK, json!(later)), "{body}");
    assert_eq!(s.get(&lookup).await.1, json!({}), "disabled until next year");
    assert_eq!(s.put(&path, json!({ "disable_until_ts": 9_999_999_999i64 })).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(s.put(&path, json!({ "disable_until_ts": -5 })).await.0, StatusCode::BAD_REQUEST);
    s.put(&path, json!({ "disable_until_ts": 0 })).await;
    assert_eq!(s.get(&lookup).await.1, json!({}), "disabled forever");
    s.put(&path, json!({ "disable_until_ts": 1 })).await;
    assert_eq!(s.get(&lookup).await.1["TEST_BANK_GET"][0]["bank_content_id"], json!(id));
    s.put(&path, json!({ "disable_until_ts": now - 10 })).await;
    assert_eq!(s.get(&lookup).await.1["TEST_BANK_GET"][0]["bank_content_id"], json!(id), "past dates enable");
    assert_eq!(s.put(&path, json!({ "note": "x".repeat(256) })).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(s.put(&path, json!({ "note": "é".repeat(255) })).await.0, StatusCode::OK);

    assert_eq!(s.delete(&path).await, (StatusCode::OK, json!({ "deleted": 1 })));
    assert_eq!(s.delete(&path).await, (StatusCode::OK, json!({ "deleted": 0 })));
    assert_eq!(s.get(&path).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.get(&lookup).await.1, json!({}));
    // No stale ids: raw_lookup forgets it at once.
    assert_eq!(
        ids(&s.get(&format!("/m/raw_lookup?signal_type=pdq&signal={}", PDQ_EXAMPLES[14])).await.1),
        Vec::<i64>::new()
    );
}

/// Video MD5 is normalised (trimmed, lowercased) and matched exactly, with
/// HMA's "-" distance; bad signals get HMA's messages.
async fn video_md5_and_bad_signals(s: Hma) {
    s.create_bank("VIDEOS").await;
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let (status, body) =
        s.post("/c/bank/VIDEOS/signal", json!({ "video_md5": format!(" {} ", md5.to_uppercase()) })).await;
    assert_eq!((status, body["signals"].clone()), (StatusCode::OK, json!({ "video_md5": md5 })), "{body}");
    assert_eq!(
        s.get(&format!("/m/lookup?signal_type=video_md5&signal={md5}")).await.1,
        json!({ "VIDEOS": [{ "bank_content_id": body["id"], "distance": "-" }] })
    );
    assert_eq!(
        s.post("/c/bank/VIDEOS/signal", json!({ "video_md5": "xyz" })).await,
        (StatusCode::BAD_REQUEST, json!({ "message": "Invalid video_md5 signal: 'xyz' is not a valid MD5 hash" }))
    );
    assert_eq!(
        s.post("/c/bank/VIDEOS/signal", json!({ "tmk": "00" })).await,
        (StatusCode::BAD_REQUEST, json!({ "message": "No such signal type tmk" }))
    );
    assert_eq!(s.post("/c/bank/NOPE/signal", json!({ "pdq": PDQ_EXAMPLES[0] })).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get("/c/signal_type").await.1,
        json!([{ "enabled_ratio": 1.0, "name": "pdq" }, { "enabled_ratio": 1.0, "name": "video_md5" }])
    );
    assert_eq!(
        s.get("/c/content_type").await.1,
        json!([{ "enabled": true, "name": "photo" }, { "enabled": true, "name": "video" }])
    );
}

/// frankly beyond HMA: a negative bank's match suppresses every match.
async fn negative_banks_suppress(s: Hma) {
    s.create_bank("ABUSE").await;
    s.add_pdq("ABUSE", PDQ_EXAMPLES[0]).await;
    let (status, _) = s.post("/c/banks", json!({ "name": "KNOWN_GOOD", "negative": true })).await;
    assert_eq!(status, StatusCode::CREATED);
    let q = |h: &str| format!("/m/lookup?signal_type=pdq&signal={h}");
    assert_eq!(s.get(&q(PDQ_EXAMPLES[0])).await.1["ABUSE"].as_array().unwrap().len(), 1);
    s.add_pdq("KNOWN_GOOD", PDQ_EXAMPLES[1]).await;
    assert_eq!(s.get(&q(PDQ_EXAMPLES[0])).await.1, json!({}));
}

/// Every `/c`, `/m` and `/h` route needs a key with its scope; a revoked
/// key is refused; `match_api_open_scopes` opens one scope.
async fn keys_and_scopes(s: Hma) {
    let (status, body) = s.call_with(Method::GET, "/c/banks", None, None).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({ "message": "Authentication required" })));
    let (status, _) = s.call_with(Method::GET, "/c/banks", Some("frk_1_AAAA"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (id, matcher) =
        frankly_server::create_api_key(s.h.state.db(), "tests", "matcher", &[Scope::Match], None).await.unwrap();
    let lookup = format!("/m/raw_lookup?signal_type=pdq&signal={}", PDQ_EXAMPLES[0]);
    assert_eq!(s.call_with(Method::GET, &lookup, Some(&matcher), None).await.0, StatusCode::OK);
    assert_eq!(
        s.call_with(Method::GET, "/c/banks", Some(&matcher), None).await,
        (StatusCode::FORBIDDEN, json!({ "message": "this API key lacks the 'curate' scope" }))
    );
    // A key with the right id and a wrong secret is refused.
    let forged = format!("frk_{id}_{}", "A".repeat(43));
    assert_eq!(s.call_with(Method::GET, &lookup, Some(&forged), None).await.0, StatusCode::UNAUTHORIZED);
    assert!(frankly_server::revoke_api_key(s.h.state.db(), "tests", id).await.unwrap());
    assert_eq!(s.call_with(Method::GET, &lookup, Some(&matcher), None).await.0, StatusCode::UNAUTHORIZED);

    let open = Harness::start(Engine::Sqlite, |c| {
        c.match_api = true;
        c.match_api_open_scopes = vec!["match".into()];
    })
    .await
    .unwrap();
    let open = Hma { h: open, key: String::new() };
    assert_eq!(open.call_with(Method::GET, &lookup, None, None).await.0, StatusCode::OK);
    assert_eq!(open.call_with(Method::GET, "/c/banks", None, None).await.0, StatusCode::UNAUTHORIZED);
}

/// With `match_api` off (the default) none of it exists.
#[tokio::test]
async fn the_match_api_is_off_by_default() {
    let h = Harness::start(Engine::Sqlite, |_| {}).await.unwrap();
    for path in ["/c/banks", "/m/raw_lookup?signal_type=pdq&signal=00", "/status"] {
        let (status, _, _) = h.request(Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

/// A multipart body: `(field, file name, bytes)` parts (file name `None`
/// for a text field); returns its content type and bytes.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "frankly-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(file) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Hma {
    async fn upload(
        &self,
        path: &str,
        key: Option<&str>,
        parts: &[(&str, Option<&str>, &[u8])],
    ) -> (StatusCode, Value) {
        let (content_type, body) = multipart(parts);
        let mut req = Request::post(path).header(header::CONTENT_TYPE, content_type);
        if let Some(key) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let (status, headers, bytes) = self.h.request(req.body(Body::from(body)).unwrap()).await;
        assert!(headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json")));
        (status, serde_json::from_slice(&bytes).unwrap())
    }
}

/// The shared corpus photos with HMA's PDQ of each (Pillow's pixels, Meta's
/// C++), from `tests/vectors/pdq-pillow/shared-corpus.json`.
fn pillow_references() -> Vec<(String, Vec<u8>, String, u64)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("tests/vectors/pdq-pillow/shared-corpus.json")).unwrap();
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    rows.iter()
        .filter_map(|r| {
            let file = r.get("file")?.as_str()?.to_owned();
            let bytes = std::fs::read(root.join("../shared/corpus").join(&file))
                .unwrap_or_else(|e| panic!("{file}: {e} (../shared/corpus is needed)"));
            Some((file, bytes, r["pdq"].as_str()?.to_owned(), r["quality"].as_u64()?))
        })
        .collect()
}

/// `POST /h/hash` on every shared photo gives HMA's answer: the PDQ of
/// Pillow's pixels, or "" under quality 50.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_hash_as_hma_on_every_shared_photo() {
    let s = Hma::start(Engine::Sqlite).await.unwrap();
    let photos = pillow_references();
    assert_eq!(photos.len(), 58);
    for (file, bytes, pdq, quality) in &photos {
        let (status, body) = s.upload("/h/hash", Some(&s.key), &[("photo", Some(file), bytes)]).await;
        assert_eq!(status, StatusCode::OK, "{file}: {body}");
        let want = if *quality < 50 { "" } else { pdq.as_str() };
        assert_eq!(body, json!({ "pdq": want }), "{file}");
    }
}

/// Upload errors name the problem, with HMA's texts where HMA has them;
/// the key is checked before the body is read.
async fn uploads_refuse_what_hma_refuses(s: Hma) {
    let photo = &pillow_references()[0];
    let bytes = photo.1.as_slice();
    assert_eq!(s.upload("/h/hash", None, &[("photo", Some("a.jpg"), bytes)]).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, _) = s.h.request(Request::post("/h/hash").body(Body::from("garbage")).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the key comes before the body");
    let key = Some(s.key.as_str());
    assert_eq!(
        s.upload("/h/hash", key, &[("note", None, b"hi")]).await,
        (StatusCode::BAD_REQUEST, json!({ "message": "Missing multipart/form-data file upload" }))
    );
    assert_eq!(
        s.upload("/h/hash", key, &[("photo", Some("a"), bytes), ("video", Some("b"), bytes)]).await,
        (StatusCode::BAD_REQUEST, json!({ "message": "Only one file allowed per request" }))
    );
    assert_eq!(
        s.upload("/h/hash", key, &[("file", Some("a"), bytes)]).await,
        (StatusCode::BAD_REQUEST, json!({ "message": "no such content_type: 'file'" }))
    );
    let (status, body) = s.upload("/h/hash", key, &[("photo", Some("a"), b"not an image")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().starts_with("the photo could not be decoded: "), "{body}");
    assert_eq!(
        s.upload("/h/hash?types=video_md5", key, &[("photo", Some("a"), bytes)]).await,
        (StatusCode::BAD_REQUEST, json!({ "message": "signal type 'video_md5' doesn't exist or is disabled" }))
    );
    assert_eq!(
        s.upload("/h/hash", key, &[("video", Some("a.mp4"), b"")]).await,
        (StatusCode::OK, json!({ "video_md5": "d41d8cd98f00b204e9800998ecf8427e" }))
    );
    let huge = vec![0u8; frankly_server::MAX_UPLOAD_BYTES + 1];
    assert_eq!(s.upload("/h/hash", key, &[("video", Some("a.mp4"), &huge)]).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = s.call(Method::GET, "/h/hash?url=https://example.com/a.jpg", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "url= fetching is off");
}

/// Content uploaded with metadata and a note is banked, found by
/// `POST /m/lookup` (coin flip bypassed only by exactly "true"), and its
/// metadata comes back on request.
async fn uploaded_content_is_banked_and_found(s: Hma) {
    let (file, bytes, pdq, _) = pillow_references().into_iter().find(|p| p.3 >= 50).unwrap();
    s.create_bank("UPLOADS").await;
    let key = Some(s.key.as_str());
    let metadata =
        br#"{"content_id": "ext-id-123", "content_uri": "https://example.com/item/123", "json": {"source": "test"}}"#;
    let (status, body) = s
        .upload(
            "/c/bank/UPLOADS/content",
            key,
            &[("photo", Some(&file), &bytes), ("metadata", None, metadata), ("note", None, b"seen in report 7")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["id"].as_i64().unwrap();
    assert_eq!(body, json!({ "id": id, "signals": { "pdq": pdq } }));
    let (_, content) = s.get(&format!("/c/bank/UPLOADS/content/{id}")).await;
    assert_eq!(
        content["metadata"],
        json!({ "collab": null, "content_id": "ext-id-123", "content_uri": "https://example.com/item/123", "json": { "source": "test" } })
    );
    assert_eq!(content["note"], json!("seen in report 7"));

    let (status, found) = s.upload("/m/lookup", key, &[("photo", Some(&file), &bytes)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found, json!({ "pdq": { "UPLOADS": [{ "bank_content_id": id, "distance": "0" }] } }));
    let (_, found) = s.upload("/m/lookup?include_metadata=true", key, &[("photo", Some(&file), &bytes)]).await;
    assert_eq!(found["pdq"]["UPLOADS"][0]["metadata"]["content_id"], json!("ext-id-123"));
    assert_eq!(found["pdq"]["UPLOADS"][0]["note"], json!("seen in report 7"));
    let (_, found) = s.get(&format!("/m/lookup?signal_type=pdq&signal={pdq}&include_metadata=1")).await;
    assert_eq!(found["UPLOADS"][0]["metadata"]["json"], json!({ "source": "test" }));
    s.put("/c/bank/UPLOADS", json!({ "enabled_ratio": 0.0 })).await;
    assert_eq!(s.upload("/m/lookup?seed=1", key, &[("photo", Some(&file), &bytes)]).await.1, json!({ "pdq": {} }));
    assert_eq!(
        s.upload("/m/lookup?seed=1&bypass_coinflip=True", key, &[("photo", Some(&file), &bytes)]).await.1,
        json!({ "pdq": {} })
    );
    assert_eq!(
        s.upload("/m/lookup?bypass_coinflip=true", key, &[("photo", Some(&file), &bytes)]).await.1["pdq"]["UPLOADS"][0]
            ["bank_content_id"],
        json!(id)
    );

    // HMA's metadata and source errors.
    for (metadata, message) in [
        (&br#"{"invalid_metadata": 5}"#[..], "Invalid metadata: invalid_metadata: Extra inputs are not permitted"),
        (b"{not json", "metadata form field must be valid JSON"),
        (b"[1]", "metadata should be a json object"),
        (br#"{"content_id": 5}"#, "Invalid metadata: content_id: Input should be a valid string"),
    ] {
        assert_eq!(
            s.upload("/c/bank/UPLOADS/content", key, &[("photo", Some(&file), &bytes), ("metadata", None, metadata)])
                .await,
            (StatusCode::BAD_REQUEST, json!({ "message": message }))
        );
    }
    assert_eq!(
        s.post("/c/bank/UPLOADS/content", json!({ "metadata": { "content_id": "1" } })).await,
        (StatusCode::BAD_REQUEST, json!({ "message": "Neither `url` nor multipart file upload was received" }))
    );
    assert_eq!(
        s.post("/c/bank/UPLOADS/content", json!({ "note": "x".repeat(256) })).await,
        (StatusCode::BAD_REQUEST, json!({ "message": "note must be at most 255 characters" }))
    );
    assert_eq!(
        s.post("/c/bank/UPLOADS/content?url=https://example.com/a.jpg&content_type=photo", json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(s.upload("/c/bank/NOPE/content", key, &[("photo", Some(&file), &bytes)]).await.0, StatusCode::NOT_FOUND);
    // A flat photo hashes to "" and cannot be banked.
    let mut flat = Vec::new();
    image::RgbImage::from_pixel(64, 64, image::Rgb([9, 9, 9]))
        .write_to(&mut std::io::Cursor::new(&mut flat), image::ImageFormat::Png)
        .unwrap();
    assert_eq!(
        s.upload("/c/bank/UPLOADS/content", key, &[("photo", Some("flat.png"), &flat)]).await,
        (StatusCode::BAD_REQUEST, json!({ "message": "Invalid pdq signal: invalid PDQ hash" }))
    );
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(s) = super::Hma::start(super::Engine::Sqlite).await {
                    super::$name(s).await;
                }
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(s) = super::Hma::start(super::Engine::Postgres).await {
                    super::$name(s).await;
                }
            })*
        }
    };
}

on_both!(
    status_is_alive,
    banks_follow_hma,
    lookups_are_exact,
    bank_filters_and_coin_flips,
    content_can_be_disabled_noted_and_deleted,
    video_md5_and_bad_signals,
    negative_banks_suppress,
    keys_and_scopes,
    uploads_refuse_what_hma_refuses,
    uploaded_content_is_banked_and_found,
);

/// Admins make and revoke keys in the web UI; the key is shown once, only
/// its hash is stored, and both changes are in the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_keys_in_the_web_ui() {
    let s = Hma::start(Engine::Sqlite).await.unwrap();
    let moderator = s.h.sign_in("mod", frankly_review::Role::Moderator).await;
    assert_eq!(s.h.get("/admin/keys", Some(&moderator.cookie)).await.0, StatusCode::FORBIDDEN);
    let admin = s.h.sign_in("boss", frankly_review::Role::Admin).await;
    let (status, _, page) = s.h.get("/admin/keys", Some(&admin.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("tests") && page.contains("curate,hash,match"), "the harness's key is listed");
    let (status, _, _) =
        s.h.post_form("/admin/keys", Some(&admin.cookie), &[("csrf", "wrong"), ("name", "x"), ("match", "on")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "CSRF is checked");
    let (status, _, page) =
        s.h.post_form(
            "/admin/keys",
            Some(&admin.cookie),
            &[("csrf", &admin.csrf), ("name", "policyserv"), ("match", "on"), ("hash", "on")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let key = page
        .split("id=\"new-key\"")
        .next()
        .unwrap()
        .rsplit("value=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(key.starts_with("frk_2_"), "{key}");
    let lookup = format!("/m/raw_lookup?signal_type=pdq&signal={}", PDQ_EXAMPLES[0]);
    assert_eq!(s.call_with(Method::GET, &lookup, Some(&key), None).await.0, StatusCode::OK);
    assert_eq!(s.call_with(Method::GET, "/c/banks", Some(&key), None).await.0, StatusCode::FORBIDDEN);
    let (_, _, again) = s.h.get("/admin/keys", Some(&admin.cookie)).await;
    assert!(!again.contains(&key), "a key is shown once");
    let (_, _, none) =
        s.h.post_form("/admin/keys", Some(&admin.cookie), &[("csrf", &admin.csrf), ("name", "nothing")]).await;
    assert!(none.contains("at least one scope"), "{none}");
    let (status, _, _) = s.h.post_form("/admin/keys/2/revoke", Some(&admin.cookie), &[("csrf", &admin.csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(s.call_with(Method::GET, &lookup, Some(&key), None).await.0, StatusCode::UNAUTHORIZED);
    let (_, _, audit) = s.h.get("/admin/audit", Some(&admin.cookie)).await;
    assert!(audit.contains("create-api-key") && audit.contains("revoke-api-key"), "audited");
}
