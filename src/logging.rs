//! Logging through `tracing`, as text or JSON on standard error (the journal under
//! systemd). A rank daemon puts its rank on every line. `RUST_LOG`, when set, overrides
//! `[log] level`; the level can change on reload.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::registry::Rank;
use crate::settings::{LogFormat, LogSettings};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("environment variable RUST_LOG={value:?} is not a log filter: {message}")]
    BadRustLog { value: String, message: String },
    #[error("log.level {value:?} is not a log filter: {message}")]
    BadLevel { value: String, message: String },
    #[error("a logger is already installed")]
    AlreadyInstalled,
}

/// Changes the filter of the installed logger.
#[derive(Clone)]
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    rust_log: Option<String>,
}

impl LogHandle {
    /// Applies a new `[log] level`, unless `RUST_LOG` overrides it.
    pub fn set_level(&self, level: &str) -> Result<(), LogError> {
        if self.rust_log.is_some() {
            return Ok(());
        }
        let filter = parse_filter(level).map_err(|message| LogError::BadLevel {
            value: level.to_string(),
            message,
        })?;
        // Fails only if the subscriber is gone, when there is nothing left to configure.
        let _ = self.filter.reload(filter);
        Ok(())
    }
}

fn parse_filter(directives: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .parse(directives)
        .map_err(|e| e.to_string())
}

/// Where log lines go. Standard error in the binary; tests pass a buffer.
pub fn init(settings: &LogSettings, rank: Option<Rank>) -> Result<LogHandle, LogError> {
    init_with_writer(settings, rank, std::io::stderr)
}

pub fn init_with_writer<W>(
    settings: &LogSettings,
    rank: Option<Rank>,
    writer: W,
) -> Result<LogHandle, LogError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let filter = match &rust_log {
        Some(value) => parse_filter(value).map_err(|message| LogError::BadRustLog {
            value: value.clone(),
            message,
        })?,
        None => parse_filter(&settings.level).map_err(|message| LogError::BadLevel {
            value: settings.level.clone(),
            message,
        })?,
    };
    let (filter_layer, handle) = reload::Layer::new(filter);
    // Under systemd the journal stamps each line; a second timestamp is noise.
    let timestamps = std::env::var_os("JOURNAL_STREAM").is_none();
    let base = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    let result = match settings.format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(filter_layer)
            .with(base.event_format(RankText {
                inner: format().without_time().with_level(false),
                rank,
                timestamps,
            }))
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter_layer)
            .with(base.json().event_format(RankJson {
                inner: format().json(),
                rank,
            }))
            .try_init(),
    };
    result.map_err(|_| LogError::AlreadyInstalled)?;
    Ok(LogHandle {
        filter: handle,
        rust_log,
    })
}

fn format() -> format::Format {
    format::Format::default()
}

/// `2026-11-22T10:00:00.123Z  INFO rank=3 crmsync::runtime: message key=value`
struct RankText {
    inner: format::Format<format::Full, ()>,
    rank: Option<Rank>,
    timestamps: bool,
}

impl<S, N> FormatEvent<S, N> for RankText
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if self.timestamps {
            write!(
                writer,
                "{} ",
                jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            )?;
        }
        write!(writer, "{:>5} ", event.metadata().level())?;
        if let Some(rank) = self.rank {
            write!(writer, "rank={rank} ")?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

/// The JSON line of `tracing-subscriber` with `"rank":N` as its first field.
struct RankJson {
    inner: format::Format<format::Json>,
    rank: Option<Rank>,
}

impl<S, N> FormatEvent<S, N> for RankJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(rank) = self.rank else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"rank\":{rank},{rest}"),
            None => writer.write_str(&line),
        }
    }
}
