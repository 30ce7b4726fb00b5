//! Events, users and tokens: transactionId, extended properties, change keys, time zones,
//! all-day events, `/users` paging, token expiry.

use std::time::Duration;

use crmsync::sandbox::Scenario;
use crmsync::sandbox::scenario::Generate;
use reqwest::Method;
use serde_json::{Value, json};

use super::{G, STAMP};

#[tokio::test(flavor = "multi_thread")]
async fn a_second_post_with_the_same_transaction_id_creates_nothing() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let body = json!({
        "subject": "CRM 42",
        "transactionId": "crmsync-user1-appointment-42",
        "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-02T10:00:00", "timeZone": "UTC"},
    });
    let first = g.post(&format!("/users/{user}/events"), &body).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["transactionId"], "crmsync-user1-appointment-42");
    // A retry (even with other content) answers the event made the first time.
    let mut retry = body.clone();
    retry["subject"] = json!("changed in the retry");
    let second = g.post(&format!("/users/{user}/events"), &retry).await;
    assert_eq!(second.status, 201);
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(second.body["subject"], "CRM 42");
    let (all, _) = g
        .all_pages(&format!("/users/{user}/events?$top=50"), &[])
        .await;
    let same: Vec<&Value> = all
        .iter()
        .filter(|e| e["transactionId"] == "crmsync-user1-appointment-42")
        .collect();
    assert_eq!(same.len(), 1);
    // Another mailbox has its own transaction ids.
    let other = g
        .post(&format!("/users/{}/events", g.mailbox(1).id), &body)
        .await;
    assert_ne!(other.body["id"], first.body["id"]);

    let id = first.body["id"].as_str().unwrap();
    let change = g
        .patch(
            &format!("/users/{user}/events/{id}"),
            &json!({"transactionId": "other"}),
        )
        .await;
    assert_eq!(change.status, 400);
    let same_value = g
        .patch(
            &format!("/users/{user}/events/{id}"),
            &json!({"transactionId": "crmsync-user1-appointment-42", "subject": "x"}),
        )
        .await;
    assert_eq!(same_value.status, 200, "{}", same_value.body);
    assert_eq!(
        g.delete(&format!("/users/{user}/events/{id}")).await.status,
        204
    );
    let again = g.post(&format!("/users/{user}/events"), &body).await;
    assert_eq!(again.status, 201);
    assert_ne!(
        again.body["id"], first.body["id"],
        "a deleted event does not answer for its transactionId"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_extended_property_filter_finds_exactly_the_stamped_item() {
    let g = G::start().await;
    let user = g.mailbox(1).user_principal_name;
    let mut stamped = Vec::new();
    for i in 0..3 {
        let e = g
            .create_event(
                &user,
                &format!("Stamped {i}"),
                "2026-04-01T09:00:00",
                "2026-04-01T10:00:00",
                json!({"singleValueExtendedProperties": [{"id": STAMP, "value": format!("Appointment-{i}")}]}),
            )
            .await;
        stamped.push(e["id"].as_str().unwrap().to_string());
    }
    let filter = |id: &str, value: &str| {
        format!(
            "/users/{user}/events?$filter=singleValueExtendedProperties/Any(ep: ep/id eq '{id}' and ep/value eq '{value}')"
        )
    };
    let found = g.get(&filter(STAMP, "Appointment-1")).await;
    assert_eq!(found.status, 200, "{}", found.body);
    let ids: Vec<&str> = found.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [stamped[1].as_str()]);
    assert!(
        found.body["value"][0]
            .get("singleValueExtendedProperties")
            .is_none(),
        "$filter does not return the property"
    );
    // The value compares case-insensitively, the GUID too, the name exactly (the docs).
    let upper_guid = STAMP
        .to_uppercase()
        .replace("NAME CRMSYNCID", "Name crmsyncId");
    assert_eq!(
        g.get(&filter(&upper_guid, "APPOINTMENT-1")).await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let other_name = STAMP.replace("crmsyncId", "CRMSYNCID");
    assert_eq!(
        g.get(&filter(&other_name, "Appointment-1")).await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        g.get(&filter(STAMP, "Appointment-9")).await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Stamped afterwards with PATCH, as crmsync does for items that started in the mailbox.
    let plain = g
        .create_event(
            &user,
            "Plain",
            "2026-04-02T09:00:00",
            "2026-04-02T10:00:00",
            json!({}),
        )
        .await;
    let plain_id = plain["id"].as_str().unwrap();
    let stamp = json!({"singleValueExtendedProperties": [{"id": STAMP, "value": "Appointment-7"}]});
    assert_eq!(
        g.patch(&format!("/users/{user}/events/{plain_id}"), &stamp)
            .await
            .status,
        200
    );
    let found = g.get(&filter(STAMP, "Appointment-7")).await;
    assert_eq!(found.body["value"][0]["id"], plain_id);
    let expanded = g
        .get(&format!("/users/{user}/events/{plain_id}?$expand=singleValueExtendedProperties($filter=id eq '{STAMP}')"))
        .await;
    assert_eq!(
        expanded.body["singleValueExtendedProperties"],
        json!([{"id": STAMP, "value": "Appointment-7"}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_write_changes_the_change_key_and_the_modification_time() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let created = g
        .create_event(
            &user,
            "v1",
            "2026-05-01T09:00:00",
            "2026-05-01T10:00:00",
            json!({}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    g.state().clock.advance(Duration::from_secs(60));
    let patched = g
        .patch(
            &format!("/users/{user}/events/{id}"),
            &json!({"subject": "v2"}),
        )
        .await;
    assert_ne!(patched.body["changeKey"], created["changeKey"]);
    assert!(
        patched.body["lastModifiedDateTime"].as_str() > created["lastModifiedDateTime"].as_str()
    );
    assert_eq!(patched.body["createdDateTime"], created["createdDateTime"]);
    assert_eq!(patched.body["id"], created["id"], "ids never change");
    g.state().clock.advance(Duration::from_secs(60));
    let now = g.now();
    let by_user = g
        .state()
        .graph
        .user_update_event(now, &user, &id, &json!({"subject": "v3"}))
        .unwrap();
    assert_ne!(by_user["changeKey"], patched.body["changeKey"]);
    assert!(
        by_user["lastModifiedDateTime"].as_str() > patched.body["lastModifiedDateTime"].as_str()
    );
    // A stale If-Match is refused; the current one is accepted.
    let stale = format!("W/\"{}\"", patched.body["changeKey"].as_str().unwrap());
    let refused = g
        .call(
            Method::PATCH,
            &format!("/users/{user}/events/{id}"),
            Some(&json!({"subject": "v4"})),
            &[("If-Match", &stale)],
        )
        .await;
    assert_eq!(refused.status, 412);
    assert_eq!(refused.code(), "ErrorIrresolvableConflict");
    // Ids are the same with Prefer: IdType="ImmutableId" (they never change here).
    let immutable = g
        .call(
            Method::GET,
            &format!("/users/{user}/events/{id}"),
            None,
            &[("Prefer", "IdType=\"ImmutableId\"")],
        )
        .await;
    assert_eq!(immutable.body["id"], id.as_str());
    assert_eq!(immutable.body["subject"], "v3");
}

#[tokio::test(flavor = "multi_thread")]
async fn times_are_shown_in_the_preferred_zone_and_utc_otherwise() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let created = g
        .post(
            &format!("/users/{user}/events"),
            &json!({
                "subject": "Oslo morning",
                "start": {"dateTime": "2026-01-15T09:00:00", "timeZone": "W. Europe Standard Time"},
                "end": {"dateTime": "2026-01-15T10:30:00.0000000", "timeZone": "Europe/Oslo"},
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body["start"],
        json!({"dateTime": "2026-01-15T08:00:00.0000000", "timeZone": "UTC"})
    );
    assert_eq!(
        created.body["end"]["dateTime"],
        "2026-01-15T09:30:00.0000000"
    );
    assert_eq!(
        created.body["originalStartTimeZone"],
        "W. Europe Standard Time"
    );
    assert_eq!(created.body["originalEndTimeZone"], "Europe/Oslo");
    let id = created.body["id"].as_str().unwrap();
    let calendar = g.get(&format!("/users/{user}/calendar")).await;
    assert_eq!(calendar.body["isDefaultCalendar"], true);
    for (zone, start) in [
        ("Eastern Standard Time", "2026-01-15T03:00:00.0000000"),
        ("Pacific Standard Time", "2026-01-15T00:00:00.0000000"),
        ("America/Chicago", "2026-01-15T02:00:00.0000000"),
        ("FLE Standard Time", "2026-01-15T10:00:00.0000000"),
        ("UTC", "2026-01-15T08:00:00.0000000"),
    ] {
        let prefer = format!("outlook.timezone=\"{zone}\"");
        let answer = g
            .call(
                Method::GET,
                &format!("/users/{user}/events/{id}"),
                None,
                &[("Prefer", &prefer)],
            )
            .await;
        assert_eq!(
            answer.body["start"],
            json!({"dateTime": start, "timeZone": zone}),
            "{zone}"
        );
        assert!(
            answer
                .header("Preference-Applied")
                .unwrap_or("")
                .contains(zone)
        );
    }
    let bad_zone = g
        .post(
            &format!("/users/{user}/events"),
            &json!({"start": {"dateTime": "2026-01-15T09:00:00", "timeZone": "Mars/Olympus"}, "end": {"dateTime": "2026-01-15T10:00:00", "timeZone": "UTC"}}),
        )
        .await;
    assert_eq!(bad_zone.status, 400);
    assert_eq!(bad_zone.code(), "TimeZoneNotSupportedException");
    let backwards = g
        .post(
            &format!("/users/{user}/events"),
            &json!({"start": {"dateTime": "2026-01-15T09:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-01-15T08:00:00", "timeZone": "UTC"}}),
        )
        .await;
    assert_eq!(backwards.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn all_day_events_are_whole_days_in_every_zone() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let post = |start: &str, end: &str, zone: &str| {
        json!({
            "subject": "Holiday",
            "isAllDay": true,
            "start": {"dateTime": start, "timeZone": zone},
            "end": {"dateTime": end, "timeZone": zone},
        })
    };
    for (body, why) in [
        (
            post("2026-07-01T09:00:00", "2026-07-02T00:00:00", "UTC"),
            "not midnight",
        ),
        (
            post("2026-07-01T00:00:00", "2026-07-01T00:00:00", "UTC"),
            "ends when it starts",
        ),
        (
            json!({"isAllDay": true, "start": {"dateTime": "2026-07-01T00:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-07-02T00:00:00", "timeZone": "Pacific Standard Time"}}),
            "two zones",
        ),
    ] {
        let refused = g.post(&format!("/users/{user}/events"), &body).await;
        assert_eq!(refused.status, 400, "{why}: {}", refused.body);
        assert_eq!(refused.code(), "ErrorPropertyValidationFailure", "{why}");
    }
    let created = g
        .post(
            &format!("/users/{user}/events"),
            &post(
                "2026-07-01T00:00:00",
                "2026-07-03T00:00:00",
                "Tokyo Standard Time",
            ),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    for zone in [
        "UTC",
        "Pacific Standard Time",
        "Tokyo Standard Time",
        "Europe/Oslo",
    ] {
        let prefer = format!("outlook.timezone=\"{zone}\"");
        let answer = g
            .call(
                Method::GET,
                &format!("/users/{user}/events/{id}"),
                None,
                &[("Prefer", &prefer)],
            )
            .await;
        assert_eq!(answer.body["isAllDay"], true);
        assert_eq!(
            answer.body["start"]["dateTime"], "2026-07-01T00:00:00.0000000",
            "{zone}"
        );
        assert_eq!(
            answer.body["end"]["dateTime"], "2026-07-03T00:00:00.0000000",
            "{zone}"
        );
    }
    // Made timed again by a PATCH with times.
    let timed = g
        .patch(
            &format!("/users/{user}/events/{id}"),
            &json!({"isAllDay": false, "start": {"dateTime": "2026-07-01T10:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-07-01T11:00:00", "timeZone": "UTC"}}),
        )
        .await;
    assert_eq!(timed.status, 200, "{}", timed.body);
    assert_eq!(timed.body["isAllDay"], false);
    // Made all-day by isAllDay alone while its times are not midnight: refused.
    let refused = g
        .patch(
            &format!("/users/{user}/events/{id}"),
            &json!({"isAllDay": true}),
        )
        .await;
    assert_eq!(refused.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_paged_to_the_end_with_skip_tokens() {
    let scenario = Scenario::generate(
        &Generate {
            users: 250,
            events: 0,
            tasks: 0,
            contacts: 0,
            seed: 5,
        },
        jiff::Timestamp::now(),
    );
    let g = G::with(scenario).await;
    let (users, last) = g
        .all_pages(
            "/users?$top=100&$select=id,mail,userPrincipalName,proxyAddresses",
            &[],
        )
        .await;
    assert_eq!(users.len(), 250);
    assert!(last.get("@odata.nextLink").is_none());
    let mut ids: Vec<&str> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 250, "no user twice");
    let first = &users[0];
    assert_eq!(
        first.as_object().unwrap().len(),
        4,
        "only the selected properties: {first}"
    );
    assert!(
        first["proxyAddresses"][0]
            .as_str()
            .unwrap()
            .starts_with("SMTP:")
    );
    let page = g.get("/users?$top=100").await;
    let next = page.body["@odata.nextLink"].as_str().unwrap();
    assert!(next.contains("$skiptoken="), "{next}");
    assert!(
        page.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#users")
    );
    let default_page = g.get("/users").await;
    assert_eq!(
        default_page.body["value"].as_array().unwrap().len(),
        100,
        "100 by default"
    );
    assert_eq!(
        g.get("/users?$top=999").await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        250
    );
    let too_many = g.get("/users?$top=1000").await;
    assert_eq!(too_many.status, 400);
    assert_eq!(too_many.code(), "Request_BadRequest");
    let upn = g.mailbox(7).user_principal_name;
    for filter in [
        format!("mail eq '{upn}'"),
        format!("proxyAddresses/any(p: p eq 'smtp:{upn}')"),
        format!("startswith(userPrincipalName,'{}')", &upn[..9]),
    ] {
        let found = g.get(&format!("/users?$filter={filter}")).await;
        assert_eq!(found.status, 200, "{filter}: {}", found.body);
        let found: Vec<&str> = found.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userPrincipalName"].as_str().unwrap())
            .collect();
        assert_eq!(found, [upn.as_str()], "{filter}");
    }
    let one = g.get(&format!("/users/{}", upn.to_uppercase())).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["userPrincipalName"], upn);
    let missing = g.get("/users/nobody@tenant.example").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "Request_ResourceNotFound");
    let mailbox_missing = g.get("/users/nobody@tenant.example/events").await;
    assert_eq!(mailbox_missing.status, 404);
    assert_eq!(mailbox_missing.code(), "ErrorInvalidUser");
}
