//! crmsync keeps SuperOffice CRM and Exchange Online mailboxes in sync for linked users,
//! one daemon process per rank. See ARCHITECTURE.md for the map of these modules.

#![forbid(unsafe_code)]

pub mod cli;
pub mod connector;
pub mod demo;
pub mod engine;
pub mod exit;
pub mod history;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod registry;
pub mod runtime;
pub mod sandbox;
pub mod settings;
mod text;
