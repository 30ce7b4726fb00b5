//! The SuperOffice emulator's REST behaviour: OData filters and paging, the rank-wide change
//! query, writes with If-Unmodified-Since, the travel transaction log, SO-TimeZone, limits
//! and bad input.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::superoffice::{So, assert_error, keys, send};
use crmsync::sandbox::scenario::{AppointmentSeed, When};
use crmsync::sandbox::{LimitSpec, Rate, Scenario};
use reqwest::Method;
use serde_json::json;

fn seeds(so: &So) -> Vec<AppointmentSeed> {
    so.sandbox.state().scenario().superoffice.appointments
}

/// Where a seed starts, as the emulator stores it: to-dos at noon (Oslo) of their day.
fn seed_start(seed: &AppointmentSeed) -> jiff::Timestamp {
    match (&seed.when, seed.todo) {
        (When::Timed { start, .. }, _) => *start,
        (When::AllDay { start, .. }, true) => start
            .at(12, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::get("Europe/Oslo").unwrap())
            .unwrap()
            .timestamp(),
        (When::AllDay { start, .. }, false) => start
            .at(0, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp(),
    }
}

fn ids(seeds: &[AppointmentSeed], keep: impl Fn(&AppointmentSeed) -> bool) -> Vec<u32> {
    seeds.iter().filter(|s| keep(s)).map(|s| s.id).collect()
}

async fn list(so: &So, filter: &str) -> Vec<u32> {
    let path = format!(
        "Appointment?$select=appointmentId&$orderby=appointmentId&$filter={}",
        urlencode(filter)
    );
    keys(&so.rows(&path).await)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_filter_operator_selects_the_right_rows() {
    let so = So::start().await;
    let all = seeds(&so);
    assert_eq!(
        list(&so, "associateId associateIsOneOf (101,102)").await,
        ids(&all, |s| [101, 102].contains(&s.associate_id))
    );
    assert_eq!(
        list(&so, "associateId associateIsNotOneOf (101, 102)").await,
        ids(&all, |s| ![101, 102].contains(&s.associate_id))
    );
    assert_eq!(list(&so, "rawType eq 2").await, ids(&all, |s| s.todo));
    assert_eq!(
        list(&so, "recordType is 'ToDo'").await,
        ids(&all, |s| s.todo)
    );
    assert_eq!(list(&so, "rawType ne 2").await, ids(&all, |s| !s.todo));
    assert_eq!(
        list(&so, "appointmentId gt 40").await,
        ids(&all, |s| s.id > 40)
    );
    assert_eq!(
        list(&so, "appointmentId lt 5").await,
        ids(&all, |s| s.id < 5)
    );
    assert_eq!(list(&so, "isFree set true").await, ids(&all, |s| s.free));
    assert_eq!(
        list(&so, "visibleInDiary set false").await,
        ids(&all, |s| s.todo)
    );
    assert_eq!(
        list(&so, "text contains 'notes'").await,
        ids(&all, |s| s.description.contains("Notes")),
        "text is the description"
    );
    assert_eq!(
        list(&so, "appointment/title contains 'CRM'").await,
        ids(&all, |_| true)
    );

    let pivot = seed_start(&all[7]);
    let text = pivot.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    assert_eq!(
        list(&so, &format!("date afterTime '{text}'")).await,
        ids(&all, |s| seed_start(s) > pivot)
    );
    assert_eq!(
        list(&so, &format!("date beforeTime '{text}'")).await,
        ids(&all, |s| seed_start(s) < pivot)
    );
    let day = pivot.to_zoned(jiff::tz::TimeZone::UTC).date();
    let week = day.checked_add(jiff::ToSpan::days(6)).unwrap();
    let in_range = |s: &AppointmentSeed| {
        let d = seed_start(s).to_zoned(jiff::tz::TimeZone::UTC).date();
        day <= d && d <= week
    };
    assert_eq!(
        list(&so, &format!("date between ('{day}','{week}')")).await,
        ids(&all, in_range)
    );
    assert_eq!(
        list(
            &so,
            &format!(
                "associateId associateIsOneOf (103) and rawType eq 1 and date afterTime '{text}'"
            )
        )
        .await,
        ids(&all, |s| s.associate_id == 103
            && !s.todo
            && seed_start(s) > pivot)
    );
    assert_eq!(
        list(&so, "associateId currentAssociate").await,
        Vec::<u32>::new(),
        "the system user has no diary"
    );
    assert_eq!(
        list(&so, "personId eq 0").await,
        ids(&all, |s| s.person_id.is_none())
    );

    for bad in [
        "nosuchcolumn eq 1",
        "appointmentId le 5",
        "appointmentId ge 5",
        "appointmentId like 5",
        "date afterTime 'last tuesday'",
        "date afterTime '2026-02-30T10:00:00'",
        "associateId associateIsOneOf (1,two)",
        "completed eq true",
        "appointmentId eq 1 or appointmentId eq 2",
        "text contains 'unterminated",
    ] {
        let answer = so
            .get(&format!(
                "Appointment?$select=appointmentId&$filter={}",
                urlencode(bad)
            ))
            .await;
        assert_error(&answer, 400);
    }
    for bad in [
        "$select=appointmentId,nosuch",
        "$orderby=nosuch",
        "$orderby=time",
        "$top=-1",
        "$skip=x",
        "$orderby=appointmentId sideways",
    ] {
        assert_error(&so.get(&format!("Appointment?{bad}")).await, 400);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_by_primary_key_returns_each_row_once_while_rows_change() {
    let so = So::start().await;
    let store = &so.sandbox.state().superoffice;
    let all = seeds(&so);
    let expected: Vec<u32> = ids(&all, |s| [101, 102, 103].contains(&s.associate_id));
    let path = |skip: usize| {
        format!(
            "Appointment?$select=appointmentId,updatedDate&$filter={}&$orderby=appointmentId&$top=5&$skip={skip}",
            urlencode("associateId associateIsOneOf (101,102,103)")
        )
    };
    let mut seen = Vec::new();
    let mut skip = 0;
    loop {
        let page = keys(&so.rows(&path(skip)).await);
        if page.is_empty() {
            break;
        }
        // Between pages: a returned row changes, a new row appears, another moves out.
        let first = page[0];
        store
            .user_update_appointment(
                first,
                crmsync::sandbox::superoffice::AppointmentChange {
                    title: Some(format!("changed {skip}")),
                    ..Default::default()
                },
                so.now(),
            )
            .unwrap();
        let new = store
            .user_create_appointment(
                serde_json::from_value(json!({"associate_id": 101, "title": "late", "when": {"kind": "all_day", "start": "2026-12-01", "end": "2026-12-02"}})).unwrap(),
                so.now(),
            )
            .unwrap();
        assert!(new.id > first);
        skip += page.len();
        seen.extend(page);
        if skip > 500 {
            break;
        }
    }
    assert_eq!(
        seen, expected,
        "each row exactly once, in primary key order"
    );
    // A new query (from $skip=0) sees the new rows.
    let fresh = keys(&so.rows(&path(0).replace("$top=5", "$top=500")).await);
    assert!(fresh.len() > expected.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rank_wide_change_query_returns_exactly_the_changed_items() {
    // A rank of the size crmsync aims at: 1,000 associates, 900 of them in the rank.
    let scenario = Scenario::load(
        "generated:users=1000,events=4,tasks=2,contacts=1,seed=7",
        jiff::Timestamp::now(),
    )
    .unwrap();
    let so = So::with(scenario).await;
    let store = &so.sandbox.state().superoffice;
    let all = seeds(&so);
    let associates: Vec<u32> = so
        .sandbox
        .state()
        .scenario()
        .superoffice
        .associates
        .iter()
        .map(|a| a.id)
        .collect();
    // The watermark: the UpdatedDate the seeded rows carry.
    let first = so.get(&format!("Appointment/{}", all[0].id)).await;
    let watermark = first.body["UpdatedDate"]
        .as_str()
        .unwrap()
        .trim_end_matches('Z')
        .to_string();

    let mut changed = BTreeSet::new();
    for seed in all.iter().step_by(7) {
        store
            .user_update_appointment(
                seed.id,
                crmsync::sandbox::superoffice::AppointmentChange {
                    location: Some("Moved".into()),
                    ..Default::default()
                },
                so.now(),
            )
            .unwrap();
        changed.insert(seed.id);
    }
    for associate in associates.iter().step_by(9) {
        let new = store
            .user_create_appointment(serde_json::from_value(json!({"associate_id": associate, "todo": true, "title": "New to-do", "when": {"kind": "all_day", "start": "2026-12-03", "end": "2026-12-04"}})).unwrap(), so.now())
            .unwrap();
        changed.insert(new.id);
    }
    let deleted = all[3].id;
    store.user_delete_appointment(deleted, so.now()).unwrap();
    // Changes of associates outside the rank do not show.
    let rank: Vec<u32> = associates.iter().copied().filter(|a| a % 10 != 5).collect();
    let in_rank = |id: &u32| {
        store
            .appointment(*id)
            .is_some_and(|a| rank.contains(&a.data.associate_id))
    };
    let expected: Vec<u32> = changed.iter().copied().filter(in_rank).collect();

    let filter = format!(
        "associateId associateIsOneOf ({}) and updatedDate afterTime '{watermark}'",
        rank.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut seen = Vec::new();
    for page in 0.. {
        let rows = so
            .rows(&format!(
                "Appointment?$select=appointmentId,associateId,updatedDate,rawType,recordType&$filter={}&$orderby=appointmentId&$top=50&$skip={}",
                urlencode(&filter),
                page * 50
            ))
            .await;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            assert!(rank.contains(&(row["associateId"].as_u64().unwrap() as u32)));
            assert!(row["updatedDate"].as_str().unwrap().ends_with('Z'));
        }
        seen.extend(keys(&rows));
    }
    assert_eq!(seen, expected);

    // The deletion is in the travel transaction log.
    let log = so
        .rows(&format!(
            "Archive/dynamic?$select=traveltransactionlog.record_id,traveltransactionlog.ttime,traveltransactionlog.tablenumber,traveltransactionlog.type&$filter={}",
            urlencode(&format!("traveltransactionlog.ttime afterTime '{watermark}' and traveltransactionlog.tablenumber eq 9 and traveltransactionlog.type eq 4864"))
        ))
        .await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["traveltransactionlog.record_id"], deleted);
    assert_eq!(log[0]["traveltransactionlog.type"], 4864);
}

#[tokio::test(flavor = "multi_thread")]
async fn so_timezone_converts_and_tags_date_times() {
    let so = So::start().await;
    let seed = seeds(&so)
        .into_iter()
        .find(|s| matches!(s.when, When::Timed { .. }) && !s.todo)
        .unwrap();
    let When::Timed { start, .. } = seed.when else {
        unreachable!()
    };
    let utc = so.get(&format!("Appointment/{}", seed.id)).await.body;
    assert_eq!(
        utc["StartDate"],
        format!("{}+00:00", start.strftime("%Y-%m-%dT%H:%M:%S"))
    );
    assert!(utc["UpdatedDate"].as_str().unwrap().ends_with('Z'));
    let plain = send(
        so.client
            .get(so.url(&format!("Appointment/{}", seed.id)))
            .header("Authorization", format!("SOTicket {}", so.ticket))
            .header("SO-AppToken", &so.app_token),
    )
    .await
    .body;
    let oslo = start.to_zoned(jiff::tz::TimeZone::get("Europe/Oslo").unwrap());
    assert_eq!(
        plain["StartDate"],
        oslo.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
        "the base zone, no offset"
    );
    assert_eq!(
        plain["UpdatedDate"],
        utc["UpdatedDate"].as_str().unwrap().trim_end_matches('Z'),
        "updated dates stay UTC"
    );
    let ny = send(
        so.client
            .get(so.url(&format!("Appointment/{}", seed.id)))
            .header("Authorization", format!("SOTicket {}", so.ticket))
            .header("SO-AppToken", &so.app_token)
            .header("SO-TimeZone", "US-NY, includeTZOffset"),
    )
    .await
    .body;
    let ny_start: jiff::Timestamp = ny["StartDate"].as_str().unwrap().parse().unwrap();
    assert_eq!(ny_start, start);
    // Input without an offset is read in the requested zone (here the base zone).
    let mut body = utc.clone();
    body["StartDate"] = json!("2026-12-24T10:00:00");
    body["EndDate"] = json!("2026-12-24T11:00:00");
    let put = send(
        so.client
            .put(so.url(&format!("Appointment/{}", seed.id)))
            .header("Authorization", format!("SOTicket {}", so.ticket))
            .header("SO-AppToken", &so.app_token)
            .json(&body),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let back = so.get(&format!("Appointment/{}", seed.id)).await.body;
    assert_eq!(back["StartDate"], "2026-12-24T09:00:00+00:00");
    let bad = send(
        so.client
            .get(so.url("List/Task/Items"))
            .header("Authorization", format!("SOTicket {}", so.ticket))
            .header("SO-AppToken", &so.app_token)
            .header("SO-TimeZone", "Atlantis"),
    )
    .await;
    assert_error(&bad, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_request_rate_limit_answers_429_with_retry_after() {
    let so = So::start().await;
    so.sandbox.state().limits.set_spec(LimitSpec {
        superoffice: Some(Rate {
            requests: 10,
            per: Duration::from_secs(1),
        }),
        ..LimitSpec::off()
    });
    // Forty at once: a 10-per-second bucket cannot admit them all, however slow the machine.
    let answers = futures::future::join_all((0..40).map(|_| so.get("List/Task/Items"))).await;
    let throttled = answers.into_iter().find(|a| a.status == 429);
    let answer = throttled.expect("a 429 among 40 simultaneous requests");
    assert_error(&answer, 429);
    let wait: f64 = answer.headers["Retry-After"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0.0 && wait <= 1.0, "{wait}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_of_users_persons_and_companies_filter_as_documented() {
    let so = So::start().await;
    let users = so.rows("Archive/InternalUsers?$select=associateDbId,assocName,personId,personEmail,fullName,isActive,userName&$orderby=associateDbId").await;
    assert_eq!(users.len(), 5, "internal users only: {users:?}");
    assert_eq!(users[0]["personEmail"], "anna.berg@contoso.example");
    assert_eq!(users[0]["assocName"], "ANNA");
    assert_eq!(users[0]["associateDbId"], 101);
    assert_eq!(
        users[4]["personEmail"], "",
        "EVA has no e-mail on her person card"
    );
    // The primary e-mail is the first in rank order.
    so.control(
        Method::PATCH,
        "/persons/1002",
        Some(json!({"emails": ["bo@other.example", "bo.lind@contoso.example"]})),
    )
    .await;
    let bo = so.rows("Archive/InternalUsers?$select=personEmail&$filter=associateDbId associateIsOneOf (102)").await;
    assert_eq!(bo[0]["personEmail"], "bo@other.example");
    assert_eq!(
        keys(
            &so.rows("Archive/InternalUsers?$filter=isActive set true")
                .await
        )
        .len(),
        5
    );

    let persons = so
        .rows("Person?$select=personId,firstName,email/emailAddress&$filter=contactId eq 10001")
        .await;
    assert_eq!(persons.len(), 6);
    let watermark = so.get("Person/1001").await.body["UpdatedDate"]
        .as_str()
        .unwrap()
        .trim_end_matches('Z')
        .to_string();
    let changed = so
        .rows(&format!(
            "Person?$select=personId&$filter={}",
            urlencode(&format!("personUpdatedDate afterTime '{watermark}'"))
        ))
        .await;
    assert_eq!(keys(&changed), vec![1002]);
    let companies = so.rows("Contact?$select=contactId,name,associateId&$filter=associateId associateIsOneOf (101,103)").await;
    assert_eq!(companies.len(), 2);
    assert!(
        companies
            .iter()
            .all(|c| [101, 103].contains(&c["associateId"].as_u64().unwrap()))
    );
    let company = so.get("Contact/10001").await;
    assert_eq!(company.status, 200);
    assert_eq!(company.body["Associate"]["AssociateId"], 101);
}
