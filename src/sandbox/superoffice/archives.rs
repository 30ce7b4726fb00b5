//! Archive providers behind the OData lists: FindAppointment (`/Appointment`), Person
//! (`/Person`), SimpleContact (`/Contact`), InternalUsers and the dynamic provider (only the
//! `traveltransactionlog` table). Answers are `ODataSlimResponse`s.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::entities::View;
use super::model::{Appointment, AppointmentType, AssociateKind, Completed, Data, Span};
use super::odata::{self, Column, Kind, Params, Query, Val, col};
use super::time::TzMode;
use super::{PAGE_CACHE_SECS, SuperOfficeStore};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    FindAppointment,
    Person,
    SimpleContact,
    InternalUsers,
    Dynamic,
}

impl Provider {
    pub fn by_name(name: &str) -> Option<Provider> {
        [
            ("FindAppointment", Provider::FindAppointment),
            ("Person", Provider::Person),
            ("SimpleContact", Provider::SimpleContact),
            ("InternalUsers", Provider::InternalUsers),
            ("Dynamic", Provider::Dynamic),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, p)| p)
    }
}

static FIND_APPOINTMENT: &[Column] = &[
    col("appointmentId", Kind::Int),
    col("associateId", Kind::Associate),
    col("date", Kind::LocalDate),
    col("endDate", Kind::LocalDate),
    col("time", Kind::Display),
    col("endTime", Kind::Display),
    col("updatedDate", Kind::UtcDate),
    col("registeredDate", Kind::UtcDate),
    col("updatedBy", Kind::Associate),
    col("registeredBy", Kind::Associate),
    col("completed", Kind::Bool),
    col("type", Kind::ListAny),
    col("rawType", Kind::Int),
    col("rawStatus", Kind::Int),
    col("recordType", Kind::Str),
    col("recordTypeText", Kind::ListAny),
    col("text", Kind::Str),
    col("location", Kind::Str),
    col("isFree", Kind::Bool),
    col("alarm", Kind::Bool),
    col("recurring", Kind::Bool),
    col("recurrenceRuleId", Kind::Int),
    col("booking", Kind::Bool),
    col("visibleInDiary", Kind::Bool),
    col("personId", Kind::ListAny),
    col("contactId", Kind::ListAny),
    col("projectId", Kind::ListAny),
    col("saleId", Kind::Int),
    col("priority", Kind::ListAny),
    col("cautionWarning", Kind::ListAny),
    col("invitedPersonId", Kind::Int),
    col("appointment/text", Kind::Str),
    col("appointment/description", Kind::Str),
    col("appointment/title", Kind::Str),
    col("appointment/agenda", Kind::Str),
    col("appointment/textId", Kind::Int),
];

static PERSON: &[Column] = &[
    col("personId", Kind::Int),
    col("firstName", Kind::Str),
    col("lastName", Kind::Str),
    col("middleName", Kind::Str),
    col("fullName", Kind::Str),
    col("contactId", Kind::Int),
    col("mrMrs", Kind::Str),
    col("title", Kind::Str),
    col("personNumber", Kind::Str),
    col("rank", Kind::Int),
    col("retired", Kind::Bool),
    col("hasCompany", Kind::Bool),
    col("personUpdatedBy", Kind::Associate),
    col("personUpdatedDate", Kind::UtcDate),
    col("personRegisteredBy", Kind::Associate),
    col("personRegisteredDate", Kind::UtcDate),
    col("personAssociateId", Kind::Associate),
    col("email/emailAddress", Kind::Str),
    col("phone/formattedNumber", Kind::Str),
    col("personDirectPhone/formattedNumber", Kind::Str),
    col("personMobilePhone/formattedNumber", Kind::Str),
];

static SIMPLE_CONTACT: &[Column] = &[
    col("contactId", Kind::Int),
    col("name", Kind::Str),
    col("department", Kind::Str),
    col("orgNr", Kind::Str),
    col("associateId", Kind::Associate),
    col("contactAssociate/fullName", Kind::Str),
    col("category", Kind::ListAny),
    col("updatedDate", Kind::UtcDate),
    col("updatedBy", Kind::Associate),
    col("registeredDate", Kind::UtcDate),
    col("registeredBy", Kind::Associate),
];

static INTERNAL_USERS: &[Column] = &[
    col("associateDbId", Kind::Associate),
    col("assocName", Kind::Associate),
    col("assocTooltip", Kind::Str),
    col("assocType", Kind::ListAny),
    col("personId", Kind::Int),
    col("contactId", Kind::Int),
    col("contactName", Kind::Str),
    col("firstName", Kind::Str),
    col("lastName", Kind::Str),
    col("middleName", Kind::Str),
    col("fullName", Kind::Str),
    col("title", Kind::Str),
    col("personEmail", Kind::Str),
    col("userName", Kind::Str),
    col("isActive", Kind::Bool),
    col("canLogin", Kind::Bool),
    col("usergroupId", Kind::Int),
    col("ejUserId", Kind::Int),
];

static TRAVEL_LOG: &[Column] = &[
    col("traveltransactionlog.traveltransactionlog_id", Kind::Int),
    col("traveltransactionlog.ttime", Kind::LocalDate),
    col("traveltransactionlog.prev_record_id", Kind::Int),
    col("traveltransactionlog.type", Kind::Int),
    col("traveltransactionlog.associate_id", Kind::Int),
    col("traveltransactionlog.tablenumber", Kind::Int),
    col("traveltransactionlog.record_id", Kind::Int),
    col("traveltransactionlog.flags", Kind::Int),
    col("traveltransactionlog.application_id", Kind::Int),
];

/// One list request.
pub struct ListRequest<'a> {
    pub pairs: &'a [(String, String)],
    pub tz: &'a TzMode,
    pub caller: u32,
    pub now: Timestamp,
    pub api: &'a str,
}

/// Runs a list query; `Err` is a message for a 400.
pub fn list(
    store: &SuperOfficeStore,
    provider: Provider,
    request: &ListRequest<'_>,
) -> Result<Value, String> {
    let params = Params::from_pairs(request.pairs);
    let (columns, default_select): (&'static [Column], &[&'static str]) = match provider {
        Provider::FindAppointment => (FIND_APPOINTMENT, &["appointmentId", "date", "text", "type"]),
        Provider::Person => (PERSON, &["personId", "fullName", "contactId"]),
        Provider::SimpleContact => (SIMPLE_CONTACT, &["contactId", "name", "associateId"]),
        Provider::InternalUsers => (INTERNAL_USERS, &["associateDbId", "assocName", "fullName"]),
        Provider::Dynamic => {
            if let Some(select) = params.select {
                for name in select.split(',').map(str::trim) {
                    let table = name.split(['.', ':']).next().unwrap_or(name);
                    if !table.eq_ignore_ascii_case("traveltransactionlog") {
                        return Err(format!(
                            "Table {table:?} is not available through the dynamic archive of this tenant (sandbox: only traveltransactionlog)"
                        ));
                    }
                }
            } else {
                return Err("The dynamic archive needs $select with table.field columns".into());
            }
            (TRAVEL_LOG, &[])
        }
    };
    let query = odata::parse(
        &params,
        columns,
        default_select,
        request.tz,
        request.caller,
        request.now,
    )?;
    let inner = store.read();
    let data = &inner.data;
    let view = View {
        data,
        tz: request.tz,
        api: request.api,
    };
    let entity_filter = entities(provider, &query)?;
    let cache_key = format!("{provider:?}|{}", query.key);
    let page = {
        let mut pages = store.pages();
        let fresh = |at: &Timestamp| request.now.as_second() - at.as_second() <= PAGE_CACHE_SECS;
        let cached = query.skip > 0 && pages.get(&cache_key).is_some_and(|(_, at)| fresh(at));
        if !cached {
            pages.retain(|_, (_, at)| fresh(at));
            let keys = keys(provider, data, &query, request.tz, entity_filter);
            pages.insert(cache_key.clone(), (keys, request.now));
        }
        match pages.get_mut(&cache_key) {
            Some((keys, at)) => {
                *at = request.now;
                query.page(keys).to_vec()
            }
            None => Vec::new(),
        }
    };
    // Pass 2: the current values of the page's rows (rows deleted meanwhile are left out).
    let value: Vec<Value> = page
        .iter()
        .filter_map(|pk| render(provider, &view, *pk, &query))
        .collect();
    Ok(json!({
        "odata.metadata": format!("{}/Archive/$metadata", request.api),
        "odata.nextLink": null,
        "value": value,
    }))
}

/// Which InternalUsers rows `$entities` asks for: `Some(true)` active only, `Some(false)`
/// retired only, `None` all.
fn entities(provider: Provider, query: &Query) -> Result<Option<bool>, String> {
    if query.entities.is_empty() {
        return Ok(None);
    }
    let known: &[&str] = match provider {
        Provider::InternalUsers => &["all", "retired"],
        Provider::Person => &["person"],
        Provider::FindAppointment => &["appointment"],
        Provider::SimpleContact => &["contact"],
        Provider::Dynamic => &[],
    };
    let mut all = false;
    let mut retired = false;
    for e in &query.entities {
        match known.iter().find(|k| k.eq_ignore_ascii_case(e)) {
            Some(&"retired") => retired = true,
            Some(_) => all = true,
            None => return Err(format!("Unknown or unsupported entity {e:?} in $entities")),
        }
    }
    Ok(if retired && !all { Some(false) } else { None })
}

/// Pass 1: the primary keys of every matching row, in order.
fn keys(
    provider: Provider,
    data: &Data,
    query: &Query,
    tz: &TzMode,
    retired_only: Option<bool>,
) -> Vec<u64> {
    macro_rules! collect {
        ($candidates:expr, $fetch:expr, $value:expr) => {{
            let mut rows: Vec<(u64, _)> = $candidates
                .filter_map(|pk: u64| $fetch(pk).map(|r| (pk, r)))
                .filter(|(_, r)| query.matches(|c| $value(r, c)))
                .collect();
            rows.sort_by_key(|(pk, _)| *pk);
            rows.dedup_by_key(|(pk, _)| *pk);
            query.sort(&mut rows, |r, c| $value(r, c));
            rows.into_iter().map(|(pk, _)| pk).collect()
        }};
    }
    match provider {
        Provider::FindAppointment => {
            let candidates = appointment_candidates(data, query);
            collect!(
                candidates.into_iter(),
                |pk: u64| u32::try_from(pk)
                    .ok()
                    .and_then(|id| data.appointments.get(&id)),
                |a: &&Appointment, c: &str| appointment_value(data, tz, a, c)
            )
        }
        Provider::Person => {
            let mut candidates: Option<Vec<u32>> = None;
            for t in query.term("contactId") {
                if let Some(ids) = t.ints() {
                    candidates = Some(
                        ids.iter()
                            .filter_map(|i| u32::try_from(*i).ok())
                            .flat_map(|c| data.persons_of_company(c))
                            .collect(),
                    );
                }
            }
            for t in query.term("personUpdatedDate") {
                if candidates.is_none()
                    && let Some(after) = t.after()
                {
                    candidates = Some(data.persons_updated_after(after).collect());
                }
            }
            let candidates = candidates.unwrap_or_else(|| data.persons.keys().copied().collect());
            collect!(
                candidates.into_iter().map(u64::from),
                |pk: u64| u32::try_from(pk).ok().and_then(|id| data.persons.get(&id)),
                |p: &&super::model::Person, c: &str| person_value(data, p, c)
            )
        }
        Provider::SimpleContact => {
            let mut candidates: Option<Vec<u32>> = None;
            for t in query.term("associateId") {
                if let Some(ids) = t.associates() {
                    candidates = Some(
                        ids.iter()
                            .filter_map(|i| u32::try_from(*i).ok())
                            .flat_map(|a| data.companies_of(a))
                            .collect(),
                    );
                }
            }
            let candidates = candidates.unwrap_or_else(|| data.companies.keys().copied().collect());
            collect!(
                candidates.into_iter().map(u64::from),
                |pk: u64| u32::try_from(pk)
                    .ok()
                    .and_then(|id| data.companies.get(&id)),
                |c: &&super::model::Company, col: &str| contact_value(data, c, col)
            )
        }
        Provider::InternalUsers => collect!(
            data.associates
                .values()
                .filter(|a| a.kind == AssociateKind::Internal)
                .filter(|a| retired_only != Some(false) || !a.active)
                .map(|a| u64::from(a.id)),
            |pk: u64| u32::try_from(pk)
                .ok()
                .and_then(|id| data.associates.get(&id)),
            |a: &&super::model::Associate, c: &str| user_value(data, a, c)
        ),
        Provider::Dynamic => {
            let after = query
                .term("traveltransactionlog.ttime")
                .find_map(|t| t.after());
            let rows: Vec<u64> = match after {
                Some(at) => data.travel_log_after(at).map(|r| r.id).collect(),
                None => data.travel_log.iter().map(|r| r.id).collect(),
            };
            collect!(
                rows.into_iter(),
                |pk: u64| travel_row(data, pk),
                |r: &&super::model::TravelLogRow, c: &str| travel_value(r, c)
            )
        }
    }
}

fn travel_row(data: &Data, pk: u64) -> Option<&super::model::TravelLogRow> {
    // Ids are 1-based positions in the log.
    let index = usize::try_from(pk).ok()?.checked_sub(1)?;
    data.travel_log.get(index).filter(|r| r.id == pk)
}

/// Candidates from the indexes: the rows updated after the watermark, or the associates'
/// rows; only without either term is the whole table scanned.
fn appointment_candidates(data: &Data, query: &Query) -> Vec<u64> {
    if let Some(after) = query.term("updatedDate").find_map(|t| t.after()) {
        return data
            .appointments_updated_after(after)
            .map(u64::from)
            .collect();
    }
    if let Some(ids) = query
        .term("associateId")
        .find_map(|t| t.ints().or(t.associates().map(<[i64]>::to_vec)))
    {
        return ids
            .iter()
            .filter_map(|i| u32::try_from(*i).ok())
            .flat_map(|a| data.appointments_of(a))
            .map(u64::from)
            .collect();
    }
    data.appointments.keys().map(|id| u64::from(*id)).collect()
}

fn appointment_value(data: &Data, tz: &TzMode, a: &Appointment, column: &str) -> Val {
    let d = &a.data;
    let task = data.task(d.task_id);
    let (start, end) = match d.span {
        Span::Timed { start, end } => (start, end),
        Span::AllDay { start, end } => (tz.midnight(start), tz.midnight(end)),
    };
    let int = |v: i64| Val::Int(v);
    let text = |s: &str| Val::Str(s.to_string());
    match column {
        "appointmentId" | "appointment/textId" => int(i64::from(a.id)),
        "associateId" => int(i64::from(d.associate_id)),
        "date" => Val::Time(start),
        "endDate" => Val::Time(end),
        "updatedDate" => Val::Time(a.updated),
        "registeredDate" => Val::Time(a.created),
        "updatedBy" => int(i64::from(a.updated_by)),
        "registeredBy" => int(i64::from(a.created_by)),
        "completed" => Val::Bool(d.completed == Completed::Completed),
        "type" => int(i64::from(d.task_id)),
        "rawType" => int(d.kind.number()),
        "rawStatus" => int(d.completed.raw_status()),
        "recordType" => text(task.map(|t| t.record_type.name()).unwrap_or("Unknown")),
        "recordTypeText" => int(task.map(|t| t.record_type.number()).unwrap_or(0)),
        "text" | "appointment/text" | "appointment/description" => text(&d.description),
        "appointment/title" => text(&d.title),
        "appointment/agenda" => text(""),
        "location" => text(&d.location),
        "isFree" => Val::Bool(d.free),
        "alarm" => Val::Bool(d.alarm_minutes.is_some()),
        "recurring" => Val::Bool(a.occurrence.is_some()),
        "recurrenceRuleId" => int(i64::from(a.occurrence.map_or(0, |o| o.rule_id))),
        "booking" => Val::Bool(false),
        "visibleInDiary" => Val::Bool(d.kind == AppointmentType::InDiary),
        "personId" => int(i64::from(d.person_id.unwrap_or(0))),
        "contactId" => int(i64::from(d.contact_id.unwrap_or(0))),
        "projectId" | "saleId" | "priority" | "cautionWarning" | "invitedPersonId" => int(0),
        _ => Val::Null,
    }
}

fn person_value(data: &Data, p: &super::model::Person, column: &str) -> Val {
    let our = data
        .companies
        .get(&p.contact_id)
        .and_then(|c| c.our_contact);
    let text = |s: &str| Val::Str(s.to_string());
    match column {
        "personId" => Val::Int(i64::from(p.id)),
        "firstName" => text(&p.first_name),
        "lastName" => text(&p.last_name),
        "middleName" | "mrMrs" | "personNumber" => text(""),
        "fullName" => text(format!("{} {}", p.first_name, p.last_name).trim()),
        "contactId" => Val::Int(i64::from(p.contact_id)),
        "title" => text(&p.title),
        "rank" => Val::Int(1),
        "retired" => Val::Bool(false),
        "hasCompany" => Val::Bool(p.contact_id != 0),
        "personUpdatedBy" => Val::Int(i64::from(p.updated_by)),
        "personUpdatedDate" => Val::Time(p.updated),
        "personRegisteredBy" => Val::Int(i64::from(p.created_by)),
        "personRegisteredDate" => Val::Time(p.created),
        "personAssociateId" => Val::Int(i64::from(our.unwrap_or(0))),
        "email/emailAddress" => text(p.emails.first().map(String::as_str).unwrap_or("")),
        "phone/formattedNumber" | "personDirectPhone/formattedNumber" => {
            text(p.phones.first().map(String::as_str).unwrap_or(""))
        }
        "personMobilePhone/formattedNumber" => {
            text(p.mobiles.first().map(String::as_str).unwrap_or(""))
        }
        _ => Val::Null,
    }
}

fn contact_value(data: &Data, c: &super::model::Company, column: &str) -> Val {
    match column {
        "contactId" => Val::Int(i64::from(c.id)),
        "name" => Val::Str(c.name.clone()),
        "department" | "orgNr" => Val::Str(String::new()),
        "associateId" => Val::Int(i64::from(c.our_contact.unwrap_or(0))),
        "contactAssociate/fullName" => Val::Str(
            c.our_contact
                .and_then(|a| data.associates.get(&a))
                .and_then(|a| data.persons.get(&a.person_id))
                .map(|p| format!("{} {}", p.first_name, p.last_name))
                .unwrap_or_default(),
        ),
        "category" => Val::Int(0),
        "updatedDate" => Val::Time(c.updated),
        "updatedBy" => Val::Int(i64::from(c.updated_by)),
        "registeredDate" => Val::Time(c.created),
        "registeredBy" => Val::Int(i64::from(c.created_by)),
        _ => Val::Null,
    }
}

fn user_value(data: &Data, a: &super::model::Associate, column: &str) -> Val {
    let person = data.persons.get(&a.person_id);
    let company = person.and_then(|p| data.companies.get(&p.contact_id));
    let text = |s: &str| Val::Str(s.to_string());
    match column {
        "associateDbId" | "assocName" => Val::Int(i64::from(a.id)),
        "assocTooltip" => text(""),
        "assocType" => Val::Int(1),
        "personId" => Val::Int(i64::from(a.person_id)),
        "contactId" => Val::Int(i64::from(person.map(|p| p.contact_id).unwrap_or(0))),
        "contactName" => text(company.map(|c| c.name.as_str()).unwrap_or("")),
        "firstName" => text(person.map(|p| p.first_name.as_str()).unwrap_or("")),
        "lastName" => text(person.map(|p| p.last_name.as_str()).unwrap_or("")),
        "middleName" => text(""),
        "fullName" => text(
            person
                .map(|p| format!("{} {}", p.first_name, p.last_name))
                .unwrap_or_default()
                .trim(),
        ),
        "title" => text(person.map(|p| p.title.as_str()).unwrap_or("")),
        "personEmail" => text(data.associate_email(a).unwrap_or("")),
        "userName" => text(&a.login),
        "isActive" | "canLogin" => Val::Bool(a.active),
        "usergroupId" => Val::Int(1),
        "ejUserId" => Val::Int(0),
        _ => Val::Null,
    }
}

fn travel_value(r: &super::model::TravelLogRow, column: &str) -> Val {
    let n = |v: u64| Val::Int(i64::try_from(v).unwrap_or(i64::MAX));
    match column.trim_start_matches("traveltransactionlog.") {
        "traveltransactionlog_id" => n(r.id),
        "ttime" => Val::Time(r.ttime),
        "prev_record_id" => n(u64::from(r.prev_record_id)),
        "type" => n(u64::from(r.kind)),
        "associate_id" => n(u64::from(r.associate_id)),
        "tablenumber" => n(u64::from(r.table)),
        "record_id" => n(u64::from(r.record_id)),
        _ => n(0),
    }
}

/// One `value` row: `PrimaryKey` (a string, as real answers show), `EntityName`, the columns.
fn render(provider: Provider, view: &View<'_>, pk: u64, query: &Query) -> Option<Value> {
    let data = view.data;
    let tz = view.tz;
    let id = u32::try_from(pk).ok();
    let mut row = Map::new();
    row.insert("PrimaryKey".into(), json!(pk.to_string()));
    let cell = |v: Val, kind: Kind| match (v, kind) {
        (Val::Time(at), Kind::UtcDate) => json!(tz.utc(at)),
        (Val::Time(at), _) => json!(tz.local(at)),
        (Val::Int(i), _) => json!(i),
        (Val::Str(s), _) => json!(s),
        (Val::Bool(b), _) => json!(b),
        (Val::Null, _) => Value::Null,
    };
    let columns: &[Column] = match provider {
        Provider::FindAppointment => FIND_APPOINTMENT,
        Provider::Person => PERSON,
        Provider::SimpleContact => SIMPLE_CONTACT,
        Provider::InternalUsers => INTERNAL_USERS,
        Provider::Dynamic => TRAVEL_LOG,
    };
    let kind_of = |c: &str| {
        odata::find(columns, c)
            .map(|c| c.kind)
            .unwrap_or(Kind::Display)
    };
    match provider {
        Provider::FindAppointment => {
            let a = data.appointments.get(&id?)?;
            row.insert("EntityName".into(), json!("appointment"));
            let task = data.task(a.data.task_id);
            for c in &query.select {
                let v = match *c {
                    "date" => json!(view.start_text(&a.data)),
                    "endDate" => json!(view.end_text(&a.data)),
                    "time" | "endTime" => {
                        let at = match (a.data.span, *c) {
                            (Span::Timed { start, .. }, "time") => Some(start),
                            (Span::Timed { end, .. }, _) => Some(end),
                            _ => None,
                        };
                        json!(
                            at.and_then(|t| tz.local(t).get(11..16).map(str::to_string))
                                .unwrap_or_default()
                        )
                    }
                    "type" => json!(task.map(|t| t.name.as_str()).unwrap_or("")),
                    "recordTypeText" => json!(task.map(|t| t.record_type.name()).unwrap_or("")),
                    "priority" => json!(""),
                    "cautionWarning" => json!("OK"),
                    other => cell(appointment_value(data, tz, a, other), kind_of(other)),
                };
                row.insert((*c).to_string(), v);
            }
        }
        Provider::Person => {
            let p = data.persons.get(&id?)?;
            row.insert("EntityName".into(), json!("person"));
            for c in &query.select {
                row.insert((*c).to_string(), cell(person_value(data, p, c), kind_of(c)));
            }
        }
        Provider::SimpleContact => {
            let company = data.companies.get(&id?)?;
            row.insert("EntityName".into(), json!("contact"));
            for c in &query.select {
                row.insert(
                    (*c).to_string(),
                    cell(contact_value(data, company, c), kind_of(c)),
                );
            }
        }
        Provider::InternalUsers => {
            let a = data.associates.get(&id?)?;
            let entity = if a.active { "all" } else { "retired" };
            row.insert("EntityName".into(), json!(entity));
            for c in &query.select {
                let v = match *c {
                    "assocName" => json!(a.login),
                    "assocType" => json!("InternalAssociate"),
                    other => cell(user_value(data, a, other), kind_of(other)),
                };
                row.insert((*c).to_string(), v);
            }
        }
        Provider::Dynamic => {
            let r = travel_row(data, pk)?;
            row.insert("EntityName".into(), json!("traveltransactionlog"));
            for c in &query.select {
                row.insert((*c).to_string(), cell(travel_value(r, c), kind_of(c)));
            }
        }
    }
    Some(Value::Object(row))
}
