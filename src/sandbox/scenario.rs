//! Scenarios: the tenants an emulator starts with. A small built-in one covers every case of
//! linking (a match by address, by proxy address only, an associate without e-mail, a
//! mailbox without associate); a generator makes large ones, reproducible from a seed.

use std::path::Path;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The partner application's RSA private key of the sandbox's SuperOffice tenant. It is
/// public knowledge, like everything in the sandbox; never use it for anything real.
pub const SANDBOX_PARTNER_PRIVATE_KEY_PEM: &str = include_str!("sandbox-partner-key.pem");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    /// Seeds everything random in the sandbox (ids, tokens, probable faults).
    pub seed: u64,
    pub graph: GraphTenant,
    pub superoffice: SuperOfficeTenant,
}

/// A Microsoft 365 tenant and the app registration crmsync uses in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphTenant {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of access tokens (the identity platform gives 60 to 90 minutes).
    pub token_lifetime_secs: u64,
    pub mailboxes: Vec<MailboxSeed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailboxSeed {
    /// The Graph user id (a GUID).
    pub id: String,
    pub display_name: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    /// `SMTP:` marks the primary address, `smtp:` the others.
    pub proxy_addresses: Vec<String>,
    /// The mailbox owner's time zone (IANA name).
    pub time_zone: String,
    pub events: Vec<EventSeed>,
    pub tasks: Vec<TaskSeed>,
    pub contacts: Vec<ContactSeed>,
}

/// When something happens: a timed span in UTC (with the zone it was entered in), or whole
/// days (end exclusive) that no time zone shifts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum When {
    Timed {
        start: Timestamp,
        end: Timestamp,
        time_zone: String,
    },
    AllDay {
        start: Date,
        end: Date,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSeed {
    pub subject: String,
    pub body: String,
    pub location: String,
    pub when: When,
    /// "normal", "personal", "private" or "confidential".
    pub sensitivity: String,
    /// "free", "tentative", "busy", "oof", "workingElsewhere" or "unknown".
    pub show_as: String,
    pub reminder_minutes: Option<u32>,
    pub categories: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSeed {
    pub title: String,
    pub body: String,
    pub due: Option<Date>,
    pub completed: bool,
    /// "low", "normal" or "high".
    pub importance: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactSeed {
    pub given_name: String,
    pub surname: String,
    pub email_addresses: Vec<String>,
    pub business_phones: Vec<String>,
    pub mobile_phone: Option<String>,
    pub company_name: Option<String>,
    pub job_title: Option<String>,
}

/// A SuperOffice tenant, online and onsite credentials both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuperOfficeTenant {
    pub context_identifier: String,
    /// The application's client secret, sent as `SO-AppToken` and `ApplicationToken`.
    pub client_secret: String,
    /// The system user token the tenant's administrator granted the application.
    pub system_user_token: String,
    /// The application's RSA private key (PKCS#8 PEM); the tenant checks signatures with its
    /// public half.
    pub private_key_pem: String,
    /// Onsite Basic authentication.
    pub basic_username: String,
    pub basic_password: String,
    /// Tickets last this long after their last use (SuperOffice: 6 hours, sliding).
    pub ticket_lifetime_secs: u64,
    pub associates: Vec<AssociateSeed>,
    pub companies: Vec<CompanySeed>,
    pub persons: Vec<PersonSeed>,
    pub appointments: Vec<AppointmentSeed>,
}

/// A CRM user; its own person card (in the tenant's own company) carries its e-mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssociateSeed {
    pub id: u32,
    /// The login name (`Name` of the associate).
    pub login: String,
    pub person_id: u32,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompanySeed {
    pub id: u32,
    pub name: String,
    /// The associate who is "our contact" for the company.
    pub our_contact: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonSeed {
    pub id: u32,
    pub company_id: u32,
    pub first_name: String,
    pub last_name: String,
    /// In rank order: the first is the primary address.
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub mobile: Option<String>,
    pub job_title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentSeed {
    pub id: u32,
    pub associate_id: u32,
    /// A to-do (task list item of record type ToDo) rather than a diary appointment.
    pub todo: bool,
    /// The task list item's name, such as "Meeting", "Phone" or "To do".
    pub task_type: String,
    pub title: String,
    pub description: String,
    pub location: String,
    pub when: When,
    pub private: bool,
    /// Shown as free rather than busy.
    pub free: bool,
    pub alarm_minutes: Option<u32>,
    pub completed: bool,
    pub person_id: Option<u32>,
    pub company_id: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error(
        "{0:?} is not a scenario: use \"small\", \"empty\", \
         \"generated:users=N[,events=N][,tasks=N][,contacts=N][,seed=N]\" or the path of a JSON scenario file"
    )]
    UnknownName(String),
    #[error("generated scenario: {0}")]
    BadGenerator(String),
    #[error("cannot read scenario file {}: {source}", path.display())]
    Unreadable {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("scenario file {}: {source}", path.display())]
    Invalid {
        path: std::path::PathBuf,
        source: serde_json::Error,
    },
}

/// Sizes of a generated scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generate {
    pub users: u32,
    /// Diary items per user, half in the CRM and half in the mailbox.
    pub events: u32,
    /// To-dos per user, half on each side.
    pub tasks: u32,
    /// Persons in the user's contact scope (companies where the user is our contact).
    pub contacts: u32,
    pub seed: u64,
}

impl Scenario {
    /// `small`, `empty`, `generated:...`, or a JSON file.
    pub fn load(spec: &str, now: Timestamp) -> Result<Scenario, ScenarioError> {
        match spec {
            "small" => Ok(Scenario::small(now)),
            "empty" => Ok(Scenario::generate(
                &Generate {
                    users: 0,
                    events: 0,
                    tasks: 0,
                    contacts: 0,
                    seed: 1,
                },
                now,
            )),
            _ if spec.starts_with("generated:") => {
                let g = Generate::parse(&spec["generated:".len()..])?;
                Ok(Scenario::generate(&g, now))
            }
            _ if Path::new(spec).is_file() => {
                let path = Path::new(spec);
                let text =
                    std::fs::read_to_string(path).map_err(|source| ScenarioError::Unreadable {
                        path: path.to_path_buf(),
                        source,
                    })?;
                serde_json::from_str(&text).map_err(|source| ScenarioError::Invalid {
                    path: path.to_path_buf(),
                    source,
                })
            }
            _ => Err(ScenarioError::UnknownName(spec.to_string())),
        }
    }

    fn tenants(seed: u64, rng: &mut ChaCha8Rng) -> (GraphTenant, SuperOfficeTenant) {
        let graph = GraphTenant {
            tenant_id: guid(rng),
            client_id: guid(rng),
            client_secret: format!("sandbox-graph-secret-{}", hex(rng, 8)),
            token_lifetime_secs: 3599,
            mailboxes: Vec::new(),
        };
        let superoffice = SuperOfficeTenant {
            context_identifier: format!("Cust{}", 10_000 + seed % 90_000),
            client_secret: hex(rng, 16),
            system_user_token: format!("SysUserToken-{}", hex(rng, 12)),
            private_key_pem: SANDBOX_PARTNER_PRIVATE_KEY_PEM.to_string(),
            basic_username: "crmsync".to_string(),
            basic_password: format!("sandbox-password-{}", hex(rng, 6)),
            ticket_lifetime_secs: 6 * 3600,
            associates: Vec::new(),
            companies: Vec::new(),
            persons: Vec::new(),
            appointments: Vec::new(),
        };
        (graph, superoffice)
    }

    /// Five associates and six mailboxes, a few dozen items each: ANNA, BO and CARL match
    /// their mailboxes by primary address, DINA only by a proxy address, EVA has no e-mail on
    /// her person card, and the mailbox `room.oslo@` has no associate.
    pub fn small(now: Timestamp) -> Scenario {
        let seed = 20_261_122;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut graph, mut superoffice) = Scenario::tenants(seed, &mut rng);
        let domain = "contoso.example";
        let people = [
            ("ANNA", "Anna", "Berg", Some("anna.berg"), "anna.berg", None),
            ("BO", "Bo", "Lind", Some("bo.lind"), "bo.lind", None),
            ("CARL", "Carl", "Dahl", Some("carl.dahl"), "carl.dahl", None),
            ("DINA", "Dina", "Ek", Some("dina"), "dina.ek", Some("dina")),
            ("EVA", "Eva", "Fors", None, "eva.fors", None),
        ];
        let own_company = 1;
        superoffice.companies.push(CompanySeed {
            id: own_company,
            name: "Contoso AS".to_string(),
            our_contact: None,
        });
        for (i, (login, first, last, crm_mail, mailbox, proxy_only)) in people.iter().enumerate() {
            let associate_id = 101 + i as u32;
            let person_id = 1001 + i as u32;
            superoffice.associates.push(AssociateSeed {
                id: associate_id,
                login: login.to_string(),
                person_id,
                active: true,
            });
            superoffice.persons.push(PersonSeed {
                id: person_id,
                company_id: own_company,
                first_name: first.to_string(),
                last_name: last.to_string(),
                emails: crm_mail
                    .map(|m| vec![format!("{m}@{domain}")])
                    .unwrap_or_default(),
                phones: vec![format!("+47 22 00 {:02} 00", i)],
                mobile: None,
                job_title: Some("Account manager".to_string()),
            });
            let primary = format!("{mailbox}@{domain}");
            let mut proxy_addresses = vec![format!("SMTP:{primary}")];
            if let Some(alias) = proxy_only {
                proxy_addresses.push(format!("smtp:{alias}@{domain}"));
            }
            graph.mailboxes.push(MailboxSeed {
                id: guid(&mut rng),
                display_name: format!("{first} {last}"),
                user_principal_name: primary.clone(),
                mail: Some(primary),
                proxy_addresses,
                time_zone: if i % 2 == 0 {
                    "Europe/Oslo"
                } else {
                    "America/New_York"
                }
                .to_string(),
                events: Vec::new(),
                tasks: Vec::new(),
                contacts: Vec::new(),
            });
        }
        let room = format!("room.oslo@{domain}");
        graph.mailboxes.push(MailboxSeed {
            id: guid(&mut rng),
            display_name: "Meeting room Oslo".to_string(),
            user_principal_name: room.clone(),
            mail: Some(room.clone()),
            proxy_addresses: vec![format!("SMTP:{room}")],
            time_zone: "Europe/Oslo".to_string(),
            events: Vec::new(),
            tasks: Vec::new(),
            contacts: Vec::new(),
        });
        let sizes = Generate {
            users: 5,
            events: 12,
            tasks: 6,
            contacts: 6,
            seed,
        };
        let mut ids = Ids::default();
        for i in 0..graph.mailboxes.len() {
            let associate = superoffice.associates.get(i).map(|a| a.id);
            fill_user(
                &mut graph.mailboxes[i],
                associate,
                &mut superoffice,
                &sizes,
                &mut ids,
                &mut rng,
                now,
            );
        }
        Scenario {
            name: "small".to_string(),
            seed,
            graph,
            superoffice,
        }
    }

    /// `users` associates linked by address to as many mailboxes, with `events`, `tasks` and
    /// `contacts` items each.
    pub fn generate(g: &Generate, now: Timestamp) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(g.seed);
        let (mut graph, mut superoffice) = Scenario::tenants(g.seed, &mut rng);
        superoffice.companies.push(CompanySeed {
            id: 1,
            name: "Tenant AS".to_string(),
            our_contact: None,
        });
        let zones = ["Europe/Oslo", "America/New_York", "UTC", "Europe/Berlin"];
        let mut ids = Ids::default();
        for i in 0..g.users {
            let first = FIRST_NAMES[i as usize % FIRST_NAMES.len()];
            let last = LAST_NAMES[(i as usize / FIRST_NAMES.len()) % LAST_NAMES.len()];
            let address = format!("user{i:05}@tenant.example");
            let associate_id = 100_000 + i;
            let person_id = 1_000_000 + i;
            superoffice.associates.push(AssociateSeed {
                id: associate_id,
                login: format!("U{i:05}"),
                person_id,
                active: true,
            });
            superoffice.persons.push(PersonSeed {
                id: person_id,
                company_id: 1,
                first_name: first.to_string(),
                last_name: last.to_string(),
                emails: vec![address.clone()],
                phones: Vec::new(),
                mobile: None,
                job_title: None,
            });
            graph.mailboxes.push(MailboxSeed {
                id: guid(&mut rng),
                display_name: format!("{first} {last}"),
                user_principal_name: address.clone(),
                mail: Some(address.clone()),
                proxy_addresses: vec![format!("SMTP:{address}")],
                time_zone: zones[i as usize % zones.len()].to_string(),
                events: Vec::new(),
                tasks: Vec::new(),
                contacts: Vec::new(),
            });
            let last_index = graph.mailboxes.len() - 1;
            fill_user(
                &mut graph.mailboxes[last_index],
                Some(associate_id),
                &mut superoffice,
                g,
                &mut ids,
                &mut rng,
                now,
            );
        }
        let name = if g.users == 0 {
            "empty".to_string()
        } else {
            format!(
                "generated:users={},events={},tasks={},contacts={},seed={}",
                g.users, g.events, g.tasks, g.contacts, g.seed
            )
        };
        Scenario {
            name,
            seed: g.seed,
            graph,
            superoffice,
        }
    }
}

impl Generate {
    fn parse(spec: &str) -> Result<Generate, ScenarioError> {
        let mut g = Generate {
            users: 0,
            events: 20,
            tasks: 5,
            contacts: 10,
            seed: 1,
        };
        let mut users = None;
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| ScenarioError::BadGenerator(format!("{part:?} is not KEY=N")))?;
            let n: u64 = value.parse().map_err(|_| {
                ScenarioError::BadGenerator(format!("{key}={value:?} is not a whole number"))
            })?;
            let small = |n: u64| {
                u32::try_from(n)
                    .map_err(|_| ScenarioError::BadGenerator(format!("{key}={n} is too large")))
            };
            match key {
                "users" => users = Some(small(n)?),
                "events" => g.events = small(n)?,
                "tasks" => g.tasks = small(n)?,
                "contacts" => g.contacts = small(n)?,
                "seed" => g.seed = n,
                _ => {
                    return Err(ScenarioError::BadGenerator(format!(
                        "unknown key {key:?} (users, events, tasks, contacts, seed)"
                    )));
                }
            }
        }
        g.users = users.ok_or_else(|| ScenarioError::BadGenerator("users=N is required".into()))?;
        Ok(g)
    }
}

#[derive(Default)]
struct Ids {
    company: u32,
    person: u32,
    appointment: u32,
}

const FIRST_NAMES: &[&str] = &[
    "Anna", "Bo", "Carl", "Dina", "Eva", "Frode", "Gunn", "Hans", "Ida", "Jon", "Kari", "Lars",
    "Mona", "Nils", "Ola", "Pia", "Rune", "Siri", "Tor", "Unni",
];
const LAST_NAMES: &[&str] = &[
    "Berg",
    "Lind",
    "Dahl",
    "Ek",
    "Fors",
    "Hagen",
    "Johansen",
    "Larsen",
    "Moen",
    "Nilsen",
    "Olsen",
    "Pettersen",
    "Strand",
    "Vik",
];
const SUBJECTS: &[&str] = &[
    "Project review",
    "Customer visit",
    "Quarterly planning",
    "Contract follow-up",
    "Demo",
    "Lunch with partner",
    "Budget meeting",
    "Support escalation",
    "Training",
    "Workshop",
];
const TASKS: &[&str] = &[
    "Send offer",
    "Call back",
    "Prepare slides",
    "Update forecast",
    "Renew contract",
    "Book travel",
    "Write minutes",
    "Check invoice",
];

fn guid(rng: &mut ChaCha8Rng) -> String {
    let b: [u8; 16] = rng.random();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:01x}{:02x}-a{:01x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6] & 0xf,
        b[7],
        b[8] & 0xf,
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

fn hex(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A time inside the default sync window (30 days back, 120 ahead), on a quarter hour.
fn timed(rng: &mut ChaCha8Rng, now: Timestamp, time_zone: &str) -> When {
    let days = rng.random_range(-28i64..118);
    let quarter = rng.random_range(28i64..72); // 07:00 to 18:00
    let zone = jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let day = now
        .to_zoned(zone.clone())
        .date()
        .checked_add(days.days())
        .unwrap_or(Date::MIN);
    let start = day
        .at(0, 0, 0, 0)
        .checked_add((quarter * 15).minutes())
        .ok()
        .and_then(|dt| dt.to_zoned(zone).ok())
        .map(|z| z.timestamp())
        .unwrap_or(now);
    let minutes = [30i64, 45, 60, 90, 120][rng.random_range(0..5usize)];
    When::Timed {
        start,
        end: start.checked_add(minutes.minutes()).unwrap_or(start),
        time_zone: time_zone.to_string(),
    }
}

fn all_day(rng: &mut ChaCha8Rng, now: Timestamp) -> When {
    let days = rng.random_range(-28i64..118);
    let start = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(days.days())
        .unwrap_or(Date::MIN);
    let length = rng.random_range(1i64..3);
    When::AllDay {
        start,
        end: start.checked_add(length.days()).unwrap_or(start),
    }
}

/// Gives one user its items: half of the diary and to-dos in the mailbox, half in the CRM
/// (for an associate), and `contacts` persons in companies where the associate is our contact.
fn fill_user(
    mailbox: &mut MailboxSeed,
    associate: Option<u32>,
    so: &mut SuperOfficeTenant,
    g: &Generate,
    ids: &mut Ids,
    rng: &mut ChaCha8Rng,
    now: Timestamp,
) {
    let zone = mailbox.time_zone.clone();
    let crm_events = if associate.is_some() { g.events / 2 } else { 0 };
    let crm_tasks = if associate.is_some() { g.tasks / 2 } else { 0 };
    for n in 0..(g.events - crm_events) {
        let when = if n % 10 == 9 {
            all_day(rng, now)
        } else {
            timed(rng, now, &zone)
        };
        mailbox.events.push(EventSeed {
            subject: format!(
                "{} ({})",
                SUBJECTS[rng.random_range(0..SUBJECTS.len())],
                n + 1
            ),
            body: "Agenda to follow.".to_string(),
            location: ["Oslo office", "Teams", "Customer site", ""][rng.random_range(0..4usize)]
                .to_string(),
            when,
            sensitivity: if n % 7 == 6 { "private" } else { "normal" }.to_string(),
            show_as: if n % 5 == 4 { "free" } else { "busy" }.to_string(),
            reminder_minutes: Some(15),
            categories: Vec::new(),
        });
    }
    for n in 0..(g.tasks - crm_tasks) {
        mailbox.tasks.push(TaskSeed {
            title: format!("{} ({})", TASKS[rng.random_range(0..TASKS.len())], n + 1),
            body: String::new(),
            due: Some(
                now.to_zoned(jiff::tz::TimeZone::UTC)
                    .date()
                    .checked_add(rng.random_range(-5i64..40).days())
                    .unwrap_or(Date::MIN),
            ),
            completed: n % 4 == 3,
            importance: "normal".to_string(),
        });
    }
    // A few private contacts in the mailbox: they must never reach the CRM.
    for n in 0..(g.contacts / 5) {
        mailbox.contacts.push(ContactSeed {
            given_name: FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())].to_string(),
            surname: format!("Private{n}"),
            email_addresses: vec![format!("private{n}.{}@example.net", hex(rng, 3))],
            business_phones: Vec::new(),
            mobile_phone: None,
            company_name: None,
            job_title: None,
        });
    }
    let Some(associate_id) = associate else {
        return;
    };
    ids.company += 1;
    let company_id = 10_000 + ids.company;
    so.companies.push(CompanySeed {
        id: company_id,
        name: format!("Customer {company_id} AS"),
        our_contact: Some(associate_id),
    });
    let mut persons = Vec::new();
    for n in 0..g.contacts {
        ids.person += 1;
        let id = 2_000_000 + ids.person;
        persons.push(id);
        let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        so.persons.push(PersonSeed {
            id,
            company_id,
            first_name: first.to_string(),
            last_name: last.to_string(),
            emails: vec![format!(
                "{}.{}{}@customer{company_id}.example",
                first.to_lowercase(),
                last.to_lowercase(),
                n
            )],
            phones: vec![format!(
                "+47 {}",
                40_000_000 + rng.random_range(0..9_999_999u32)
            )],
            mobile: None,
            job_title: Some(
                ["CEO", "Buyer", "CTO", "Engineer"][rng.random_range(0..4usize)].to_string(),
            ),
        });
    }
    for n in 0..crm_events {
        ids.appointment += 1;
        let when = if n % 10 == 9 {
            all_day(rng, now)
        } else {
            timed(rng, now, &zone)
        };
        so.appointments.push(AppointmentSeed {
            id: ids.appointment,
            associate_id,
            todo: false,
            task_type: ["Meeting", "Phone", "Lunch"][rng.random_range(0..3usize)].to_string(),
            title: format!(
                "{} (CRM {})",
                SUBJECTS[rng.random_range(0..SUBJECTS.len())],
                n + 1
            ),
            description: "Notes from the CRM.".to_string(),
            location: ["Oslo office", "Customer site", ""][rng.random_range(0..3usize)].to_string(),
            when,
            private: n % 7 == 6,
            free: n % 5 == 4,
            alarm_minutes: Some(15),
            completed: false,
            person_id: persons.get(n as usize % persons.len().max(1)).copied(),
            company_id: Some(company_id),
        });
    }
    for n in 0..crm_tasks {
        ids.appointment += 1;
        let day = now
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .checked_add(rng.random_range(-5i64..40).days())
            .unwrap_or(Date::MIN);
        so.appointments.push(AppointmentSeed {
            id: ids.appointment,
            associate_id,
            todo: true,
            task_type: "To do".to_string(),
            title: format!(
                "{} (CRM {})",
                TASKS[rng.random_range(0..TASKS.len())],
                n + 1
            ),
            description: String::new(),
            location: String::new(),
            when: When::AllDay {
                start: day,
                end: day.checked_add(1.day()).unwrap_or(day),
            },
            private: false,
            free: true,
            alarm_minutes: None,
            completed: n % 4 == 3,
            person_id: None,
            company_id: Some(company_id),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-22T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_small_scenario_covers_every_linking_case() {
        let s = Scenario::small(now());
        assert_eq!(s.superoffice.associates.len(), 5);
        assert_eq!(s.graph.mailboxes.len(), 6);
        let email_of = |login: &str| {
            let a = s
                .superoffice
                .associates
                .iter()
                .find(|a| a.login == login)
                .unwrap();
            s.superoffice
                .persons
                .iter()
                .find(|p| p.id == a.person_id)
                .unwrap()
                .emails
                .clone()
        };
        assert!(email_of("EVA").is_empty(), "one associate without e-mail");
        let dina = email_of("DINA")[0].clone();
        let by_proxy = s
            .graph
            .mailboxes
            .iter()
            .find(|m| {
                m.proxy_addresses
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(&format!("smtp:{dina}")))
            })
            .expect("DINA's address is a proxy address");
        assert_ne!(
            by_proxy.mail.as_deref(),
            Some(dina.as_str()),
            "and not the primary one"
        );
        assert!(
            s.graph
                .mailboxes
                .iter()
                .any(|m| m.display_name.contains("room"))
        );
        let items: usize = s
            .graph
            .mailboxes
            .iter()
            .map(|m| m.events.len() + m.tasks.len())
            .sum();
        assert!(items > 5 * 6, "a few dozen items: {items}");
        assert!(s.superoffice.appointments.iter().any(|a| a.todo));
        assert!(s.superoffice.appointments.iter().any(|a| !a.todo));
    }

    #[test]
    fn generated_scenarios_are_reproducible_and_sized() {
        let a = Scenario::load(
            "generated:users=20,events=10,tasks=4,contacts=5,seed=9",
            now(),
        )
        .unwrap();
        let b = Scenario::load(
            "generated:users=20,events=10,tasks=4,contacts=5,seed=9",
            now(),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.graph.mailboxes.len(), 20);
        assert_eq!(a.superoffice.associates.len(), 20);
        let events: usize = a.graph.mailboxes.iter().map(|m| m.events.len()).sum();
        let crm_diary = a
            .superoffice
            .appointments
            .iter()
            .filter(|x| !x.todo)
            .count();
        assert_eq!(events + crm_diary, 200);
        assert_eq!(a.superoffice.persons.len(), 20 + 20 * 5);
        let c = Scenario::load("generated:users=20,seed=10", now()).unwrap();
        assert_ne!(a.graph.mailboxes[0].id, c.graph.mailboxes[0].id);
    }

    #[test]
    fn bad_scenario_names_are_explained() {
        assert!(matches!(
            Scenario::load("huge", now()),
            Err(ScenarioError::UnknownName(_))
        ));
        assert!(matches!(
            Scenario::load("generated:users=x", now()),
            Err(ScenarioError::BadGenerator(_))
        ));
        assert!(matches!(
            Scenario::load("generated:events=3", now()),
            Err(ScenarioError::BadGenerator(_))
        ));
    }

    #[test]
    fn scenarios_round_trip_through_json() {
        let s = Scenario::small(now());
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Scenario>(&text).unwrap(), s);
    }
}
