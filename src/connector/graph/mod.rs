//! The Microsoft Graph client (Exchange Online mailboxes).

pub mod auth;
