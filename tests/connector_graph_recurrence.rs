//! The Graph client's recurrence mapping against the in-process Graph emulator: a series
//! created from the neutral model is echoed as the same recurrence for every pattern kind;
//! an exception and a cancellation written with the client's bodies and paths come back
//! from calendarView/delta, grouped under their master.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::Value;

use crmsync::connector::MailboxRef;
use crmsync::connector::graph::series::{self, Changed};
use crmsync::connector::graph::{map, patterned, series_write, wire};
use crmsync::connector::model::{CrmId, DiaryItem, Kind, ShowAs, Stamp, When, Window};
use crmsync::connector::recurrence::{
    self, DayOfWeek, Pattern, Range, RangeEnd, Recurrence, WeekIndex,
};
use crmsync::sandbox::{Sandbox, SandboxOptions, Scenario};

const ZONE: &str = "Europe/Oslo";

struct G {
    sandbox: Sandbox,
    http: reqwest::Client,
    token: String,
    base: String,
    mailbox: MailboxRef,
}

impl G {
    async fn start() -> G {
        let sandbox = Sandbox::start(SandboxOptions::local(Scenario::small(Timestamp::now())))
            .await
            .expect("the sandbox starts");
        let c = sandbox.credentials();
        let authority = sandbox.urls().authority.as_str().trim_end_matches('/');
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!(
                "{authority}/{}/oauth2/v2.0/token",
                c.graph_tenant_id
            ))
            .form(&[
                ("client_id", c.graph_client_id.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
                ("client_secret", c.graph_client_secret.as_str()),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let seed = sandbox.state().scenario().graph.mailboxes[0].clone();
        let base = sandbox
            .urls()
            .graph
            .as_str()
            .trim_end_matches('/')
            .to_string();
        G {
            token: token["access_token"].as_str().unwrap().to_string(),
            http,
            base,
            mailbox: MailboxRef {
                address: seed.mail.clone().unwrap_or(seed.user_principal_name),
                id: Some(seed.id),
            },
            sandbox,
        }
    }

    /// A request to a path below the base (or a full link), as the client sends events'.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(&self.token)
            .header("Prefer", wire::prefer(true, Some(5)));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A whole calendarView/delta round over `window`.
    async fn delta(&self, window: &Window) -> Vec<Value> {
        let mut path = format!(
            "/users/{}/calendarView/delta?{}",
            wire::segment(self.mailbox.key()),
            wire::query(&[
                ("startDateTime", &window.start.to_string()),
                ("endDateTime", &window.end.to_string()),
            ])
        );
        let mut items = Vec::new();
        for _ in 0..1000 {
            let (status, page) = self.call(Method::GET, &path, None).await;
            assert_eq!(status, 200, "{page}");
            items.extend(page["value"].as_array().cloned().unwrap_or_default());
            match page["@odata.nextLink"].as_str() {
                Some(next) => path = next.to_string(),
                None => return items,
            }
        }
        panic!("the round does not end");
    }

    async fn create(&self, item: &DiaryItem, r: &Recurrence, n: u32) -> Value {
        let stamp = Stamp {
            tenant: "Cust1".into(),
            kind: Kind::Diary,
            crm_id: CrmId(n),
        };
        let body = series_write::series_create(item, r, &stamp, &format!("t-{n}")).unwrap();
        let path = format!("/users/{}/events", wire::segment(self.mailbox.key()));
        let (status, master) = self.call(Method::POST, &path, Some(&body)).await;
        assert_eq!(status, 201, "{body} -> {master}");
        master
    }
}

/// The Oslo date `days` after the sandbox's now, and 09:00 that day.
fn day(g: &G, days: i64) -> (Date, Timestamp) {
    let now = g.sandbox.state().clock.now() + SignedDuration::from_hours(24 * days);
    let date = now.to_zoned(TimeZone::get(ZONE).unwrap()).date();
    let start = date.at(9, 0, 0, 0).in_tz(ZONE).unwrap().timestamp();
    (date, start)
}

fn item(start: Timestamp) -> DiaryItem {
    DiaryItem {
        subject: "Team".into(),
        body: "Weekly".into(),
        when: When::Timed {
            start,
            end: start + SignedDuration::from_hours(1),
        },
        location: "Oslo".into(),
        private: false,
        show_as: ShowAs::Busy,
        reminder_minutes: Some(15),
        task_type: None,
        organized_by_other: false,
        series: None,
    }
}

/// One pattern of each kind that holds on `date`.
fn every_kind(date: Date) -> Vec<Pattern> {
    let weekday = DayOfWeek::of(date.weekday());
    let index = match (date.day() - 1) / 7 {
        0 => WeekIndex::First,
        1 => WeekIndex::Second,
        2 => WeekIndex::Third,
        3 if date.day() + 7 <= date.days_in_month() => WeekIndex::Fourth,
        _ => WeekIndex::Last,
    };
    let (month, day) = (date.month() as u8, date.day() as u8);
    vec![
        Pattern::Daily { interval: 3 },
        Pattern::Weekly {
            interval: 2,
            days: vec![weekday],
            first_day_of_week: DayOfWeek::Monday,
        },
        Pattern::AbsoluteMonthly {
            interval: 1,
            day_of_month: day,
        },
        Pattern::RelativeMonthly {
            interval: 2,
            days: vec![weekday],
            index,
        },
        Pattern::AbsoluteYearly {
            interval: 1,
            month,
            day_of_month: day,
        },
        Pattern::RelativeYearly {
            interval: 1,
            month,
            days: vec![weekday],
            index,
        },
    ]
}

#[tokio::test]
async fn every_pattern_kind_is_created_and_read_back_the_same() {
    let g = G::start().await;
    let (date, start) = day(&g, 3);
    let ends = [
        RangeEnd::Count(5),
        RangeEnd::Date(date + jiff::ToSpan::years(3)),
        RangeEnd::Never,
    ];
    for (n, pattern) in every_kind(date).into_iter().enumerate() {
        let r = Recurrence {
            pattern,
            range: Range {
                start: date,
                end: ends[n % 3],
            },
            time_zone: ZONE.into(),
        };
        let created = g.create(&item(start), &r, n as u32 + 1).await;
        assert_eq!(created["type"], "seriesMaster");
        let id = created["id"].as_str().unwrap();
        let (status, master) = g
            .call(Method::GET, &series::master_path(&g.mailbox, id), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(patterned::of_event(&master).unwrap(), Some(r.clone()));
        assert_eq!(wire::instant(&master["start"]), Some(start));
        assert!(map::stamp_of(&master).is_some());
    }
}

#[tokio::test]
async fn an_exception_and_a_cancellation_come_back_grouped_under_their_master() {
    let g = G::start().await;
    let (date, start) = day(&g, 2);
    let r = Recurrence {
        pattern: Pattern::Weekly {
            interval: 1,
            days: vec![DayOfWeek::of(date.weekday())],
            first_day_of_week: DayOfWeek::Monday,
        },
        range: Range {
            start: date,
            end: RangeEnd::Count(6),
        },
        time_zone: ZONE.into(),
    };
    let master = g.create(&item(start), &r, 7).await;
    let master_id = master["id"].as_str().unwrap().to_string();
    let window = Window {
        start: start - SignedDuration::from_hours(24),
        end: start + SignedDuration::from_hours(24 * 60),
    };
    let first_local: DateTime = start.to_zoned(TimeZone::get(ZONE).unwrap()).datetime();
    let expected = recurrence::occurrences(
        first_local,
        SignedDuration::from_hours(1),
        &r,
        window.start,
        window.end,
    )
    .unwrap();
    assert_eq!(expected.len(), 6);
    let (second, third) = (expected[1].original_start, expected[2].original_start);

    let (status, instances) = g
        .call(
            Method::GET,
            &series_write::instances_path(&g.mailbox, &master_id, &window),
            None,
        )
        .await;
    assert_eq!(status, 200, "{instances}");
    let moved_id = series_write::occurrence_at(&instances, second).unwrap();
    let cancelled_id = series_write::occurrence_at(&instances, third).unwrap();

    // The second moved an hour later and renamed: an exception.
    let path = series_write::occurrence_path(&g.mailbox, &moved_id);
    let read = format!(
        "{path}?{}",
        wire::query(&[("$expand", &map::expand_properties())])
    );
    let (_, current) = g.call(Method::GET, &read, None).await;
    let mut changed = item(second + SignedDuration::from_hours(1));
    changed.subject = "Team, later".into();
    let patch = series_write::exception_patch(&current, &changed).unwrap();
    assert!(patch.get("singleValueExtendedProperties").is_none());
    let (status, answer) = g.call(Method::PATCH, &path, Some(&patch)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["type"], "exception");
    // Nothing left to change.
    assert_eq!(series_write::exception_patch(&answer, &changed), None);
    // The third cancelled.
    let (status, _) = g
        .call(
            Method::DELETE,
            &series_write::occurrence_path(&g.mailbox, &cancelled_id),
            None,
        )
        .await;
    assert_eq!(status, 204);

    let groups = series::group(g.delta(&window).await).unwrap();
    assert_eq!(groups.series.len(), 1, "{:?}", groups.series);
    let group = &groups.series[0];
    assert_eq!(group.master_id, master_id);
    assert!(
        !group.needs_master(),
        "the first occurrence is in the window"
    );
    let read = group.read(None, &window).unwrap();
    assert_eq!(read.recurrence, r);
    assert_eq!(read.first_start, start);
    assert_eq!(read.time_zone, ZONE);
    assert_eq!(read.occurrences.len(), 4);
    assert_eq!(read.cancelled, vec![third]);
    let exception = &read.exceptions[&second];
    assert_eq!(exception.id, moved_id);
    assert_eq!(
        exception.changed,
        [Changed::Time, Changed::Subject].into_iter().collect()
    );
    assert_eq!(exception.item.when, changed.when);

    // A window after the first occurrence: delta lists no master, which is fetched.
    let later = Window {
        start: start + SignedDuration::from_hours(24 * 3),
        end: window.end,
    };
    let groups = series::group(g.delta(&later).await).unwrap();
    let group = &groups.series[0];
    assert!(group.needs_master());
    let (status, fetched) = g
        .call(
            Method::GET,
            &series::master_path(&g.mailbox, &master_id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let read = group.read(Some(&fetched), &later).unwrap();
    assert_eq!(read.cancelled, vec![third]);
    assert_eq!(read.occurrences.len(), 3);
    assert!(read.exceptions.contains_key(&second));
}
