//! To Do endpoints under `/users/{id}/todo/lists`.

use axum::http::header::LOCATION;
use serde_json::{Value, json};

use super::api::{Ctx, check_id, paged};
use super::delta::{self, DeltaKind};
use super::error::{Answer, GraphError, Reply};
use super::filter;
use super::query::{Expand, apply_select, parse_expand, parse_select};
use super::store::{Change, Mailbox};
use super::todo::{LinkedResource, PROPERTIES, Task, TodoList};
use super::wire::{self, Obj};

/// Page size of task listings when `$top` is not given, and the most `$top` gives.
const DEFAULT_TOP: usize = 100;
const MAX_TOP: usize = 1000;

pub fn route(mb: &mut Mailbox, ctx: &Ctx<'_>, rest: &[String], lower: &[&str]) -> Answer {
    use axum::http::Method;
    let m = ctx.method.clone();
    let nope = || Err(GraphError::method_not_allowed(false));
    match lower {
        [] => match m {
            Method::GET => lists(mb, ctx),
            Method::POST => create_list(mb, ctx),
            _ => nope(),
        },
        [_] => match m {
            Method::GET => get_list(mb, ctx, &rest[0]),
            Method::PATCH => update_list(mb, ctx, &rest[0]),
            Method::DELETE => delete_list(mb, &rest[0]),
            _ => nope(),
        },
        [_, "tasks"] => match m {
            Method::GET => tasks(mb, ctx, &rest[0]),
            Method::POST => create_task(mb, ctx, &rest[0]),
            _ => nope(),
        },
        [_, "tasks", "delta"] => match m {
            Method::GET => delta(mb, ctx, &rest[0]),
            _ => nope(),
        },
        [_, "tasks", _] => match m {
            Method::GET => get_task(mb, ctx, &rest[0], &rest[2]),
            Method::PATCH => update_task(mb, ctx, &rest[0], &rest[2]),
            Method::DELETE => delete_task(mb, ctx, &rest[0], &rest[2]),
            _ => nope(),
        },
        [_, "tasks", _, "linkedresources"] => match m {
            Method::GET => linked(mb, ctx, &rest[0], &rest[2], None),
            Method::POST => create_linked(mb, ctx, &rest[0], &rest[2]),
            _ => nope(),
        },
        [_, "tasks", _, "linkedresources", _] => match m {
            Method::GET => linked(mb, ctx, &rest[0], &rest[2], Some(&rest[4])),
            Method::PATCH => update_linked(mb, ctx, &rest[0], &rest[2], &rest[4], false),
            Method::DELETE => update_linked(mb, ctx, &rest[0], &rest[2], &rest[4], true),
            _ => nope(),
        },
        _ => {
            let bad = lower
                .iter()
                .position(|s| !["tasks", "delta", "linkedresources"].contains(s))
                .and_then(|i| rest.get(i))
                .map(String::as_str)
                .unwrap_or("lists");
            Err(GraphError::segment(bad))
        }
    }
}

fn find_list<'m>(mb: &'m Mailbox, id: &str) -> Result<&'m TodoList, GraphError> {
    check_id(id)?;
    mb.list(id).ok_or_else(GraphError::item_not_found)
}

fn find_task<'m>(mb: &'m Mailbox, list: &str, id: &str) -> Result<&'m Task, GraphError> {
    let list = find_list(mb, list)?;
    check_id(id)?;
    list.tasks.get(id).ok_or_else(GraphError::item_not_found)
}

fn context(ctx: &Ctx<'_>, mb: &Mailbox, rest: &str) -> String {
    ctx.metadata(&format!("users('{}')/todo/lists{rest}", mb.user.id))
}

fn lists(mb: &Mailbox, ctx: &Ctx<'_>) -> Answer {
    ctx.query.allow(&["$top", "$skip"])?;
    let items: Vec<&TodoList> = mb.lists.iter().collect();
    paged(
        ctx,
        &items,
        DEFAULT_TOP,
        MAX_TOP,
        context(ctx, mb, ""),
        |l| Ok(l.render()),
    )
}

fn list_name(ctx: &Ctx<'_>) -> Result<Option<String>, GraphError> {
    let body = ctx.json_body()?;
    let obj = Obj::new(&body, "todoTaskList");
    obj.known(&[
        "displayName",
        "id",
        "isOwner",
        "isShared",
        "wellknownListName",
    ])?;
    obj.string("displayName")
}

fn create_list(mb: &mut Mailbox, ctx: &Ctx<'_>) -> Answer {
    let name = list_name(ctx)?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            GraphError::bad_request("ErrorInvalidRequest", "A task list needs a displayName.")
        })?;
    // To Do allows two lists of the same name: finding its own list again is the client's job.
    let id = TodoList::add(mb, &name, "none");
    let list = find_list(mb, &id)?;
    let mut body = list.render();
    body["@odata.context"] = json!(context(ctx, mb, "/$entity"));
    Ok(Reply::created(body))
}

fn get_list(mb: &Mailbox, ctx: &Ctx<'_>, id: &str) -> Answer {
    ctx.query.allow(&[])?;
    let mut body = find_list(mb, id)?.render();
    body["@odata.context"] = json!(context(ctx, mb, "/$entity"));
    Ok(Reply::ok(body))
}

fn update_list(mb: &mut Mailbox, ctx: &Ctx<'_>, id: &str) -> Answer {
    find_list(mb, id)?;
    let name = list_name(ctx)?;
    let seq = mb.next_seq();
    let change_key = mb.change_key(seq);
    let list = mb.list_mut(id).ok_or_else(GraphError::item_not_found)?;
    if let Some(name) = name.filter(|n| !n.trim().is_empty()) {
        list.display_name = name;
    }
    list.change_key = change_key;
    let mut body = list.render();
    body["@odata.context"] = json!(context(ctx, mb, "/$entity"));
    Ok(Reply::ok(body))
}

fn delete_list(mb: &mut Mailbox, id: &str) -> Answer {
    let list = find_list(mb, id)?;
    if list.wellknown != "none" {
        return Err(GraphError::bad_request(
            "ErrorInvalidRequest",
            format!(
                "The well-known list '{}' cannot be deleted.",
                list.display_name
            ),
        ));
    }
    mb.lists.retain(|l| l.id != id);
    Ok(Reply::no_content())
}

/// `$expand` of tasks: only `linkedResources`.
fn expands_linked(expands: &[Expand]) -> Result<bool, GraphError> {
    let mut linked = false;
    for x in expands {
        if !x.name.eq_ignore_ascii_case("linkedResources") {
            return Err(GraphError::unknown_property(&x.name, "todoTask"));
        }
        if x.filter.is_some() {
            return Err(GraphError::invalid_query(
                "The sandbox does not emulate $filter inside $expand=linkedResources.",
            ));
        }
        linked = true;
    }
    Ok(linked)
}

fn task_json(task: &Task, select: Option<&[&'static str]>, linked: bool) -> Value {
    let mut map = task.render(linked);
    apply_select(&mut map, select, &["id", "linkedResources"]);
    Value::Object(map)
}

fn tasks(mb: &Mailbox, ctx: &Ctx<'_>, list_id: &str) -> Answer {
    ctx.query
        .allow(&["$top", "$skip", "$select", "$filter", "$expand"])?;
    let list = find_list(mb, list_id)?;
    let select = ctx.query.select(PROPERTIES, "todoTask")?;
    let linked = expands_linked(&ctx.query.expand()?)?;
    if ctx
        .query
        .get("$filter")
        .is_some_and(|f| f.to_ascii_lowercase().contains("linkedresources"))
    {
        // Not documented for the real service either; a client must not rely on it.
        return Err(GraphError::invalid_filter(
            "filtering on linkedResources is not supported; list the tasks and read their linked resources.",
        ));
    }
    let filter = ctx.query.filter()?;
    let items = filter::matching(
        list.tasks.iter(),
        filter.as_ref(),
        PROPERTIES,
        "todoTask",
        |t, _| t.filter_json(),
    )?;
    let context = context(ctx, mb, &format!("('{list_id}')/tasks"));
    paged(ctx, &items, DEFAULT_TOP, MAX_TOP, context, |t| {
        Ok(task_json(t, select.as_deref(), linked))
    })
}

fn task_reply(mb: &Mailbox, ctx: &Ctx<'_>, list_id: &str, task: &Task, created: bool) -> Answer {
    let mut body = task_json(task, None, created && !task.linked.is_empty());
    body["@odata.context"] = json!(context(ctx, mb, &format!("('{list_id}')/tasks/$entity")));
    Ok(if created {
        Reply::created(body).with_header(
            LOCATION,
            format!(
                "{}/users('{}')/todo/lists('{}')/tasks('{}')",
                ctx.base,
                mb.user.id,
                wire::percent_encode(list_id),
                wire::percent_encode(&task.id)
            ),
        )
    } else {
        Reply::ok(body)
    })
}

fn create_task(mb: &mut Mailbox, ctx: &Ctx<'_>, list_id: &str) -> Answer {
    ctx.query.allow(&[])?;
    find_list(mb, list_id)?;
    let body = ctx.json_body()?;
    let task = Task::create(mb, list_id, &body, ctx.now)?;
    task_reply(mb, ctx, list_id, &task, true)
}

fn get_task(mb: &Mailbox, ctx: &Ctx<'_>, list_id: &str, id: &str) -> Answer {
    ctx.query.allow(&["$select", "$expand"])?;
    let task = find_task(mb, list_id, id)?;
    let select = ctx.query.select(PROPERTIES, "todoTask")?;
    let linked = expands_linked(&ctx.query.expand()?)?;
    let mut body = task_json(task, select.as_deref(), linked);
    body["@odata.context"] = json!(context(ctx, mb, &format!("('{list_id}')/tasks/$entity")));
    Ok(Reply::ok(body))
}

fn update_task(mb: &mut Mailbox, ctx: &Ctx<'_>, list_id: &str, id: &str) -> Answer {
    ctx.query.allow(&[])?;
    ctx.if_match(&find_task(mb, list_id, id)?.change_key)?;
    let body = ctx.json_body()?;
    let task = Task::update(mb, list_id, id, &body, ctx.now)?;
    task_reply(mb, ctx, list_id, &task, false)
}

fn delete_task(mb: &mut Mailbox, ctx: &Ctx<'_>, list_id: &str, id: &str) -> Answer {
    ctx.if_match(&find_task(mb, list_id, id)?.change_key)?;
    let seq = mb.next_seq();
    let list = mb
        .list_mut(list_id)
        .ok_or_else(GraphError::item_not_found)?;
    list.tasks
        .remove(id, seq)
        .ok_or_else(GraphError::item_not_found)?;
    Ok(Reply::no_content())
}

fn delta(mb: &Mailbox, ctx: &Ctx<'_>, list_id: &str) -> Answer {
    ctx.query
        .allow(&["$select", "$expand", "$top", "$skiptoken", "$deltatoken"])?;
    let list = find_list(mb, list_id)?;
    let link_base = ctx.link_base();
    let state = delta::round(
        ctx,
        DeltaKind::Tasks,
        list_id,
        mb,
        list.tasks.floor(),
        |state| {
            state.select = ctx.query.get("$select").map(str::to_string);
            state.expand = ctx.query.get("$expand").map(str::to_string);
            Ok(())
        },
    )?;
    let select = state
        .select
        .as_deref()
        .map(|s| parse_select(s, PROPERTIES, "todoTask"))
        .transpose()?;
    let linked = expands_linked(
        &state
            .expand
            .as_deref()
            .map(parse_expand)
            .transpose()?
            .unwrap_or_default(),
    )?;
    let size = match (ctx.prefer.max_page_size, ctx.query.get("$top")) {
        (None, Some(_)) => ctx
            .query
            .top(delta::DEFAULT_PAGE, delta::MAX_PAGE, false)?
            .max(1),
        _ => delta::page_size(&ctx.prefer),
    };
    let (entries, next) = delta::page(&list.tasks, &state, size, |_| true);
    let value = entries
        .into_iter()
        .map(|entry| match entry {
            Change::Live(task) => task_json(task, select.as_deref(), linked),
            Change::Removed(id) => delta::removed("#microsoft.graph.todoTask", id),
        })
        .collect();
    let body = delta::body(
        &state,
        next,
        value,
        ctx.codec,
        &link_base,
        &ctx.metadata("Collection(todoTask)"),
    );
    Ok(ctx.applied(
        Reply::ok(body),
        false,
        ctx.prefer.max_page_size.map(|_| size),
    ))
}

fn linked(mb: &Mailbox, ctx: &Ctx<'_>, list_id: &str, task_id: &str, one: Option<&str>) -> Answer {
    ctx.query.allow(&[])?;
    let task = find_task(mb, list_id, task_id)?;
    let path = format!("('{list_id}')/tasks('{task_id}')/linkedResources");
    match one {
        None => Ok(Reply::ok(json!({
            "@odata.context": context(ctx, mb, &path),
            "value": task.linked.iter().map(LinkedResource::render).collect::<Vec<_>>(),
        }))),
        Some(id) => {
            let found = task
                .linked
                .iter()
                .find(|l| l.id == id)
                .ok_or_else(GraphError::item_not_found)?;
            let mut body = found.render();
            body["@odata.context"] = json!(context(ctx, mb, &format!("{path}/$entity")));
            Ok(Reply::ok(body))
        }
    }
}

fn create_linked(mb: &mut Mailbox, ctx: &Ctx<'_>, list_id: &str, task_id: &str) -> Answer {
    ctx.query.allow(&[])?;
    let mut task = find_task(mb, list_id, task_id)?.clone();
    let body = ctx.json_body()?;
    let mut linked = LinkedResource::new(mb.new_guid());
    linked.apply(&Obj::new(&body, "linkedResource"))?;
    task.linked.push(linked.clone());
    // A linked resource changes its task: a new change key, and the task shows in delta.
    Task::commit(mb, list_id, task, ctx.now, false)?;
    let mut body = linked.render();
    let path = format!("('{list_id}')/tasks('{task_id}')/linkedResources/$entity");
    body["@odata.context"] = json!(context(ctx, mb, &path));
    Ok(Reply::created(body))
}

fn update_linked(
    mb: &mut Mailbox,
    ctx: &Ctx<'_>,
    list_id: &str,
    task_id: &str,
    id: &str,
    delete: bool,
) -> Answer {
    ctx.query.allow(&[])?;
    let mut task = find_task(mb, list_id, task_id)?.clone();
    let index = task
        .linked
        .iter()
        .position(|l| l.id == id)
        .ok_or_else(GraphError::item_not_found)?;
    let answer = if delete {
        task.linked.remove(index);
        Reply::no_content()
    } else {
        let body = ctx.json_body()?;
        task.linked[index].apply(&Obj::new(&body, "linkedResource"))?;
        let mut out = task.linked[index].render();
        let path = format!("('{list_id}')/tasks('{task_id}')/linkedResources/$entity");
        out["@odata.context"] = json!(context(ctx, mb, &path));
        Reply::ok(out)
    };
    Task::commit(mb, list_id, task, ctx.now, false)?;
    Ok(answer)
}
