//! The clients' own cost per request: one read of one item through the Graph client and the
//! SuperOffice client against the in-process sandbox on loopback (limits off). Afterwards the
//! emulators' own handling time, from the sandbox's request log, is printed beside it: the
//! difference is the client (limiter, auth header, HTTP, JSON, mapping).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crmsync::connector::graph::{GraphClient, GraphOptions};
use crmsync::connector::model::{CrmId, Kind};
use crmsync::connector::superoffice::{SuperOfficeClient, SuperOfficeOptions};
use crmsync::connector::{CrmConnector, MailboxConnector, MailboxRef};
use crmsync::sandbox::{Emulator, LogQuery, Sandbox, SandboxOptions, Scenario};
use crmsync::settings::{
    CallBudget, MailSystemKind, MailSystemSettings, Secret, SuperOfficeAuth, SuperOfficeSettings,
};

/// Quotas that never bind: the bench measures the client, not the pace the quotas set.
fn unlimited() -> crmsync::limits::LimiterSettings {
    let many = std::num::NonZeroU32::new(1_000_000_000).expect("non-zero");
    let rate = crmsync::limits::RateLimit {
        requests: many,
        per: std::time::Duration::from_secs(1),
        burst: many,
    };
    crmsync::limits::LimiterSettings {
        per_key: Some(rate),
        concurrency_per_key: Some(4),
        global: Some(rate),
    }
}

fn bench_clients(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sandbox = runtime
        .block_on(Sandbox::start(SandboxOptions::local(Scenario::small(
            jiff::Timestamp::now(),
        ))))
        .expect("sandbox");
    let creds = sandbox.credentials();
    let graph = GraphClient::new(
        &MailSystemSettings {
            name: "bench".into(),
            kind: MailSystemKind::Graph,
            tenant_id: creds.graph_tenant_id.clone(),
            client_id: creds.graph_client_id.clone(),
            client_secret: Secret::new(creds.graph_client_secret.clone()),
            base_url: sandbox.urls().graph.clone(),
            authority_url: sandbox.urls().authority.clone(),
        },
        GraphOptions {
            limits: unlimited(),
            ..GraphOptions::default()
        },
    )
    .expect("Graph client");
    let crm = SuperOfficeClient::new(
        &SuperOfficeSettings {
            base_url: sandbox.urls().superoffice.clone(),
            auth: SuperOfficeAuth::SystemUser {
                context_identifier: creds.superoffice_context_identifier.clone(),
                client_secret: Secret::new(creds.superoffice_client_secret.clone()),
                private_key: Secret::new(creds.superoffice_private_key_pem.clone()),
                system_user_token: Secret::new(creds.superoffice_system_user_token.clone()),
            },
            budget: CallBudget::default(),
        },
        SuperOfficeOptions {
            limits: Some(unlimited()),
            ..SuperOfficeOptions::default()
        },
    )
    .expect("SuperOffice client");
    let scenario = sandbox.state().scenario();
    let seed = &scenario.graph.mailboxes[0];
    let mailbox = MailboxRef {
        address: seed.mail.clone().unwrap_or_default(),
        id: Some(seed.id.clone()),
    };
    let window = crmsync::connector::model::Window {
        start: jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * 30),
        end: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 120),
    };
    // One event and one appointment to read, and the tokens and ticket in place.
    let event = runtime
        .block_on(graph.changes(&mailbox, Kind::Diary, None, &window))
        .expect("a delta round")
        .changes
        .into_iter()
        .find_map(|c| match c {
            crmsync::connector::model::Change::Upsert(o) => Some(o.id),
            _ => None,
        })
        .expect("an event");
    let appointment = CrmId(
        scenario
            .superoffice
            .appointments
            .iter()
            .find(|a| !a.todo)
            .expect("an appointment")
            .id,
    );
    runtime
        .block_on(crm.get(Kind::Diary, appointment))
        .expect("a ticket");

    let log = &sandbox.state().log;
    let mut group = c.benchmark_group("client request");
    log.clear();
    group.bench_function("Graph: read one event", |b| {
        b.iter(|| {
            runtime
                .block_on(graph.get(&mailbox, Kind::Diary, black_box(&event)))
                .expect("read")
        })
    });
    let graph_server = mean_server_ms(log, Emulator::Graph);
    log.clear();
    group.bench_function("SuperOffice: read one appointment", |b| {
        b.iter(|| {
            runtime
                .block_on(crm.get(Kind::Diary, black_box(appointment)))
                .expect("read")
        })
    });
    let so_server = mean_server_ms(log, Emulator::SuperOffice);
    group.finish();
    eprintln!(
        "emulator handling time per request (from the sandbox log): Graph {graph_server:.3} ms, SuperOffice {so_server:.3} ms"
    );
}

fn mean_server_ms(log: &crmsync::sandbox::RequestLog, emulator: Emulator) -> f64 {
    let entries = log.query(&LogQuery {
        emulator: Some(emulator),
        ..LogQuery::default()
    });
    if entries.is_empty() {
        return 0.0;
    }
    entries.iter().map(|e| e.duration_ms).sum::<f64>() / entries.len() as f64
}

criterion_group!(benches, bench_clients);
criterion_main!(benches);
