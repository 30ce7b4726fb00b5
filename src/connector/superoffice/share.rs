//! This daemon's share of the tenant's request budget. SuperOffice asks for "no more than 10
//! API calls per second" per tenant, and every rank daemon of every host draws on that one
//! budget; a client that took all of it would, with N daemons, offer N times the budget and
//! meet 429s. So each client takes `calls_per_second / shared_by_ranks`.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::limits::{LimiterSettings, RateLimit};
use crate::settings::CallBudget;

/// The client quota for one of `budget.shared_by_ranks` daemons: `calls_per_second` requests
/// per `shared_by_ranks` seconds (exact for shares below one call a second, such as 10 among
/// 12 daemons), bursts and requests in flight of the whole calls in the share, at least one.
pub fn tenant_share(budget: CallBudget) -> LimiterSettings {
    let calls = budget.calls_per_second;
    let ranks = budget.shared_by_ranks;
    // A burst above the share would let a daemon take, for an instant, what the others
    // are owed; below one it could never send.
    let whole = NonZeroU32::new(calls.get() / ranks.get()).unwrap_or(NonZeroU32::MIN);
    LimiterSettings {
        per_key: None,
        concurrency_per_key: Some(whole.get() as usize),
        global: Some(RateLimit {
            requests: calls,
            per: Duration::from_secs(u64::from(ranks.get())),
            burst: whole,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(calls: u32, ranks: u32) -> LimiterSettings {
        tenant_share(CallBudget {
            calls_per_second: NonZeroU32::new(calls).unwrap(),
            shared_by_ranks: NonZeroU32::new(ranks).unwrap(),
        })
    }

    /// Requests a second the quota allows over a long run.
    fn per_second(limits: &LimiterSettings) -> f64 {
        let global = limits.global.unwrap();
        f64::from(global.requests.get()) / global.per.as_secs_f64()
    }

    #[test]
    fn one_daemon_takes_the_whole_documented_budget() {
        let limits = share(10, 1);
        assert_eq!(limits, tenant_share(CallBudget::default()));
        assert_eq!(per_second(&limits), 10.0);
        assert_eq!(limits.global.unwrap().burst.get(), 10);
        assert_eq!(limits.concurrency_per_key, Some(10));
        assert_eq!(limits.per_key, None, "SuperOffice is limited as a whole");
    }

    #[test]
    fn four_daemons_take_a_quarter_each() {
        let limits = share(10, 4);
        assert_eq!(per_second(&limits), 2.5);
        assert_eq!(limits.global.unwrap().burst.get(), 2);
        assert_eq!(limits.concurrency_per_key, Some(2));
    }

    #[test]
    fn a_share_below_one_call_a_second_still_sends() {
        let limits = share(10, 12);
        let global = limits.global.unwrap();
        assert_eq!(global.requests.get(), 10);
        assert_eq!(global.per, Duration::from_secs(12));
        assert_eq!(global.burst.get(), 1);
        assert_eq!(limits.concurrency_per_key, Some(1));
    }

    /// The client built the way the daemon and the admin commands build it (default
    /// options) takes the share its settings give; explicit limits (tests, benches) win.
    #[test]
    fn the_client_takes_the_share_of_its_settings() {
        use crate::connector::superoffice::{SuperOfficeClient, SuperOfficeOptions};
        use crate::settings::{Secret, SuperOfficeAuth, SuperOfficeSettings};
        let settings = SuperOfficeSettings {
            base_url: url::Url::parse("https://crm.example.com/superoffice").unwrap(),
            auth: SuperOfficeAuth::Basic {
                username: "crmsync".into(),
                password: Secret::new("p"),
            },
            budget: CallBudget {
                calls_per_second: NonZeroU32::new(10).unwrap(),
                shared_by_ranks: NonZeroU32::new(4).unwrap(),
            },
        };
        let client = SuperOfficeClient::new(&settings, SuperOfficeOptions::default()).unwrap();
        assert_eq!(client.limiter().settings(), share(10, 4));

        let explicit = share(1000, 1);
        let options = SuperOfficeOptions {
            limits: Some(explicit),
            ..SuperOfficeOptions::default()
        };
        let client = SuperOfficeClient::new(&settings, options).unwrap();
        assert_eq!(client.limiter().settings(), explicit);
    }

    #[test]
    fn all_daemons_together_stay_within_the_budget() {
        for calls in [1, 7, 10, 100, 1000] {
            for ranks in [1, 2, 3, 12, 999] {
                let total = per_second(&share(calls, ranks)) * f64::from(ranks);
                assert!(
                    (total - f64::from(calls)).abs() < 1e-9,
                    "{calls}/s among {ranks}: {total}"
                );
            }
        }
    }
}
