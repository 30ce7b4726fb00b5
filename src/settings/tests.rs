use std::collections::BTreeMap;

use super::*;

struct Case {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Case {
    fn new() -> Self {
        Case {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    fn options(&self, config: Option<PathBuf>) -> LoadOptions {
        LoadOptions {
            config_path: config,
            default_path: self.dir.path().join("absent-default.toml"),
            env: self.env.clone(),
        }
    }

    fn load(&self, text: &str) -> Result<Loaded, SettingsError> {
        let path = self.file("crmsync.toml", text);
        load(&self.options(Some(path)))
    }

    fn problems(&self, text: &str) -> Vec<Problem> {
        match self.load(text) {
            Err(SettingsError::Invalid { problems }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }
}

fn effective(loaded: &Loaded) -> BTreeMap<String, (String, String)> {
    loaded
        .effective
        .iter()
        .map(|e| (e.key.clone(), (e.value.clone(), e.origin.clone())))
        .collect()
}

#[test]
fn without_a_file_the_defaults_apply() {
    let case = Case::new();
    let loaded = load(&case.options(None)).unwrap();
    let s = &loaded.settings;
    assert_eq!(s.daemon.state_dir, PathBuf::from("/var/lib/crmsync"));
    assert_eq!(s.daemon.shutdown_deadline, Duration::from_secs(20));
    assert_eq!(s.sync.interval, Duration::from_secs(60));
    assert_eq!(s.sync.max_parallel_users.get(), 64);
    assert_eq!(s.sync.default_rank, Rank::MIN);
    assert_eq!(s.log.format, LogFormat::Text);
    assert!(s.superoffice.is_none());
    assert!(s.mail_systems.is_empty());
    assert!(loaded.file.is_none());
    assert!(loaded.render().contains("interval = \"60s\""));
}

#[test]
fn metrics_listen_on_the_base_port_plus_the_rank() {
    let case = Case::new();
    let defaults = load(&case.options(None)).unwrap().settings.metrics;
    assert!(defaults.enabled);
    assert_eq!(
        defaults.address_for(Rank::new(3).unwrap()).unwrap(),
        "127.0.0.1:9103".parse().unwrap()
    );

    let loaded = case
        .load("[metrics]\nenabled = false\nlisten = \"[::1]:0\"\n")
        .unwrap();
    let metrics = loaded.settings.metrics;
    assert!(!metrics.enabled);
    // Port 0: every rank picks a free port of its own.
    assert_eq!(
        metrics.address_for(Rank::MAX).unwrap(),
        "[::1]:0".parse().unwrap()
    );

    let high = case
        .load("[metrics]\nlisten = \"127.0.0.1:65000\"\n")
        .unwrap()
        .settings
        .metrics;
    assert!(high.address_for(Rank::new(535).unwrap()).is_ok());
    let e = high.address_for(Rank::new(536).unwrap()).unwrap_err();
    assert!(e.to_string().contains("[metrics] listen"), "{e}");
}

#[test]
fn metrics_listen_is_an_ip_address_and_a_port() {
    let case = Case::new();
    for bad in ["localhost:9100", "127.0.0.1", "9100", "127.0.0.1:99999"] {
        let problems = case.problems(&format!("[metrics]\nlisten = \"{bad}\"\n"));
        assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
        assert_eq!(problems[0].key, "metrics.listen");
        assert!(
            problems[0].message.contains("127.0.0.1:9100"),
            "{problems:?}"
        );
    }
    let from_env = Case::new().env("CRMSYNC__METRICS__LISTEN", "127.0.0.2:9200");
    let loaded = load(&from_env.options(None)).unwrap();
    assert_eq!(
        loaded.settings.metrics.listen,
        "127.0.0.2:9200".parse().unwrap()
    );
}

#[test]
fn a_named_file_must_exist() {
    let case = Case::new();
    let missing = case.dir.path().join("nope.toml");
    match load(&case.options(Some(missing.clone()))) {
        Err(SettingsError::Missing { path }) => assert_eq!(path, missing),
        other => panic!("expected Missing, got {other:?}"),
    }
}

#[test]
fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
    let case = Case::new()
        .env("CRMSYNC__SYNC__INTERVAL", "30s")
        .env("CRMSYNC__SYNC__MAX_PARALLEL_USERS", "8");
    let loaded = case
        .load("[sync]\ninterval = \"5s\"\ndefault_rank = 7\n")
        .unwrap();
    assert_eq!(loaded.settings.sync.interval, Duration::from_secs(30));
    assert_eq!(loaded.settings.sync.max_parallel_users.get(), 8);
    assert_eq!(loaded.settings.sync.default_rank, Rank::new(7).unwrap());
    let eff = effective(&loaded);
    assert_eq!(
        eff["sync.interval"].1,
        "environment variable CRMSYNC__SYNC__INTERVAL"
    );
    assert!(eff["sync.default_rank"].1.ends_with("crmsync.toml:3"));
    assert_eq!(eff["daemon.state_dir"].1, "built-in default");
}

#[test]
fn unknown_keys_are_errors_with_their_line_and_a_suggestion() {
    let case = Case::new();
    let problems = case.problems("[sync]\n\nintervall = \"5s\"\n\n[nonsense]\nx = 1\n");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0].key, "sync.intervall");
    assert!(matches!(problems[0].origin, Origin::File { line: 3, .. }));
    assert!(problems[0].message.contains("did you mean sync.interval?"));
    assert_eq!(problems[1].key, "nonsense");
    assert!(matches!(problems[1].origin, Origin::File { line: 5, .. }));
}

#[test]
fn unknown_keys_from_the_environment_name_the_variable() {
    let case = Case::new().env("CRMSYNC__SYNC__INTERVALL", "5s");
    let problems = case.problems("");
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].origin,
        Origin::Env {
            var: "CRMSYNC__SYNC__INTERVALL".into()
        }
    );
}

#[test]
fn a_variable_with_a_single_underscore_is_not_silently_ignored() {
    let case = Case::new().env("CRMSYNC_SYNC__INTERVAL", "5s");
    let problems = case.problems("");
    assert_eq!(problems[0].key, "CRMSYNC_SYNC__INTERVAL");
    assert!(problems[0].message.contains("two underscores"));
}

#[test]
fn invalid_values_are_each_reported() {
    let case = Case::new().env("CRMSYNC__SYNC__MAX_PARALLEL_USERS", "many");
    let problems = case.problems(
        r#"
[daemon]
state_dir = "relative/dir"
shutdown_deadline = 20
[sync]
interval = "0s"
default_rank = 1000
[history]
cache_capacity_mib = 0
[log]
format = "xml"
[mail_systems.contoso]
tenant_id = "t"
client_id = "c"
client_secret_credential = "c"
base_url = "not a url"
authority_url = "ftp://login.example"
"#,
    );
    let by_key: BTreeMap<&str, &Problem> = problems.iter().map(|p| (p.key.as_str(), p)).collect();
    let expect = |key: &str, fragment: &str| {
        let p = by_key
            .get(key)
            .unwrap_or_else(|| panic!("no problem for {key} in {problems:?}"));
        assert!(p.message.contains(fragment), "{key}: {}", p.message);
    };
    expect("sync.max_parallel_users", "found string \"many\"");
    expect("daemon.state_dir", "not an absolute path");
    expect("daemon.shutdown_deadline", "with a unit");
    expect("sync.interval", "too short");
    expect("sync.default_rank", "from 1 to 999");
    expect("history.cache_capacity_mib", "out of range");
    expect("log.format", "not one of");
    expect("mail_systems.contoso.base_url", "not a valid URL");
    expect("mail_systems.contoso.authority_url", "not an http(s) URL");
    expect("mail_systems.contoso.client_secret", "no secret");
    assert!(matches!(
        by_key["sync.default_rank"].origin,
        Origin::File { line: 7, .. }
    ));
    // Problems come in reading order: the variable first, then the file top to bottom.
    assert_eq!(problems[0].key, "sync.max_parallel_users");
}

#[test]
fn syntax_errors_name_line_and_column() {
    let case = Case::new();
    match case.load("[sync]\ninterval = 5s\n") {
        Err(SettingsError::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 12)),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn secrets_in_the_configuration_text_are_refused() {
    let case = Case::new();
    let problems = case.problems(
        "[mail_systems.contoso]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"s3cr3t\"\n",
    );
    let p = problems
        .iter()
        .find(|p| {
            p.key == "mail_systems.contoso.client_secret" && p.message.contains("not accepted")
        })
        .expect("the secret key is refused");
    assert!(matches!(p.origin, Origin::File { line: 4, .. }));
    assert!(!format!("{problems:?}").contains("s3cr3t"));
}

#[test]
fn secrets_come_from_files_or_credentials_and_are_never_shown() {
    let case = Case::new();
    let secret_file = case.file("graph-secret", "file-secret-value\n");
    let creds = case.dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(
        creds.join("crmsync_superoffice-password"),
        "credential-secret-value",
    )
    .unwrap();
    let case = case.env("CREDENTIALS_DIRECTORY", creds.to_str().unwrap());
    let loaded = case
        .load(&format!(
            r#"
[superoffice]
base_url = "https://crm.example.com/superoffice"
auth = "basic"
username = "crmsync"

[mail_systems.contoso]
tenant_id = "t"
client_id = "c"
client_secret_file = "{}"
"#,
            secret_file.display()
        ))
        .unwrap();
    let graph = &loaded.settings.mail_systems["contoso"];
    assert_eq!(graph.client_secret.expose(), "file-secret-value");
    assert_eq!(graph.base_url.as_str(), "https://graph.microsoft.com/v1.0");
    match &loaded.settings.superoffice.as_ref().unwrap().auth {
        SuperOfficeAuth::Basic { username, password } => {
            assert_eq!(username, "crmsync");
            assert_eq!(password.expose(), "credential-secret-value");
        }
        other => panic!("expected basic auth, got {other:?}"),
    }
    let shown = format!("{}\n{:?}", loaded.render(), loaded);
    assert!(!shown.contains("file-secret-value"), "{shown}");
    assert!(!shown.contains("credential-secret-value"), "{shown}");
    assert!(shown.contains("client_secret = \"<redacted>\""), "{shown}");
}

#[test]
fn the_superoffice_budget_and_its_sharers_are_read_and_checked() {
    let case = Case::new().env("CRMSYNC__SUPEROFFICE__SHARED_BY_RANKS", "3");
    let password = case.file("password", "x");
    let basic = format!(
        "[superoffice]\nbase_url = \"https://crm.example.com\"\nauth = \"basic\"\nusername = \"u\"\npassword_file = \"{}\"\n",
        password.display()
    );
    let loaded = case
        .load(&format!("{basic}calls_per_second = 20\n"))
        .unwrap();
    let so = loaded.settings.superoffice.as_ref().unwrap();
    assert_eq!(so.budget.calls_per_second.get(), 20);
    assert_eq!(so.budget.shared_by_ranks.get(), 3);
    let shown = effective(&loaded);
    assert_eq!(shown["superoffice.calls_per_second"].0, "20");
    assert_eq!(shown["superoffice.shared_by_ranks"].0, "3");
    assert!(
        shown["superoffice.shared_by_ranks"]
            .1
            .contains("CRMSYNC__SUPEROFFICE__SHARED_BY_RANKS"),
        "{shown:?}"
    );

    // Defaults: SuperOffice's documented 10 calls per second, for one daemon.
    let defaults = Case::new().load(&basic).unwrap();
    let so = defaults.settings.superoffice.unwrap();
    assert_eq!(so.budget, CallBudget::default());
    assert_eq!(so.budget.calls_per_second.get(), 10);
    assert_eq!(so.budget.shared_by_ranks.get(), 1);

    // Out of range, and reported even when the authentication is incomplete.
    let problems = Case::new().problems(
        "[superoffice]\nbase_url = \"https://crm.example.com\"\nauth = \"basic\"\ncalls_per_second = 0\nshared_by_ranks = 1000\n",
    );
    let by_key: BTreeMap<&str, &Problem> = problems.iter().map(|p| (p.key.as_str(), p)).collect();
    assert!(
        by_key["superoffice.calls_per_second"]
            .message
            .contains("from 1 to 1000"),
        "{problems:?}"
    );
    assert!(
        by_key["superoffice.shared_by_ranks"]
            .message
            .contains("from 1 to 999"),
        "{problems:?}"
    );
    assert!(by_key.contains_key("superoffice.username"), "{problems:?}");
}

#[test]
fn keys_of_the_other_superoffice_authentication_are_flagged() {
    let case = Case::new();
    let problems = case.problems(
        "[superoffice]\nbase_url = \"https://crm.example.com\"\nauth = \"basic\"\nusername = \"u\"\npassword_credential = \"p\"\ncontext_identifier = \"Cust1\"\n",
    );
    assert!(
        problems
            .iter()
            .any(|p| p.key == "superoffice.context_identifier"
                && p.message.contains("not used with"))
    );
}

#[test]
fn mail_system_names_are_restricted() {
    let case = Case::new();
    let problems = case.problems("[mail_systems.Contoso]\nkind = \"graph\"\n");
    assert_eq!(problems[0].key, "mail_systems.Contoso");
    assert!(problems[0].message.contains("lower-case"));
}

/// `config/crmsync.toml`: every documented key, with its section, and the documented value.
fn documented() -> Vec<(String, String, String)> {
    let text = include_str!("../../config/crmsync.toml");
    let mut section = String::new();
    let mut keys = Vec::new();
    for line in text.lines() {
        let bare = line.strip_prefix('#').unwrap_or(line).trim();
        if let Some(name) = bare.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((key, value)) = bare.split_once(" = ")
            && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && !line.starts_with("# ")
        {
            keys.push((section.clone(), key.to_string(), value.to_string()));
        }
    }
    keys
}

/// The documented file with every key switched on, for one SuperOffice authentication.
fn documented_config(auth: &str) -> String {
    let (drop, keep_auth) = match auth {
        "basic" => (
            [
                "context_identifier",
                "client_secret",
                "private_key",
                "system_user_token",
            ],
            "\"basic\"",
        ),
        _ => (["username", "password", "-", "-"], "\"system-user\""),
    };
    let mut out = String::new();
    let mut last_section = String::new();
    for (section, key, value) in documented() {
        if section == "superoffice" && drop.iter().any(|d| key.starts_with(d)) {
            continue;
        }
        if key.ends_with("_file") {
            continue; // the credentials directory provides the secrets
        }
        if section != last_section {
            out.push_str(&format!("[{section}]\n"));
            last_section = section.clone();
        }
        let value = if key == "auth" {
            keep_auth.to_string()
        } else {
            value
        };
        let value = if key == "state_dir" {
            "\"/var/lib/crmsync\"".to_string()
        } else {
            value
        };
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

#[test]
fn the_documented_configuration_has_every_key_with_its_default() {
    let case = Case::new();
    let creds = case.dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    for name in [
        "superoffice-client-secret",
        "superoffice-private-key",
        "superoffice-system-user-token",
        "superoffice-password",
        "graph-contoso-client-secret",
    ] {
        std::fs::write(creds.join(name), "x").unwrap();
    }
    let case = case.env("CREDENTIALS_DIRECTORY", creds.to_str().unwrap());
    let documented: BTreeMap<String, String> = documented()
        .into_iter()
        .map(|(section, key, value)| (format!("{section}.{key}"), value))
        .collect();

    // Documented defaults are the built-in ones.
    let defaults = load(&case.options(None)).unwrap();
    for entry in &defaults.effective {
        assert_eq!(
            documented.get(&entry.key),
            Some(&entry.value),
            "config/crmsync.toml documents {} with a different default",
            entry.key
        );
    }

    // Every documented key is known, and every known key is documented.
    for auth in ["system-user", "basic"] {
        let text = documented_config(auth);
        let loaded = case
            .load(&text)
            .unwrap_or_else(|e| panic!("the documented keys ({auth}) do not load: {e}\n{text}"));
        for entry in &loaded.effective {
            let secret_documented = documented.contains_key(&format!("{}_file", entry.key))
                && documented.contains_key(&format!("{}_credential", entry.key));
            assert!(
                documented.contains_key(&entry.key) || secret_documented,
                "{} is not documented in config/crmsync.toml",
                entry.key
            );
        }
    }
}
