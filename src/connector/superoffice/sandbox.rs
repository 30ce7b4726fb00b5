//! Pointing the client at crmsync's own SuperOffice emulator (tests, `crmsync demo`,
//! benchmarks): settings from the sandbox's URLs and credentials, and options that follow the
//! sandbox clock (which tests move to expire tickets) instead of the system's.

use std::sync::Arc;

use super::{Clock, ServerClock, SuperOfficeOptions};
use crate::sandbox::SandboxState;
use crate::settings::{Secret, SuperOfficeAuth, SuperOfficeSettings};

/// The online system-user flow against the sandbox's environment host.
pub fn system_user_settings(state: &SandboxState) -> SuperOfficeSettings {
    let c = state.credentials();
    SuperOfficeSettings {
        base_url: state.urls.superoffice.clone(),
        auth: SuperOfficeAuth::SystemUser {
            context_identifier: c.superoffice_context_identifier,
            client_secret: Secret::new(c.superoffice_client_secret),
            private_key: Secret::new(c.superoffice_private_key_pem),
            system_user_token: Secret::new(c.superoffice_system_user_token),
        },
    }
}

/// Onsite Basic authentication against the sandbox's tenant host (the web application root).
pub fn basic_settings(state: &SandboxState) -> SuperOfficeSettings {
    let c = state.credentials();
    SuperOfficeSettings {
        base_url: state.urls.superoffice_tenant.clone(),
        auth: SuperOfficeAuth::Basic {
            username: c.superoffice_username,
            password: Secret::new(c.superoffice_password),
        },
    }
}

/// The default options with the sandbox's clock, which is also the server's time.
pub fn options(state: &Arc<SandboxState>) -> SuperOfficeOptions {
    let state = state.clone();
    let clock: Clock = Arc::new(move || state.clock.now());
    SuperOfficeOptions {
        clock,
        server_clock: ServerClock::Local,
        ..SuperOfficeOptions::default()
    }
}
