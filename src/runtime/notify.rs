//! The systemd notify protocol: READY, STATUS, RELOADING, STOPPING and a watchdog that pings
//! only while the scheduler loop makes progress. Without `NOTIFY_SOCKET` all of it is silent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
pub struct Notifier {
    warned: Arc<AtomicBool>,
}

impl Notifier {
    pub fn new() -> Self {
        Self::default()
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(states) {
            // One warning is enough: a broken socket stays broken.
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(error = %e, "cannot send to systemd's NOTIFY_SOCKET");
            }
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    pub fn reloading(&self) {
        // systemd >= 253 needs MONOTONIC_USEC with RELOADING=1; older ones ignore it.
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    pub fn stopping(&self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }
}

/// The scheduler loop's heartbeat: it beats on every turn of the loop.
#[derive(Clone)]
pub struct Progress {
    tx: Arc<watch::Sender<Instant>>,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            tx: Arc::new(watch::channel(Instant::now()).0),
        }
    }

    pub fn beat(&self) {
        self.tx.send_replace(Instant::now());
    }

    pub fn since_last_beat(&self) -> Duration {
        self.tx.borrow().elapsed()
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// The watchdog period systemd asked for (`WATCHDOG_USEC`, for this process).
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// How often the scheduler loop must beat for the watchdog to keep pinging.
pub fn beat_interval(watchdog: Option<Duration>) -> Duration {
    let default = Duration::from_secs(1);
    watchdog.map_or(default, |w| (w / 4).min(default))
}

/// Pings (`WATCHDOG=1`) every half period while the loop has beaten within the last half
/// period; when it has not, the pings stop and systemd restarts the service.
pub async fn run_watchdog(
    ping: impl Fn(),
    progress: Progress,
    period: Duration,
    stop: CancellationToken,
) {
    let half = period / 2;
    let mut ticker = tokio::time::interval(half);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stalled = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let idle = progress.since_last_beat();
        if idle < half {
            if stalled {
                tracing::info!("the scheduler loop makes progress again; watchdog pings resume");
                stalled = false;
            }
            ping();
        } else if !stalled {
            stalled = true;
            tracing::error!(
                stalled_for = ?idle,
                "the scheduler loop has made no progress; withholding watchdog pings so that systemd restarts the service"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_beats_four_times_per_watchdog_period_at_most_every_second() {
        assert_eq!(beat_interval(None), Duration::from_secs(1));
        assert_eq!(
            beat_interval(Some(Duration::from_secs(30))),
            Duration::from_secs(1)
        );
        assert_eq!(
            beat_interval(Some(Duration::from_millis(400))),
            Duration::from_millis(100)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_pings_only_while_the_loop_beats() {
        use std::sync::atomic::AtomicUsize;
        let pings = Arc::new(AtomicUsize::new(0));
        let progress = Progress::new();
        let stop = CancellationToken::new();
        let counter = pings.clone();
        let task = tokio::spawn(run_watchdog(
            move || {
                counter.fetch_add(1, Ordering::SeqCst);
            },
            progress.clone(),
            Duration::from_secs(10),
            stop.clone(),
        ));
        let count = || pings.load(Ordering::SeqCst);
        let step = |secs| tokio::time::sleep(Duration::from_secs(secs));

        // Beating every second: a ping every 5 s.
        for _ in 0..20 {
            progress.beat();
            step(1).await;
        }
        let while_beating = count();
        assert!((4..=5).contains(&while_beating), "{while_beating}");

        // The loop stalls: no more pings.
        step(30).await;
        assert!(count() <= while_beating + 1, "{}", count());
        let stalled = count();

        // It moves again: pings resume.
        for _ in 0..10 {
            progress.beat();
            step(1).await;
        }
        assert!(count() > stalled);

        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn progress_ages_with_time() {
        let progress = Progress::new();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(progress.since_last_beat(), Duration::from_secs(3));
        progress.beat();
        assert_eq!(progress.since_last_beat(), Duration::ZERO);
    }
}
