//! `crmsync users ...`: the "User Synchronization Settings" panel as commands (DESIGN
//! section 2; docs/admin.md). Staged links live in `pending.toml` until `save`; every change
//! is a locked read-modify-write of the state directory's files (`registry::store`).

mod links;
mod manage;
mod moves;
mod output;
mod ranks;
mod remove;

use std::time::Duration;

use crate::connector::ConnectorError;
use crate::exit;
use crate::registry::link::Unmatched;
use crate::registry::resolve::ResolveError;
use crate::registry::store::{Store, StoreError};
use crate::registry::{Rank, RegistryError};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct UsersArgs {
    /// How long to wait for another crmsync command that is changing the registry.
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        default_value = "30s",
        value_parser = humantime::parse_duration
    )]
    lock_timeout: Duration,

    #[command(subcommand)]
    command: UsersCommand,
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    fn on(self) -> bool {
        self == Switch::On
    }
}

#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct KindArgs {
    /// Diary appointments <-> calendar events.
    #[arg(long, value_name = "on|off")]
    diary: Option<Switch>,
    /// To-dos <-> Microsoft To Do tasks.
    #[arg(long, value_name = "on|off")]
    task: Option<Switch>,
    /// CRM persons -> Outlook contacts.
    #[arg(long, value_name = "on|off")]
    contact: Option<Switch>,
}

impl KindArgs {
    fn is_empty(&self) -> bool {
        self.diary.is_none() && self.task.is_none() && self.contact.is_none()
    }
}

#[derive(Debug, clap::Subcommand)]
enum UsersCommand {
    /// Load External Users: read every mailbox of the mail system(s) into the local list.
    LoadExternal {
        /// Only this mail system ([mail_systems.NAME]); the others' lists are kept.
        #[arg(long, value_name = "NAME")]
        mail_system: Option<String>,
        /// The summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Auto Link Users: stage links by the e-mail on each associate's person card.
    AutoLink {
        /// Associate ids or login names [default: every active associate not yet linked or staged].
        #[arg(value_name = "ASSOCIATE")]
        associates: Vec<String>,
        /// The result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Link User: stage one link chosen by hand.
    Link {
        /// Associate id or login name.
        associate: String,
        /// Mailbox address or the mail system's id for it (from the loaded list).
        mailbox: String,
        /// The mail system the mailbox is in, when the address is in more than one.
        #[arg(long, value_name = "NAME")]
        mail_system: Option<String>,
    },
    /// The staged links (nothing staged syncs).
    Pending {
        #[arg(long)]
        json: bool,
    },
    /// Save Added Users: turn the staged links into sync users.
    Save {
        /// The rank that syncs them [default: [sync] default_rank].
        #[arg(long, value_name = "N")]
        rank: Option<Rank>,
        #[command(flatten)]
        kinds: KindArgs,
    },
    /// Drop staged links: all of them, or the ones named.
    Discard {
        /// Associate ids, login names or mailbox addresses of staged links [default: all].
        #[arg(value_name = "ASSOCIATE")]
        links: Vec<String>,
    },
    /// Save Users Options: change the kinds or the rank of saved users.
    Set {
        /// Sync user id, associate id or login name, or mailbox address.
        #[arg(value_name = "USER", required = true)]
        users: Vec<String>,
        #[command(flatten)]
        kinds: KindArgs,
        /// Move to this rank; the history travels along.
        #[arg(long, value_name = "N")]
        rank: Option<Rank>,
        /// With --rank: start on the new rank with an empty history instead (when the old
        /// rank's history is not reachable); the pairs are rebuilt from the mailbox stamps.
        #[arg(long, requires = "rank")]
        fresh: bool,
    },
    /// Switch every kind off: nothing syncs, the history is kept.
    Disable {
        #[arg(value_name = "USER", required = true)]
        users: Vec<String>,
    },
    /// Switch a disabled user's kinds back on (to the configured defaults).
    Enable {
        #[arg(value_name = "USER", required = true)]
        users: Vec<String>,
    },
    /// Try failed or paused users again; their rank's daemon acts within seconds.
    Resume {
        #[arg(value_name = "USER", required = true)]
        users: Vec<String>,
        /// Let the next pass of each kind through the mass-delete guard: for a user paused
        /// because many items really were deleted on purpose.
        #[arg(long)]
        allow_deletes: bool,
    },
    /// Remove Selected Users: delete the sync users and exactly their history.
    Remove {
        #[arg(value_name = "USER", required = true)]
        users: Vec<String>,
        /// Do not ask (required when not on a terminal).
        #[arg(long)]
        yes: bool,
        /// How long to wait for a running rank daemon to delete the history.
        #[arg(
            long,
            value_name = "DURATION",
            default_value = "30s",
            value_parser = humantime::parse_duration
        )]
        wait: Duration,
    },
    /// Saved and pending users with mailbox, options, rank and state.
    List {
        /// Only this rank's users (pending links have no rank yet and are left out).
        #[arg(long, value_name = "N")]
        rank: Option<Rank>,
        #[arg(long)]
        json: bool,
    },
}

/// Errors of the commands themselves, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The command line asks for something that cannot be done as asked (64).
    #[error("{0}")]
    Usage(String),
    /// The configuration lacks what the command needs (78).
    #[error("{0}")]
    Config(String),
    /// Try again later (75).
    #[error("{0}")]
    Temporary(String),
}

/// The exit code for an error in the chain, if it is one of the `users` commands'.
pub fn exit_code(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if let Some(e) = cause.downcast_ref::<UsersError>() {
        return Some(match e {
            UsersError::Usage(_) => exit::USAGE,
            UsersError::Config(_) => exit::CONFIG,
            UsersError::Temporary(_) => exit::TEMPORARY,
        });
    }
    if let Some(e) = cause.downcast_ref::<StoreError>() {
        return Some(e.exit_code());
    }
    if cause.downcast_ref::<ResolveError>().is_some() || cause.downcast_ref::<Unmatched>().is_some()
    {
        return Some(exit::USAGE);
    }
    if let Some(RegistryError::Invalid { .. }) = cause.downcast_ref::<RegistryError>() {
        return Some(exit::CONFIG);
    }
    if let Some(e) = cause.downcast_ref::<ConnectorError>() {
        return Some(match e {
            ConnectorError::Transient { .. } => exit::TEMPORARY,
            _ => exit::FAILURE,
        });
    }
    None
}

/// What every `users` command works with.
pub struct Ctx<'a> {
    pub settings: &'a Settings,
    pub store: Store,
    pub lock_timeout: Duration,
}

impl Ctx<'_> {
    fn lock(&self) -> Result<crate::registry::store::StoreLock<'_>, StoreError> {
        self.store.lock(self.lock_timeout)
    }
}

pub fn run(settings: &Settings, args: UsersArgs) -> anyhow::Result<()> {
    let ctx = Ctx {
        settings,
        store: Store::new(&settings.daemon.state_dir),
        lock_timeout: args.lock_timeout,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("crmsync-users")
        .build()?;
    runtime.block_on(async {
        match args.command {
            UsersCommand::LoadExternal { mail_system, json } => {
                links::load_external(&ctx, mail_system.as_deref(), json).await
            }
            UsersCommand::AutoLink { associates, json } => {
                links::auto_link(&ctx, &associates, json).await
            }
            UsersCommand::Link {
                associate,
                mailbox,
                mail_system,
            } => links::link(&ctx, &associate, &mailbox, mail_system.as_deref()).await,
            UsersCommand::Pending { json } => links::pending(&ctx, json),
            UsersCommand::Save { rank, kinds } => links::save(&ctx, rank, kinds),
            UsersCommand::Discard { links: which } => links::discard(&ctx, &which),
            UsersCommand::Set {
                users,
                kinds,
                rank,
                fresh,
            } => manage::set(&ctx, &users, kinds, rank, fresh).await,
            UsersCommand::Disable { users } => manage::disable(&ctx, &users),
            UsersCommand::Enable { users } => manage::enable(&ctx, &users),
            UsersCommand::Resume {
                users,
                allow_deletes,
            } => manage::resume(&ctx, &users, allow_deletes),
            UsersCommand::Remove { users, yes, wait } => {
                remove::remove(&ctx, &users, yes, wait).await
            }
            UsersCommand::List { rank, json } => manage::list(&ctx, rank, json),
        }
    })
}
