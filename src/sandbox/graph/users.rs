//! The directory: `GET /users` (paged with `$skiptoken`) and `GET /users/{id|upn}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::api::Ctx;
use super::error::{Answer, GraphError, Reply};
use super::filter;
use super::query::{apply_select, parse_select};
use super::store::{Tenant, UserInfo};

/// `GET /users` gives 100 users a page unless `$top` says otherwise (1 to 999).
const DEFAULT_TOP: usize = 100;
const MAX_TOP: usize = 999;

/// The properties returned without `$select` (the documented default set).
const DEFAULT_SET: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Every property `$select` may name.
const PROPERTIES: &[&str] = &[
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "proxyAddresses",
    "accountEnabled",
    "mailNickname",
    "userType",
    "otherMails",
    "usageLocation",
    "department",
    "companyName",
];

/// What a `/users` skip token stands for.
#[derive(Serialize, Deserialize)]
struct UsersPosition {
    #[serde(rename = "o")]
    offset: usize,
    #[serde(rename = "e")]
    epoch: u64,
}

fn render(user: &UserInfo, select: Option<&[&'static str]>) -> Value {
    let nickname = user
        .user_principal_name
        .split('@')
        .next()
        .unwrap_or_default();
    let mut map: Map<String, Value> = match json!({
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": user.given_name,
        "jobTitle": null,
        "mail": user.mail,
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": "en-US",
        "surname": user.surname,
        "userPrincipalName": user.user_principal_name,
        "id": user.id,
        "proxyAddresses": user.proxy_addresses,
        "accountEnabled": true,
        "mailNickname": nickname,
        "userType": "Member",
        "otherMails": [],
        "usageLocation": null,
        "department": null,
        "companyName": null,
    }) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    match select {
        Some(select) => apply_select(&mut map, Some(select), &[]),
        None => apply_select(&mut map, Some(DEFAULT_SET), &[]),
    }
    Value::Object(map)
}

fn select(ctx: &Ctx<'_>) -> Result<Option<Vec<&'static str>>, GraphError> {
    ctx.query
        .get("$select")
        .map(|text| {
            parse_select(text, PROPERTIES, "user").map_err(|_| {
                let bad = text
                    .split(',')
                    .map(str::trim)
                    .find(|n| !PROPERTIES.iter().any(|p| p.eq_ignore_ascii_case(n)))
                    .unwrap_or(text);
                GraphError::bad_request(
                    "Request_BadRequest",
                    format!("Could not find a property named '{bad}' on type 'Microsoft.DirectoryServices.User'."),
                )
            })
        })
        .transpose()
}

fn context(ctx: &Ctx<'_>, select: Option<&[&str]>, entity: bool) -> String {
    let select = select
        .map(|s| format!("({})", s.join(",")))
        .unwrap_or_default();
    let entity = if entity { "/$entity" } else { "" };
    ctx.metadata(&format!("users{select}{entity}"))
}

pub fn list(tenant: &Tenant, ctx: &Ctx<'_>) -> Answer {
    ctx.query
        .allow(&["$select", "$top", "$skiptoken", "$filter"])?;
    let top = ctx.query.top(DEFAULT_TOP, MAX_TOP, true)?;
    let select = select(ctx)?;
    let offset = match ctx.query.get("$skiptoken") {
        None => 0,
        Some(token) => {
            let position: UsersPosition = ctx.codec.decode(token).ok_or_else(|| {
                GraphError::bad_request(
                    "Request_BadRequest",
                    "The specified page token value has expired or is invalid.",
                )
            })?;
            if position.epoch != ctx.epoch {
                return Err(GraphError::bad_request(
                    "Request_BadRequest",
                    "The specified page token value has expired or is invalid.",
                ));
            }
            position.offset
        }
    };
    // The directory's own filter language is richer; the common comparisons, `startswith`
    // and `any` over proxyAddresses are emulated.
    let filter = ctx.query.filter()?;
    let users = filter::matching(
        tenant.users.iter(),
        filter.as_ref(),
        PROPERTIES,
        "user",
        |u, _| render(u, Some(PROPERTIES)),
    )?;
    let end = offset.saturating_add(top).min(users.len());
    let value: Vec<Value> = users
        .get(offset.min(users.len())..end)
        .unwrap_or_default()
        .iter()
        .map(|u| render(u, select.as_deref()))
        .collect();
    let mut body = json!({ "@odata.context": context(ctx, select.as_deref(), false) });
    if end < users.len() {
        let token = ctx.codec.encode(&UsersPosition {
            offset: end,
            epoch: ctx.epoch,
        });
        let query = ctx.query.rewrite(&["$skiptoken"], &[("$skiptoken", token)]);
        body["@odata.nextLink"] = json!(format!("{}?{query}", ctx.link_base()));
    }
    body["value"] = Value::Array(value);
    Ok(Reply::ok(body))
}

pub fn get(tenant: &Tenant, index: usize, ctx: &Ctx<'_>) -> Answer {
    ctx.query.allow(&["$select"])?;
    let user = tenant
        .users
        .get(index)
        .ok_or_else(|| GraphError::directory_not_found(""))?;
    let select = select(ctx)?;
    let mut body = render(user, select.as_deref());
    body["@odata.context"] = json!(context(ctx, select.as_deref(), true));
    Ok(Reply::ok(body))
}
