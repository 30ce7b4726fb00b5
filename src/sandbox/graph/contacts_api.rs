//! Contact endpoints: `/users/{id}/contactFolders[...]` and `/users/{id}/contacts[...]`.

use axum::http::StatusCode;
use axum::http::header::LOCATION;
use serde_json::{Value, json};

use super::api::{Ctx, check_id, paged};
use super::contacts::{Contact, ContactFolder, PROPERTIES};
use super::delta::{self, DeltaKind};
use super::error::{Answer, GraphError, Reply};
use super::extprops;
use super::filter;
use super::query::{Expand, apply_select, parse_select};
use super::store::{Change, Collection, Mailbox};
use super::tokens::IdKind;
use super::wire::{self, Obj};

/// Outlook's page size for contacts and folders when `$top` is not given.
const DEFAULT_TOP: usize = 10;
const MAX_TOP: usize = 1000;

pub fn route(mb: &mut Mailbox, ctx: &Ctx<'_>, rest: &[String], lower: &[&str]) -> Answer {
    use axum::http::Method;
    let m = ctx.method.clone();
    let nope = || Err(GraphError::method_not_allowed(false));
    match lower {
        ["contactfolders"] => match m {
            Method::GET => folders(mb, ctx),
            Method::POST => create_folder(mb, ctx),
            _ => nope(),
        },
        ["contactfolders", _] => match m {
            Method::GET => get_folder(mb, ctx, &rest[1]),
            Method::PATCH => update_folder(mb, ctx, &rest[1]),
            Method::DELETE => delete_folder(mb, &rest[1]),
            _ => nope(),
        },
        ["contactfolders", _, "contacts"] => match m {
            Method::GET => list(mb, ctx, &rest[1]),
            Method::POST => create(mb, ctx, &rest[1]),
            _ => nope(),
        },
        ["contactfolders", _, "contacts", "delta"] => match m {
            Method::GET => delta(mb, ctx, &rest[1]),
            _ => nope(),
        },
        ["contactfolders", _, "contacts", _] => item(mb, ctx, Some(&rest[1]), &rest[3]),
        ["contacts"] => {
            let folder = mb.default_folder_id();
            match m {
                Method::GET => list(mb, ctx, &folder),
                Method::POST => create(mb, ctx, &folder),
                _ => nope(),
            }
        }
        ["contacts", _] => item(mb, ctx, None, &rest[1]),
        _ => {
            let known = ["contactfolders", "contacts", "delta"];
            let bad = lower
                .iter()
                .enumerate()
                .find(|(i, s)| i % 2 == 0 && !known.contains(s))
                .and_then(|(i, _)| rest.get(i))
                .map(String::as_str)
                .unwrap_or("contacts");
            Err(GraphError::segment(bad))
        }
    }
}

fn find_folder<'m>(mb: &'m Mailbox, id: &str) -> Result<&'m ContactFolder, GraphError> {
    check_id(id)?;
    mb.folder(id).ok_or_else(GraphError::item_not_found)
}

fn context(ctx: &Ctx<'_>, mb: &Mailbox, rest: &str) -> String {
    ctx.metadata(&format!("users('{}')/{rest}", mb.user.id))
}

fn folders(mb: &Mailbox, ctx: &Ctx<'_>) -> Answer {
    ctx.query.allow(&["$top", "$skip"])?;
    // The folders in the default Contacts folder (the documented scope of this listing).
    let default = mb.default_folder_id();
    let items: Vec<&ContactFolder> = mb
        .folders
        .iter()
        .filter(|f| f.parent_id == default)
        .collect();
    paged(
        ctx,
        &items,
        DEFAULT_TOP,
        MAX_TOP,
        context(ctx, mb, "contactFolders"),
        |f| Ok(f.render()),
    )
}

fn folder_name(ctx: &Ctx<'_>) -> Result<Option<String>, GraphError> {
    let body = ctx.json_body()?;
    let obj = Obj::new(&body, "contactFolder");
    obj.known(&[
        "displayName",
        "parentFolderId",
        "id",
        "childFolders",
        "contacts",
    ])?;
    obj.string("displayName")
}

/// Exchange refuses a second folder of the same name (case-insensitively) in one parent.
fn check_unique(
    mb: &Mailbox,
    parent: &str,
    name: &str,
    except: Option<&str>,
) -> Result<(), GraphError> {
    let taken = mb.folders.iter().any(|f| {
        f.parent_id == parent
            && f.display_name.eq_ignore_ascii_case(name)
            && Some(f.id.as_str()) != except
    });
    if taken {
        Err(GraphError::new(
            StatusCode::CONFLICT,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        ))
    } else {
        Ok(())
    }
}

fn create_folder(mb: &mut Mailbox, ctx: &Ctx<'_>) -> Answer {
    ctx.query.allow(&[])?;
    let name = folder_name(ctx)?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            GraphError::bad_request(
                "ErrorInvalidRequest",
                "A contact folder needs a displayName.",
            )
        })?;
    let parent = mb.default_folder_id();
    check_unique(mb, &parent, &name, None)?;
    let folder = ContactFolder {
        id: mb.new_id(IdKind::Folder),
        parent_id: parent,
        display_name: name,
        contacts: Collection::default(),
    };
    let mut body = folder.render();
    body["@odata.context"] = json!(context(ctx, mb, "contactFolders/$entity"));
    let location = format!(
        "{}/users('{}')/contactFolders('{}')",
        ctx.base,
        mb.user.id,
        wire::percent_encode(&folder.id)
    );
    mb.folders.push(folder);
    Ok(Reply::created(body).with_header(LOCATION, location))
}

fn get_folder(mb: &Mailbox, ctx: &Ctx<'_>, id: &str) -> Answer {
    ctx.query.allow(&[])?;
    let mut body = find_folder(mb, id)?.render();
    body["@odata.context"] = json!(context(ctx, mb, "contactFolders/$entity"));
    Ok(Reply::ok(body))
}

fn update_folder(mb: &mut Mailbox, ctx: &Ctx<'_>, id: &str) -> Answer {
    ctx.query.allow(&[])?;
    let parent = find_folder(mb, id)?.parent_id.clone();
    if let Some(name) = folder_name(ctx)?.filter(|n| !n.trim().is_empty()) {
        check_unique(mb, &parent, &name, Some(id))?;
        if let Some(folder) = mb.folder_mut(id) {
            folder.display_name = name;
        }
    }
    let mut body = find_folder(mb, id)?.render();
    body["@odata.context"] = json!(context(ctx, mb, "contactFolders/$entity"));
    Ok(Reply::ok(body))
}

fn delete_folder(mb: &mut Mailbox, id: &str) -> Answer {
    find_folder(mb, id)?;
    if id == mb.default_folder_id() {
        return Err(GraphError::bad_request(
            "ErrorDeleteDistinguishedFolder",
            "Distinguished folders cannot be deleted.",
        ));
    }
    mb.folders.retain(|f| f.id != id);
    Ok(Reply::no_content())
}

fn check_expand(expands: &[Expand]) -> Result<(), GraphError> {
    for x in expands {
        if !x.name.eq_ignore_ascii_case("singleValueExtendedProperties") {
            return Err(GraphError::unknown_property(&x.name, "contact"));
        }
    }
    Ok(())
}

fn contact_json(
    contact: &Contact,
    select: Option<&[&'static str]>,
    expands: &[Expand],
) -> Result<Value, GraphError> {
    let mut map = contact.render();
    apply_select(&mut map, select, &["id"]);
    for x in expands {
        if let Some(props) = extprops::expand(&contact.extended, x.filter.as_ref())? {
            map.insert("singleValueExtendedProperties".into(), props);
        }
    }
    Ok(Value::Object(map))
}

fn list(mb: &Mailbox, ctx: &Ctx<'_>, folder_id: &str) -> Answer {
    ctx.query
        .allow(&["$top", "$skip", "$select", "$filter", "$expand"])?;
    let folder = find_folder(mb, folder_id)?;
    let select = ctx.query.select(PROPERTIES, "contact")?;
    let expands = ctx.query.expand()?;
    check_expand(&expands)?;
    let filter = ctx.query.filter()?;
    let items = filter::matching(
        folder.contacts.iter(),
        filter.as_ref(),
        PROPERTIES,
        "contact",
        |c, full| c.filter_json(full),
    )?;
    let context = context(ctx, mb, &format!("contactFolders('{folder_id}')/contacts"));
    paged(ctx, &items, DEFAULT_TOP, MAX_TOP, context, |c| {
        contact_json(c, select.as_deref(), &expands)
    })
}

fn entity(mb: &Mailbox, ctx: &Ctx<'_>, contact: &Contact, created: bool) -> Answer {
    let mut body = contact_json(contact, None, &[])?;
    body["@odata.context"] = json!(context(ctx, mb, "contacts/$entity"));
    Ok(if created {
        Reply::created(body).with_header(
            LOCATION,
            format!(
                "{}/users('{}')/contacts('{}')",
                ctx.base,
                mb.user.id,
                wire::percent_encode(&contact.id)
            ),
        )
    } else {
        Reply::ok(body)
    })
}

fn create(mb: &mut Mailbox, ctx: &Ctx<'_>, folder_id: &str) -> Answer {
    ctx.query.allow(&[])?;
    find_folder(mb, folder_id)?;
    let body = ctx.json_body()?;
    let contact = Contact::create(mb, folder_id, &body, ctx.now)?;
    entity(mb, ctx, &contact, true)
}

/// GET, PATCH or DELETE one contact, in the named folder or wherever it is.
fn item(mb: &mut Mailbox, ctx: &Ctx<'_>, folder: Option<&str>, id: &str) -> Answer {
    use axum::http::Method;
    let folder_id = match folder {
        Some(f) => find_folder(mb, f)?.id.clone(),
        None => {
            check_id(id)?;
            mb.folder_of_contact(id)
                .ok_or_else(GraphError::item_not_found)?
        }
    };
    check_id(id)?;
    let current = find_folder(mb, &folder_id)?
        .contacts
        .get(id)
        .ok_or_else(GraphError::item_not_found)?;
    match ctx.method {
        Method::GET => {
            ctx.query.allow(&["$select", "$expand"])?;
            let select = ctx.query.select(PROPERTIES, "contact")?;
            let expands = ctx.query.expand()?;
            check_expand(&expands)?;
            let mut body = contact_json(current, select.as_deref(), &expands)?;
            body["@odata.context"] = json!(context(ctx, mb, "contacts/$entity"));
            Ok(Reply::ok(body))
        }
        Method::PATCH => {
            ctx.query.allow(&[])?;
            ctx.if_match(&current.change_key)?;
            let body = ctx.json_body()?;
            let contact = Contact::update(mb, &folder_id, id, &body, ctx.now)?;
            entity(mb, ctx, &contact, false)
        }
        Method::DELETE => {
            ctx.if_match(&current.change_key)?;
            let seq = mb.next_seq();
            let folder = mb
                .folder_mut(&folder_id)
                .ok_or_else(GraphError::item_not_found)?;
            folder.contacts.remove(id, seq);
            Ok(Reply::no_content())
        }
        _ => Err(GraphError::method_not_allowed(false)),
    }
}

fn delta(mb: &Mailbox, ctx: &Ctx<'_>, folder_id: &str) -> Answer {
    ctx.query.allow(&["$select", "$skiptoken", "$deltatoken"])?;
    let folder = find_folder(mb, folder_id)?;
    let link_base = ctx.link_base();
    let state = delta::round(
        ctx,
        DeltaKind::Contacts,
        folder_id,
        mb,
        folder.contacts.floor(),
        |state| {
            state.select = ctx.query.get("$select").map(str::to_string);
            Ok(())
        },
    )?;
    let select = state
        .select
        .as_deref()
        .map(|s| parse_select(s, PROPERTIES, "contact"))
        .transpose()?;
    let size = delta::page_size(&ctx.prefer);
    let (entries, next) = delta::page(&folder.contacts, &state, size, |_| true);
    let value = entries
        .into_iter()
        .map(|entry| match entry {
            Change::Live(contact) => contact_json(contact, select.as_deref(), &[]),
            Change::Removed(id) => Ok(delta::removed("#microsoft.graph.contact", id)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let body = delta::body(
        &state,
        next,
        value,
        ctx.codec,
        &link_base,
        &ctx.metadata("Collection(contact)"),
    );
    Ok(ctx.applied(
        Reply::ok(body),
        false,
        ctx.prefer.max_page_size.map(|_| size),
    ))
}
