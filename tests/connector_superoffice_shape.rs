//! Request shapes against the documented samples (`../shared/reference/superoffice/http/`):
//! the exact URLs, query strings, headers and bodies, with a mock server in SuperOffice's place.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use crmsync::connector::model::{CrmId, DiaryItem, Item, Kind, ShowAs, Version, When, Window};
use crmsync::connector::superoffice::cursor::{AppointmentCursor, Feed, LogFeed};
use crmsync::connector::superoffice::{SuperOfficeClient, SuperOfficeOptions};
use crmsync::connector::{ConnectorError, CrmConnector};
use crmsync::settings::{CallBudget, Secret, SuperOfficeAuth, SuperOfficeSettings};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CTX: &str = "Cust12345";
const SECRET: &str = "f2398a3a7wer3759d4b220e9a9c94321";
const TOKEN: &str = "SysUserToken-abc.def";
const TICKET: &str = "7T:MAA3AGYAMQBlAGQAZAAxAGQAZQAwADgAYgAxAGEAYwBkADYAOAA0ADcAMQA2ADkAOQBhADQAZgBiADMAOQAyADsAMgAwADgANwAzADEANQAwADQAMwA7AEMAdQBzAHQAMgA2ADcANQA5AA==";

fn partner_key() -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(crmsync::sandbox::scenario::SANDBOX_PARTNER_PRIVATE_KEY_PEM)
        .unwrap()
}

/// SuperID's key in these tests (any RSA key will do).
fn superid_key() -> RsaPrivateKey {
    partner_key()
}

fn reference(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/superoffice")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn reference_text(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/superoffice")
        .join(name);
    std::fs::read_to_string(&path).unwrap()
}

fn jwt(key: &RsaPrivateKey, claims: Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "superid-1"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

fn jwks(key: &RsaPublicKey) -> Value {
    json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "superid-1",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()), "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())}]})
}

fn online_settings(server: &MockServer) -> SuperOfficeSettings {
    SuperOfficeSettings {
        base_url: url::Url::parse(&server.uri()).unwrap(),
        auth: SuperOfficeAuth::SystemUser {
            context_identifier: CTX.into(),
            client_secret: Secret::new(SECRET),
            private_key: Secret::new(crmsync::sandbox::scenario::SANDBOX_PARTNER_PRIVATE_KEY_PEM),
            system_user_token: Secret::new(TOKEN),
        },
        budget: CallBudget::default(),
    }
}

/// A clock tests move.
fn clock() -> (Arc<AtomicI64>, SuperOfficeOptions) {
    let offset = Arc::new(AtomicI64::new(0));
    let o = offset.clone();
    let options = SuperOfficeOptions {
        clock: Arc::new(move || {
            jiff::Timestamp::now() + jiff::SignedDuration::from_secs(o.load(Ordering::SeqCst))
        }),
        backoff: crmsync::limits::Backoff {
            base: std::time::Duration::from_millis(5),
            max: std::time::Duration::from_millis(20),
            retries: 2,
        },
        ..SuperOfficeOptions::default()
    };
    (offset, options)
}

fn state_doc(server: &MockServer, api_path: &str) -> Value {
    let mut doc = reference("tenant-state.json");
    doc["Api"] = json!(format!("{}{api_path}", server.uri()));
    doc["Endpoint"] = json!(format!("{}/{CTX}", server.uri()));
    doc["ValidUntil"] =
        json!((jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string());
    doc
}

/// The environment host: authentication, SuperID's keys, the tenant status.
async fn environment(server: &MockServer, superid: &RsaPrivateKey) {
    let token = jwt(
        superid,
        json!({
            "http://schemes.superoffice.net/identity/ticket": TICKET,
            "http://schemes.superoffice.net/identity/ctx": CTX,
            "iss": "SuperOffice AS",
        }),
    );
    Mock::given(method("POST"))
        .and(path("/Login/api/PartnerSystemUser/Authenticate"))
        .and(header("content-type", "application/json"))
        .and(header("accept", "application/json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"IsSuccessful": true, "ErrorMessage": "", "Token": token})),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/login/.well-known/jwks"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(jwks(&superid_key().to_public_key())),
        )
        .mount(server)
        .await;
}

fn appointment(id: u32) -> Value {
    let mut e = reference("appointment-entity.json");
    e["AppointmentId"] = json!(id);
    e["Associate"] = json!({"AssociateId": 102});
    e["Type"] = json!("inDiary");
    e["MotherId"] = json!(0);
    e["Task"] = json!({"TaskListItemId": 1, "Value": "Meeting", "Type": "Appointment"});
    e["StartDate"] = json!("2026-12-10T09:00:00+00:00");
    e["EndDate"] = json!("2026-12-10T10:00:00+00:00");
    e["UpdatedDate"] = json!("2026-11-22T09:14:07Z");
    e["AlarmLeadTime"] = json!("00:15:00");
    e
}

fn api_headers() -> [(&'static str, &'static str); 4] {
    [
        (
            "authorization",
            "SOTicket 7T:MAA3AGYAMQBlAGQAZAAxAGQAZQAwADgAYgAxAGEAYwBkADYAOAA0ADcAMQA2ADkAOQBhADQAZgBiADMAOQAyADsAMgAwADgANwAzADEANQAwADQAMwA7AEMAdQBzAHQAMgA2ADcANQA5AA==",
        ),
        ("so-apptoken", SECRET),
        ("so-timezone", "UTC, includeTZOffset"),
        ("accept", "application/json"),
    ]
}

#[tokio::test]
async fn the_system_user_flow_sends_the_documented_requests() {
    let server = MockServer::start().await;
    environment(&server, &superid_key()).await;
    Mock::given(method("GET"))
        .and(path(format!("/api/state/{CTX}")))
        .and(header("accept", "application/json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(state_doc(&server, &format!("/{CTX}/api"))),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut get = Mock::given(method("GET")).and(path(format!("/{CTX}/api/v1/Appointment/4")));
    for (name, value) in api_headers() {
        get = get.and(exact(name, value));
    }
    get.respond_with(ResponseTemplate::new(200).set_body_json(appointment(4)))
        .expect(2)
        .mount(&server)
        .await;
    let (_, options) = clock();
    let client = SuperOfficeClient::new(&online_settings(&server), options).unwrap();
    let read = client
        .get(Kind::Diary, CrmId(4))
        .await
        .unwrap()
        .expect("read");
    assert_eq!(read.version, Version("2026-11-22T09:14:07Z".into()));
    client.get(Kind::Diary, CrmId(4)).await.unwrap();

    // The exchange's body: the fields of PartnerSystemUserService.http, and a token signed as
    // SuperOffice verifies it.
    let sample = reference_text("http/PartnerSystemUserService.http");
    let requests = server.received_requests().await.unwrap();
    let exchange = requests
        .iter()
        .find(|r| r.url.path().ends_with("/Authenticate"))
        .unwrap();
    let body: Value = serde_json::from_slice(&exchange.body).unwrap();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "ApplicationToken",
            "ContextIdentifier",
            "ReturnTokenType",
            "SignedSystemToken"
        ]
    );
    for key in &keys {
        assert!(
            sample.contains(&format!("\"{key}\"")),
            "{key} is in the sample"
        );
    }
    assert_eq!(body["ApplicationToken"], SECRET);
    assert_eq!(body["ContextIdentifier"], CTX);
    assert_eq!(body["ReturnTokenType"], "JWT");
    let signed = body["SignedSystemToken"].as_str().unwrap();
    let mut parts = signed.rsplitn(3, '.');
    let signature = STANDARD.decode(parts.next().unwrap()).unwrap();
    let stamp = parts.next().unwrap();
    assert_eq!(parts.next(), Some(TOKEN));
    assert_eq!(stamp.len(), 12);
    // yyyyMMddHHmm in UTC, the minute it was signed.
    let signed_at = jiff::civil::DateTime::strptime("%Y%m%d%H%M", stamp)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    assert!((jiff::Timestamp::now() - signed_at).get_minutes() <= 5);
    VerifyingKey::<Sha256>::new(partner_key().to_public_key())
        .verify(
            format!("{TOKEN}.{stamp}").as_bytes(),
            &Signature::try_from(signature.as_slice()).unwrap(),
        )
        .expect("the signature verifies with the application's public key");
    assert_eq!(client.tickets_issued(), 1, "the ticket is reused");
}

#[tokio::test]
async fn a_ticket_jwt_that_does_not_verify_is_refused() {
    let server = MockServer::start().await;
    let forger = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
    environment(&server, &forger).await;
    Mock::given(method("GET"))
        .and(path(format!("/api/state/{CTX}")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(state_doc(&server, &format!("/{CTX}/api"))),
        )
        .mount(&server)
        .await;
    let (_, options) = clock();
    let client = SuperOfficeClient::new(&online_settings(&server), options).unwrap();
    match client.get(Kind::Diary, CrmId(4)).await {
        Err(ConnectorError::Service { what, .. }) => {
            assert!(what.contains("does not verify"), "{what}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_421_reads_the_status_again_and_the_status_is_read_again_at_valid_until() {
    let server = MockServer::start().await;
    environment(&server, &superid_key()).await;
    // First the tenant is said to be on one host; it has moved.
    Mock::given(method("GET"))
        .and(path(format!("/api/state/{CTX}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(state_doc(&server, &format!("/old/{CTX}/api"))),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/state/{CTX}")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(state_doc(&server, &format!("/{CTX}/api"))),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/old/{CTX}/api/v1/Appointment/4")))
        .respond_with(ResponseTemplate::new(421).set_body_json(json!({"Error": true, "ErrorType": "MisdirectedRequest", "ErrorMessage": "Wrong subdomain used to access tenant"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/{CTX}/api/v1/Appointment/4")))
        .respond_with(ResponseTemplate::new(200).set_body_json(appointment(4)))
        .mount(&server)
        .await;
    let (offset, options) = clock();
    let client = SuperOfficeClient::new(&online_settings(&server), options).unwrap();
    assert!(client.get(Kind::Diary, CrmId(4)).await.unwrap().is_some());
    assert_eq!(client.tenant_resolutions(), 2);
    client.get(Kind::Diary, CrmId(4)).await.unwrap();
    assert_eq!(client.tenant_resolutions(), 2, "valid until ValidUntil");
    offset.store(2 * 3600, Ordering::SeqCst);
    client.get(Kind::Diary, CrmId(4)).await.unwrap();
    assert_eq!(
        client.tenant_resolutions(),
        3,
        "read again after ValidUntil"
    );
}

fn basic_settings(server: &MockServer) -> SuperOfficeSettings {
    SuperOfficeSettings {
        base_url: url::Url::parse(&format!("{}/SuperOffice", server.uri())).unwrap(),
        auth: SuperOfficeAuth::Basic {
            username: "crmsync".into(),
            password: Secret::new("p@ss:word"),
        },
        budget: CallBudget::default(),
    }
}

fn empty_list() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"odata.metadata": "x", "odata.nextLink": null, "value": []}))
}

#[tokio::test]
async fn basic_authentication_and_the_associate_archive() {
    let server = MockServer::start().await;
    let basic = format!("Basic {}", STANDARD.encode("crmsync:p@ss:word"));
    let answer = reference("internalusers-archive-response.json");
    Mock::given(method("GET"))
        .and(path("/SuperOffice/api/v1/Archive/InternalUsers"))
        .and(header("authorization", basic.as_str()))
        .and(exact("so-timezone", "UTC, includeTZOffset"))
        .and(header("accept", "application/json"))
        .and(query_param(
            "$select",
            "associateDbId,assocName,userName,fullName,personId,personEmail,isActive",
        ))
        .and(query_param("$orderby", "associateDbId"))
        .and(query_param("$entities", "all,retired"))
        .and(query_param("$top", "500"))
        .and(query_param("$skip", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(&server)
        .await;
    let client =
        SuperOfficeClient::new(&basic_settings(&server), SuperOfficeOptions::default()).unwrap();
    let associates = client.associates().await.unwrap();
    // The documented answer: PrimaryKey "5", personId 5, no e-mail column.
    assert_eq!(associates.len(), 1);
    assert_eq!(associates[0].id, 5);
    assert_eq!(associates[0].person_id, Some(5));
    assert_eq!(associates[0].email, None);
    // The sample collection's form: `archive/internalusers?$select=associateDbId,...`.
    let sample = reference_text("http/Archive.http");
    assert!(
        sample.contains(
            "v1/archive/internalusers?$select=associateDbId,fullName,personId,personEmail"
        )
    );
}

#[tokio::test]
async fn the_rank_wide_change_query_and_the_travel_log_query() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/SuperOffice/api/v1/Appointment"))
        .and(query_param("$select", "appointmentId,associateId,updatedDate,recurrenceRuleId"))
        .and(query_param(
            "$filter",
            "associateId associateIsOneOf (101,102,105) and rawType eq 1 and recordType isNot 'ToDo' and updatedDate afterTime '2026-11-22T09:12:07'",
        ))
        .and(query_param("$orderby", "appointmentId"))
        .and(query_param("$top", "2"))
        .and(query_param("$skip", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"odata.nextLink": null, "value": [
            {"PrimaryKey": "4", "EntityName": "appointment", "appointmentId": 4, "associateId": 102, "updatedDate": "2026-11-22T09:14:07Z"},
            {"PrimaryKey": "9", "EntityName": "appointment", "appointmentId": 9, "associateId": 102, "updatedDate": "2026-11-22T09:14:07Z"},
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/SuperOffice/api/v1/Appointment"))
        .and(query_param("$skip", "2"))
        .respond_with(empty_list())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/SuperOffice/api/v1/Appointment/4"))
        .respond_with(ResponseTemplate::new(200).set_body_json(appointment(4)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/SuperOffice/api/v1/Appointment/9"))
        .respond_with(ResponseTemplate::new(404).set_body_json(reference("error-response.json")))
        .mount(&server)
        .await;
    // The emulator's documented deletion query (docs/sandbox/superoffice.md), positioned by
    // the log's primary key rather than its local `ttime`.
    Mock::given(method("GET"))
        .and(path("/SuperOffice/api/v1/Archive/dynamic"))
        .and(query_param(
            "$select",
            "traveltransactionlog.traveltransactionlog_id,traveltransactionlog.record_id",
        ))
        .and(query_param(
            "$filter",
            "traveltransactionlog.traveltransactionlog_id gt 70 and traveltransactionlog.tablenumber eq 9 and traveltransactionlog.type eq 4864",
        ))
        .and(query_param("$orderby", "traveltransactionlog.traveltransactionlog_id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [
            {"PrimaryKey": "77", "traveltransactionlog.traveltransactionlog_id": 77, "traveltransactionlog.record_id": 12}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let options = SuperOfficeOptions {
        page_size: 2,
        ..SuperOfficeOptions::default()
    };
    let client = SuperOfficeClient::new(&basic_settings(&server), options).unwrap();
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    let cursor = AppointmentCursor::new(
        Kind::Diary,
        Feed {
            high: Some(at("2026-11-22T09:14:07Z")),
            since: Some(at("2026-11-22T09:12:07Z")),
            seen: vec![],
        },
        LogFeed::at(Some(70)),
    )
    .encode();
    let window = Window {
        start: at("2026-11-01T00:00:00Z"),
        end: at("2027-03-01T00:00:00Z"),
    };
    let changes = client
        .changes(&[105, 101, 102, 101], Kind::Diary, Some(&cursor), &window)
        .await
        .unwrap();
    assert_eq!(
        changes.by_associate.keys().copied().collect::<Vec<_>>(),
        vec![102]
    );
    assert_eq!(
        changes.by_associate[&102].len(),
        1,
        "the one deleted meanwhile is left out"
    );
    assert_eq!(changes.deleted, vec![CrmId(12)]);
    // Every list request asks for one of SuperOffice's documented operators, and no `le`/`ge`.
    for r in server.received_requests().await.unwrap() {
        let query = r.url.query().unwrap_or_default().to_string();
        assert!(
            !query.contains("%20le%20") && !query.contains("%20ge%20"),
            "{query}"
        );
    }
}

fn diary_item() -> Item {
    Item::Diary(DiaryItem {
        subject: "id".into(),
        body: "Moved to Bergen".into(),
        when: When::Timed {
            start: "2026-12-10T09:00:00Z".parse().unwrap(),
            end: "2026-12-10T10:00:00Z".parse().unwrap(),
        },
        location: "Bergen".into(),
        private: true,
        show_as: ShowAs::Busy,
        reminder_minutes: Some(15),
        task_type: Some("Meeting".into()),
        organized_by_other: false,
        series: None,
    })
}

#[tokio::test]
async fn updates_are_json_patches_with_if_unmodified_since_and_creates_start_from_defaults() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/SuperOffice/api/v1/Appointment/4"))
        .respond_with(ResponseTemplate::new(200).set_body_json(appointment(4)))
        .mount(&server)
        .await;
    let mut updated = appointment(4);
    updated["UpdatedDate"] = json!("2026-11-22T10:00:00Z");
    Mock::given(method("PATCH"))
        .and(path("/SuperOffice/api/v1/Appointment/4"))
        .and(exact(
            "if-unmodified-since",
            "Sun, 22 Nov 2026 09:14:07 GMT",
        ))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(updated))
        .expect(1)
        .mount(&server)
        .await;
    let client =
        SuperOfficeClient::new(&basic_settings(&server), SuperOfficeOptions::default()).unwrap();
    let written = client
        .update(
            CrmId(4),
            &diary_item(),
            &Version("2026-11-22T09:14:07Z".into()),
        )
        .await
        .unwrap();
    assert_eq!(written.version, Version("2026-11-22T10:00:00Z".into()));
    let requests = server.received_requests().await.unwrap();
    let patch: Value = serde_json::from_slice(
        &requests
            .iter()
            .find(|r| r.method.as_str() == "PATCH")
            .unwrap()
            .body,
    )
    .unwrap();
    // Only what differs from the entity as it is (the sample: Title "id", Private
    // "PrivateGroup", no alarm), as JSON Patch `replace` operations.
    assert_eq!(
        patch,
        json!([
            {"op": "replace", "path": "Description", "value": "Moved to Bergen"},
            {"op": "replace", "path": "Location", "value": "Bergen"},
            {"op": "replace", "path": "HasAlarm", "value": true},
            {"op": "replace", "path": "AlarmLeadTime", "value": "00:15:00"},
        ])
    );

    // Create: defaults for (type, associate), then POST the entity.
    Mock::given(method("POST"))
        .and(path("/SuperOffice/api/v1/Agents/Appointment/CreateDefaultAppointmentEntityByTypeAndAssociate"))
        .and(wiremock::matchers::body_json(json!({"Type": 1, "AssociateId": 102})))
        .respond_with(ResponseTemplate::new(200).set_body_json(appointment(0)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/SuperOffice/api/v1/List/Task/Items"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"TaskListItemId": 1, "Value": "Meeting", "Type": "Appointment", "Deleted": false}])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/SuperOffice/api/v1/Appointment"))
        .respond_with(ResponseTemplate::new(200).set_body_json(appointment(4712)))
        .expect(1)
        .mount(&server)
        .await;
    let created = client.create(102, &diary_item()).await.unwrap();
    assert_eq!(created.id, CrmId(4712));
    let requests = server.received_requests().await.unwrap();
    let post: Value = serde_json::from_slice(
        &requests
            .iter()
            .rev()
            .find(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/Appointment"))
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(post["StartDate"], "2026-12-10T09:00:00");
    assert_eq!(post["EndDate"], "2026-12-10T10:00:00");
    assert_eq!(post["Location"], "Bergen");
    assert_eq!(post["Private"], "PrivateUser");
    assert_eq!(post["HasAlarm"], true);
    assert_eq!(post["AlarmLeadTime"], "00:15:00");
    assert_eq!(post["Associate"]["AssociateId"], 102);

    // A refused write is that item's problem, with SuperOffice's message.
    Mock::given(method("PATCH"))
        .and(path("/SuperOffice/api/v1/Appointment/5"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"Error": true, "ErrorType": "SoArgumentException", "ErrorMessage": "Location is longer than 254 characters"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/SuperOffice/api/v1/Appointment/5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(appointment(5)))
        .mount(&server)
        .await;
    match client
        .update(
            CrmId(5),
            &diary_item(),
            &Version("2026-11-22T09:14:07Z".into()),
        )
        .await
    {
        Err(ConnectorError::Item { what, .. }) => {
            assert!(what.contains("longer than 254"), "{what}")
        }
        other => panic!("{other:?}"),
    }
}

/// A header's whole value (wiremock's `header` splits values at commas, and
/// `UTC, includeTZOffset` and HTTP dates have one).
struct Exact(&'static str, String);

impl wiremock::Match for Exact {
    fn matches(&self, request: &Request) -> bool {
        request.headers.get(self.0).and_then(|v| v.to_str().ok()) == Some(self.1.as_str())
    }
}

fn exact(name: &'static str, value: &str) -> Exact {
    Exact(name, value.to_string())
}

/// Refuses URLs longer than `max` as IIS does (414).
struct LongerThan(usize);

impl wiremock::Match for LongerThan {
    fn matches(&self, request: &Request) -> bool {
        request.url.as_str().len() > self.0
    }
}

#[tokio::test]
async fn associate_lists_too_long_for_the_server_are_split_further() {
    let server = MockServer::start().await;
    Mock::given(LongerThan(4096))
        .respond_with(ResponseTemplate::new(414))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/SuperOffice/api/v1/Appointment"))
        .respond_with(empty_list())
        .mount(&server)
        .await;
    let client =
        SuperOfficeClient::new(&basic_settings(&server), SuperOfficeOptions::default()).unwrap();
    let rank: Vec<u32> = (100_000..101_000).collect();
    let window = Window {
        start: "2026-11-01T00:00:00Z".parse().unwrap(),
        end: "2027-03-01T00:00:00Z".parse().unwrap(),
    };
    let ids = client
        .ids_in_window(&rank, Kind::Diary, &window)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1000);
    let requests = server.received_requests().await.unwrap();
    let refused = requests
        .iter()
        .filter(|r| r.url.as_str().len() > 4096)
        .count();
    assert_eq!(refused, 1, "one refusal, then shorter lists");
    let ok = requests
        .iter()
        .filter(|r| r.url.as_str().len() <= 4096)
        .count();
    assert!(ok >= 2, "{ok}");
}
