//! Per-kind details: all-day items and daylight-saving changes.

use crmsync::connector::model::When;
use crmsync::sandbox::scenario::When as SeedWhen;
use crmsync::sandbox::superoffice::UserAppointment;
use reqwest::Method;
use serde_json::json;

use super::*;

fn at(zone: &str, local: &str) -> jiff::Timestamp {
    local
        .parse::<jiff::civil::DateTime>()
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get(zone).unwrap())
        .unwrap()
        .timestamp()
}

fn date(d: &str) -> jiff::civil::Date {
    d.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_day_items_keep_their_days_and_meetings_their_local_time_across_daylight_saving() {
    let world = World::new().await;
    let state = world.sandbox.state();
    // Early March 2027: the window holds both changes (United States 14 March, Europe 28 March).
    state.clock.set("2027-03-01T09:00:00Z".parse().unwrap());
    world.settle(Kind::Diary).await;

    let crm_meeting = |title: &str, zone: &str, local: &str| UserAppointment {
        associate_id: world.user.associate_id,
        todo: false,
        task: None,
        title: title.to_string(),
        description: String::new(),
        location: String::new(),
        when: SeedWhen::Timed {
            start: at(zone, local),
            end: at(zone, local) + jiff::SignedDuration::from_hours(1),
            time_zone: zone.to_string(),
        },
        private: false,
        free: None,
        alarm_minutes: None,
        completed: false,
        person_id: None,
        company_id: None,
    };
    for (title, zone, local) in [
        (
            "Standup NY before",
            "America/New_York",
            "2027-03-12T09:00:00",
        ),
        (
            "Standup NY after",
            "America/New_York",
            "2027-03-15T09:00:00",
        ),
        ("Standup Oslo before", "Europe/Oslo", "2027-03-26T09:00:00"),
        ("Standup Oslo after", "Europe/Oslo", "2027-03-29T09:00:00"),
    ] {
        state
            .superoffice
            .user_create_appointment(crm_meeting(title, zone, local), world.now())
            .unwrap();
    }
    let mut all_day = crm_meeting("Trade fair", "UTC", "2027-03-20T00:00:00");
    all_day.when = SeedWhen::AllDay {
        start: date("2027-03-20"),
        end: date("2027-03-22"),
    };
    state
        .superoffice
        .user_create_appointment(all_day, world.now())
        .unwrap();
    // An all-day event entered in Outlook by someone in California.
    world.graph_act(
        Method::POST,
        "events",
        Some(json!({
            "subject": "Company holiday",
            "isAllDay": true,
            "start": {"dateTime": "2027-03-24T00:00:00", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": "2027-03-25T00:00:00", "timeZone": "Pacific Standard Time"}
        })),
    );

    world.settle(Kind::Diary).await;
    world.assert_converged(Kind::Diary).await;

    let mailbox = world.mailbox_items(Kind::Diary).await;
    let find = |subject: &str| {
        mailbox
            .iter()
            .find(|m| matches!(&m.item, Item::Diary(d) if d.subject == subject))
            .unwrap_or_else(|| panic!("{subject} is in the mailbox"))
    };
    for (subject, zone) in [
        ("Standup NY before", "America/New_York"),
        ("Standup NY after", "America/New_York"),
        ("Standup Oslo before", "Europe/Oslo"),
        ("Standup Oslo after", "Europe/Oslo"),
    ] {
        let Item::Diary(d) = &find(subject).item else {
            unreachable!()
        };
        let When::Timed { start, .. } = d.when else {
            panic!("{subject} is timed")
        };
        let local = start.to_zoned(jiff::tz::TimeZone::get(zone).unwrap());
        assert_eq!(
            (local.hour(), local.minute()),
            (9, 0),
            "{subject} stays at 09:00 {zone}"
        );
    }
    let Item::Diary(fair) = &find("Trade fair").item else {
        unreachable!()
    };
    assert_eq!(
        fair.when,
        When::AllDay {
            start: date("2027-03-20"),
            end: date("2027-03-22")
        }
    );
    let crm = world.crm_items(Kind::Diary).await;
    let holiday = crm
        .values()
        .find(|o| matches!(&o.item, Item::Diary(d) if d.subject == "Company holiday"))
        .expect("the holiday reached SuperOffice");
    let Item::Diary(holiday) = &holiday.item else {
        unreachable!()
    };
    assert_eq!(
        holiday.when,
        When::AllDay {
            start: date("2027-03-24"),
            end: date("2027-03-25")
        }
    );
}
