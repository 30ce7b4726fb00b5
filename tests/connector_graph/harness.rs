//! The sandbox and Graph client every test of the Graph client starts from, and the items
//! they write. Shared by `connector_graph` and `connector_graph_logs`.

use std::time::Duration;

use crmsync::connector::MailboxRef;
use crmsync::connector::graph::{GraphClient, GraphOptions};
use crmsync::connector::http::Timeouts;
use crmsync::connector::model::{
    ContactItem, CrmId, DiaryItem, Importance, Item, Kind, ShowAs, Stamp, TaskItem, When, Window,
};
use crmsync::limits::Backoff;
use crmsync::sandbox::scenario::Generate;
use crmsync::sandbox::{FaultKind, FaultRule, LimitSpec, Sandbox, SandboxOptions, Scenario};
use crmsync::settings::{MailSystemKind, MailSystemSettings, Secret};

/// Short back-off so that tests of retries do not wait long.
pub fn options() -> GraphOptions {
    GraphOptions {
        backoff: Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(400),
            retries: 4,
        },
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(20),
            total: Duration::from_secs(30),
        },
        // Small pages: rounds of several pages in every test.
        delta_page_size: 7,
        crm_link: Some(
            "https://online.superoffice.com/{tenant}/default.aspx?appointment_id={id}".into(),
        ),
        ..GraphOptions::default()
    }
}

/// A sandbox and a client for its Graph.
pub struct T {
    pub sandbox: Sandbox,
    pub settings: MailSystemSettings,
    pub client: GraphClient,
}

impl T {
    pub async fn start() -> T {
        T::with(Scenario::small(jiff::Timestamp::now()), LimitSpec::real()).await
    }

    /// `users` mailboxes with a few items of each kind.
    pub async fn generated(users: u32) -> T {
        let scenario = Scenario::generate(
            &Generate {
                users,
                events: 4,
                tasks: 2,
                contacts: 0,
                seed: 11,
            },
            jiff::Timestamp::now(),
        );
        T::with(scenario, LimitSpec::real()).await
    }

    pub async fn with(scenario: Scenario, limits: LimitSpec) -> T {
        let sandbox = Sandbox::start(SandboxOptions {
            limits,
            ..SandboxOptions::local(scenario)
        })
        .await
        .expect("the sandbox starts");
        let c = sandbox.credentials();
        let settings = MailSystemSettings {
            name: "sandbox".into(),
            kind: MailSystemKind::Graph,
            tenant_id: c.graph_tenant_id,
            client_id: c.graph_client_id,
            client_secret: Secret::new(c.graph_client_secret),
            base_url: sandbox.urls().graph.clone(),
            authority_url: sandbox.urls().authority.clone(),
        };
        let client = GraphClient::new(&settings, options()).expect("a client");
        T {
            sandbox,
            settings,
            client,
        }
    }

    /// A second client, as after a restart.
    pub fn fresh_client(&self) -> GraphClient {
        GraphClient::new(&self.settings, options()).expect("a client")
    }

    pub fn state(&self) -> &std::sync::Arc<crmsync::sandbox::SandboxState> {
        self.sandbox.state()
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.state().clock.now()
    }

    /// Mailbox `i` of the scenario, by id and address.
    pub fn mailbox(&self, i: usize) -> MailboxRef {
        let seed = &self.state().scenario().graph.mailboxes[i];
        MailboxRef {
            address: seed
                .mail
                .clone()
                .unwrap_or(seed.user_principal_name.clone()),
            id: Some(seed.id.clone()),
        }
    }

    /// The sync window around the sandbox's now.
    pub fn window(&self) -> Window {
        let now = self.now();
        Window {
            start: now - jiff::SignedDuration::from_hours(24 * 30),
            end: now + jiff::SignedDuration::from_hours(24 * 120),
        }
    }

    pub fn fault(
        &self,
        kind: FaultKind,
        mailbox: Option<&str>,
        path: Option<&str>,
        method: Option<&str>,
        next: Option<u32>,
    ) -> u64 {
        self.state()
            .faults
            .add(FaultRule {
                kind,
                emulator: None,
                mailbox: mailbox.map(str::to_string),
                path_contains: path.map(str::to_string),
                method: method.map(str::to_string),
                next,
                probability: next.is_none().then_some(1.0),
            })
            .expect("a fault")
    }

    /// The requests logged since `since` that went over the wire (not `$batch` items).
    pub fn round_trips(&self, since: u64) -> Vec<crmsync::sandbox::LoggedRequest> {
        self.state()
            .log
            .all()
            .into_iter()
            .filter(|r| r.seq > since && r.batch.is_none() && !r.path.contains("/oauth2/"))
            .collect()
    }

    pub fn last_seq(&self) -> u64 {
        self.state().log.all().last().map(|r| r.seq).unwrap_or(0)
    }

    pub fn mailbox_state(&self, i: usize) -> serde_json::Value {
        let id = self.mailbox(i).id.unwrap_or_default();
        self.state()
            .graph
            .mailbox_state(&id)
            .expect("the mailbox exists")
    }
}

pub fn stamp(kind: Kind, id: u32) -> Stamp {
    Stamp {
        tenant: "Cust21122".into(),
        kind,
        crm_id: CrmId(id),
    }
}

pub fn diary(subject: &str, t: &T) -> Item {
    // Whole seconds: Graph keeps times to 100 ns, the CRM to the second.
    let now = jiff::Timestamp::from_second(t.now().as_second()).unwrap();
    diary_at(now + jiff::SignedDuration::from_hours(48), subject)
}

pub fn diary_at(start: jiff::Timestamp, subject: &str) -> Item {
    Item::Diary(DiaryItem {
        subject: subject.into(),
        body: "Agenda:\n1. offer".into(),
        when: When::Timed {
            start,
            end: start + jiff::SignedDuration::from_mins(90),
        },
        location: "Oslo".into(),
        private: false,
        show_as: ShowAs::Busy,
        reminder_minutes: Some(10),
        task_type: Some("Meeting".into()),
        organized_by_other: false,
        series: None,
    })
}

pub fn task(title: &str) -> Item {
    Item::Task(TaskItem {
        title: title.into(),
        body: "Call back".into(),
        due: Some("2026-12-01".parse().unwrap()),
        completed: None,
        importance: Importance::High,
    })
}

pub fn contact(name: &str) -> Item {
    Item::Contact(ContactItem {
        given_name: name.into(),
        surname: "Nordmann".into(),
        emails: vec![format!("{}@example.no", name.to_lowercase())],
        business_phones: vec!["+47 22 00 00 00".into()],
        mobile_phone: None,
        company: Some("Nordmann AS".into()),
        job_title: Some("CEO".into()),
    })
}
