use std::sync::atomic::{AtomicU32, Ordering};

use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::limits::LimiterSettings;

/// Credentials whose token changes each time it is refused.
#[derive(Default)]
struct TestCredentials {
    generation: AtomicU32,
    refused: AtomicU32,
}

impl Credentials for TestCredentials {
    async fn authorize(&self) -> Result<Vec<(HeaderName, HeaderValue)>, ConnectorError> {
        let token = format!("Bearer token-{}", self.generation.load(Ordering::SeqCst));
        Ok(vec![(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_str(&token).unwrap(),
        )])
    }

    fn refused(&self) {
        self.refused.fetch_add(1, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

fn http() -> Http {
    let limiter = Arc::new(Limiter::new(LimiterSettings {
        per_key: None,
        concurrency_per_key: Some(4),
        global: None,
    }));
    Http::new(
        Service::Graph,
        limiter,
        Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(5),
            total: Duration::from_millis(1500),
        },
    )
    .unwrap()
    .with_backoff(Backoff {
        base: Duration::from_millis(20),
        max: Duration::from_millis(100),
        retries: 3,
    })
}

fn get(server: &MockServer, p: &str) -> Request {
    Request::new(
        Method::GET,
        Url::parse(&format!("{}{p}", server.uri())).unwrap(),
        "m1",
    )
}

#[tokio::test]
async fn a_401_renews_the_credentials_once_and_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/x"))
        .and(header("authorization", "Bearer token-0"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/x"))
        .and(header("authorization", "Bearer token-1"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&server)
        .await;
    let credentials = TestCredentials::default();
    let response = http()
        .send(&get(&server, "/x"), &credentials)
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(credentials.refused.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_second_401_is_a_service_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&server)
        .await;
    let result = http()
        .send(&get(&server, "/x"), &TestCredentials::default())
        .await;
    assert!(
        matches!(result, Err(ConnectorError::Service { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_429_pauses_the_key_for_retry_after_then_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0.3"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&server)
        .await;
    let http = http();
    let started = std::time::Instant::now();
    let response = http
        .send(&get(&server, "/x"), &TestCredentials::default())
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(http.limiter().stats().pauses, 1);
}

#[tokio::test]
async fn server_errors_are_retried_with_back_off_for_safe_requests_only() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let http = http();
    let credentials = TestCredentials::default();
    let ok = http.send(&get(&server, "/x"), &credentials).await.unwrap();
    assert_eq!(ok.status, StatusCode::OK);

    let post = Request::new(
        Method::POST,
        Url::parse(&format!("{}/x", server.uri())).unwrap(),
        "m1",
    )
    .json(&serde_json::json!({"subject": "x"}));
    let result = http.send(&post, &credentials).await;
    assert!(
        matches!(result, Err(ConnectorError::Transient { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn persistent_failures_end_as_transient_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .expect(4)
        .mount(&server)
        .await;
    let result = http()
        .send(&get(&server, "/x"), &TestCredentials::default())
        .await;
    assert!(
        matches!(result, Err(ConnectorError::Transient { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let request = get(&server, "/x");
    let http = http().with_backoff(Backoff {
        retries: 0,
        ..Backoff::default()
    });
    let result = http.send(&request, &TestCredentials::default()).await;
    match result {
        Err(ConnectorError::Transient { what, .. }) => assert_eq!(what, "timed out"),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn retry_after_is_read_as_seconds_or_a_date() {
    let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    assert_eq!(
        parse_retry_after("2.128", now),
        Some(Duration::from_millis(2128))
    );
    assert_eq!(
        parse_retry_after(" 10 ", now),
        Some(Duration::from_secs(10))
    );
    let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
    assert_eq!(
        parse_retry_after(&later, now),
        Some(Duration::from_secs(30))
    );
    let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
    assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("-1", now), None);
    assert_eq!(parse_retry_after("soon", now), None);
}

/// What an [`HttpObserver`] was told.
#[derive(Default)]
struct Seen {
    statuses: std::sync::Mutex<Vec<(Service, Option<u16>)>>,
    waited: std::sync::Mutex<Duration>,
    queue: std::sync::atomic::AtomicI64,
}

impl HttpObserver for Seen {
    fn response(&self, service: Service, status: Option<u16>) {
        self.statuses.lock().unwrap().push((service, status));
    }

    fn waited(&self, _service: Service, wait: Duration) {
        *self.waited.lock().unwrap() += wait;
    }

    fn queue(&self, _service: Service, delta: i64) {
        self.queue.fetch_add(delta, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn the_observer_hears_every_attempt_and_the_waits_of_the_limiter() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0.05"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(3)
        .mount(&server)
        .await;
    let seen = Arc::new(Seen::default());
    let observer: Arc<dyn HttpObserver> = seen.clone();
    let limiter = observed_limiter(
        Limiter::new(LimiterSettings {
            per_key: None,
            concurrency_per_key: Some(4),
            global: None,
        }),
        Service::SuperOffice,
        Some(&observer),
    );
    let http = Http::new(Service::SuperOffice, Arc::new(limiter), Timeouts::default())
        .unwrap()
        .with_backoff(Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(100),
            retries: 3,
        })
        .with_observer(Some(observer));
    let credentials = TestCredentials::default();
    http.send(&get(&server, "/x"), &credentials).await.unwrap();
    let so = Service::SuperOffice;
    assert_eq!(
        *seen.statuses.lock().unwrap(),
        [(so, Some(429)), (so, Some(503)), (so, Some(200))]
    );
    assert!(*seen.waited.lock().unwrap() > Duration::ZERO);
    assert_eq!(seen.queue.load(Ordering::SeqCst), 0);

    // No answer at all: a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let post = Request::new(
        Method::POST,
        Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap(),
        "m1",
    );
    assert!(http.send(&post, &credentials).await.is_err());
    assert_eq!(seen.statuses.lock().unwrap().last(), Some(&(so, None)));
}
