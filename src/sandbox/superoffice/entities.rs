//! The AppointmentEntity as the REST API shows and reads it, and the small carriers
//! (Associate, Contact, Person, TaskListItem) entities embed.

use serde_json::{Map, Value, json};

use super::model::{
    Appointment, AppointmentData, AppointmentType, Associate, AssociateKind, Company, Completed,
    Data, Person, Private, RecordType, Span, TaskItem,
};
use super::time::{Literal, TzMode, parse_literal, parse_timespan_minutes, timespan};

/// What rendering needs besides the row.
pub struct View<'a> {
    pub data: &'a Data,
    pub tz: &'a TzMode,
    /// `http://host:port/{ctx}/api/v1`
    pub api: &'a str,
}

pub const EMPTY_DATE: &str = "0001-01-01T00:00:00";

pub fn table_right(mask: &str) -> Value {
    json!({ "Mask": mask, "Reason": "" })
}

impl View<'_> {
    pub fn full_name(&self, associate: &Associate) -> String {
        match self.data.persons.get(&associate.person_id) {
            Some(p) => format!("{} {}", p.first_name, p.last_name)
                .trim()
                .to_string(),
            None => associate.login.clone(),
        }
    }

    /// The `Associate` carrier.
    pub fn associate(&self, id: u32) -> Value {
        let Some(a) = self.data.associates.get(&id) else {
            return Value::Null;
        };
        let name = self.full_name(a);
        json!({
            "AssociateId": a.id,
            "Name": a.login,
            "PersonId": a.person_id,
            "Rank": 0,
            "Tooltip": "",
            "Type": match a.kind {
                AssociateKind::Internal => "InternalAssociate",
                AssociateKind::System => "SystemAssociate",
            },
            "GroupIdx": 1,
            "FullName": name,
            "FormalName": name,
            "Deleted": !a.active,
            "EjUserId": 0,
            "UserName": a.login,
            "ExtraFields": {},
            "CustomFields": {},
            "TableRight": table_right("Select"),
            "FieldProperties": {},
        })
    }

    /// The `TaskListItem` carrier.
    pub fn task(&self, t: &TaskItem) -> Value {
        json!({
            "TaskListItemId": t.id,
            "Value": t.name,
            "Direction": if t.record_type == RecordType::Phone { "Outgoing" } else { "Unknown" },
            "Type": t.record_type.name(),
            "Tooltip": "",
            "Deleted": false,
            "IntentId": 0,
            "Rank": t.id,
            "IsDefaultAlldayEvent": false,
            "IsDefaultFree": t.default_free,
            "IsDefaultPublished": false,
            "ColorIndex": "LightBlue",
            "DefaultVideomeetingStatus": "NoChange",
            "TableRight": table_right("Select"),
            "FieldProperties": {},
        })
    }

    /// The `Contact` carrier (a company as other entities embed it).
    pub fn contact(&self, c: &Company) -> Value {
        let our = c.our_contact.and_then(|a| self.data.associates.get(&a));
        joined(vec![
            json!({
                "ContactId": c.id,
                "Name": c.name,
                "OrgNr": "",
                "Department": "",
                "URL": "",
                "City": "",
                "DirectPhone": "",
                "AssociateId": c.our_contact.unwrap_or(0),
                "CountryId": NORWAY_ID,
                "EmailAddress": "",
                "Kananame": "",
                "EmailAddressName": null,
                "URLName": null,
                "AssociateFullName": our.map(|a| self.full_name(a)).unwrap_or_default(),
                "BusinessName": "",
                "CategoryName": "",
                "CountryName": "Norway",
                "Address": address("ContactPostalAddress"),
                "FormattedAddress": "",
                "FullName": c.name,
            }),
            json!({
                "IsOwnerContact": false,
                "ActiveErpLinks": 0,
                "Number1": "",
                "Number2": "",
                "TableRight": table_right("Select, Update, Insert, Delete"),
                "FieldProperties": field_properties(&[
                    "ContactId", "Name", "Department", "OrgNr", "UrlAddress", "Phone", "AssociateId",
                    "ContactCountryId", "Email", "Kananame", "CategoryId", "BusinessId",
                    "PostalAddress", "StreetAddress",
                ]),
            }),
        ])
    }

    /// The `Person` carrier (a person as other entities embed it).
    pub fn person_carrier(&self, p: &Person) -> Value {
        let company = self.data.companies.get(&p.contact_id);
        let our = company
            .and_then(|c| c.our_contact)
            .and_then(|a| self.data.associates.get(&a));
        let name = format!("{} {}", p.first_name, p.last_name)
            .trim()
            .to_string();
        joined(vec![
            json!({
                "Position": "",
                "PersonId": p.id,
                "Mrmrs": "",
                "Firstname": p.first_name,
                "Lastname": p.last_name,
                "MiddleName": "",
                "Title": p.title,
                "Description": "",
                "Email": p.emails.first().cloned().unwrap_or_default(),
                "FullName": name,
                "DirectPhone": p.phones.first().cloned().unwrap_or_default(),
                "FormalName": name,
                "CountryId": NORWAY_ID,
                "ContactId": p.contact_id,
                "ContactName": company.map(|c| c.name.clone()).unwrap_or_default(),
                "Retired": 0,
                "Rank": 1,
                "ActiveInterests": 0,
                "ContactDepartment": "",
                "ContactCountryId": NORWAY_ID,
            }),
            json!({
                "ContactOrgNr": "",
                "FaxPhone": "",
                "MobilePhone": p.mobiles.first().cloned().unwrap_or_default(),
                "ContactPhone": "",
                "AssociateName": our.map(|a| self.full_name(a)).unwrap_or_default(),
                "AssociateId": our.map(|a| a.id).unwrap_or(0),
                "UsePersonAddress": false,
                "ContactFax": "",
                "Kanafname": "",
                "Kanalname": "",
                "Post1": "",
                "Post2": "",
                "Post3": "",
                "EmailName": "",
                "ContactFullName": company.map(|c| c.name.clone()).unwrap_or_default(),
                "ActiveErpLinks": 0,
                "TicketPriorityId": 0,
                "SupportLanguageId": 0,
                "SupportAssociateId": 0,
                "CategoryName": "",
            }),
            json!({
                "PersonNumber": "",
                "TableRight": table_right("Select, Update, Insert, Delete"),
                "FieldProperties": {},
            }),
        ])
    }

    fn visible_for(&self, a: &Appointment) -> Value {
        let owner = self.data.associates.get(&a.data.associate_id);
        match a.data.private {
            Private::Public => json!([{
                "VisibleId": 0, "Visibility": "All", "DisplayValue": "All",
                "TableRight": table_right("Select"), "FieldProperties": {},
            }]),
            Private::PrivateUser => json!([{
                "VisibleId": a.data.associate_id, "Visibility": "Associate",
                "DisplayValue": owner.map(|o| o.login.clone()).unwrap_or_default(),
                "TableRight": table_right("Select"), "FieldProperties": {},
            }]),
            Private::PrivateGroup => json!([{
                "VisibleId": 1, "Visibility": "Group", "DisplayValue": "Sales",
                "TableRight": table_right("Select"), "FieldProperties": {},
            }]),
        }
    }

    pub fn start_text(&self, data: &AppointmentData) -> String {
        match data.span {
            Span::Timed { start, .. } => self.tz.local(start),
            Span::AllDay { start, .. } => self.tz.floating(start),
        }
    }

    pub fn end_text(&self, data: &AppointmentData) -> String {
        match data.span {
            Span::Timed { end, .. } => self.tz.local(end),
            Span::AllDay { end, .. } => self.tz.floating(end),
        }
    }

    /// The recurrence rule of a row of a series.
    fn rule_of(&self, a: &Appointment) -> Option<&super::recurrence::Rule> {
        a.occurrence.and_then(|o| self.data.rules.get(&o.rule_id))
    }

    /// `AppointmentEntityWithLinks`.
    pub fn appointment(&self, a: &Appointment) -> Value {
        let d = &a.data;
        let active = match d.kind {
            AppointmentType::InDiary => self.start_text(d),
            AppointmentType::InChecklist => self.end_text(d),
        };
        joined(vec![
            json!({
                "Associate": self.associate(d.associate_id),
                "Contact": d.contact_id.and_then(|c| self.data.companies.get(&c)).map(|c| self.contact(c)),
                "CreatedBy": self.associate(a.created_by),
                "UpdatedBy": self.associate(a.updated_by),
                "CreatedDate": self.tz.utc(a.created),
                "AppointmentId": a.id,
                "Description": d.description,
                "Title": d.title,
                "Agenda": "",
                "InternalNotes": "",
                "StartDate": self.start_text(d),
                "EndDate": self.end_text(d),
                "InvitedPerson": null,
                "Person": d.person_id.and_then(|p| self.data.persons.get(&p)).map(|p| self.person_carrier(p)),
                "MotherId": 0,
                "Priority": null,
                "Private": d.private.name(),
                "Project": null,
                "Type": d.kind.name(),
                "UpdatedDate": self.tz.utc(a.updated),
            }),
            json!({
                "Completed": d.completed.name(),
                "ActiveLinks": 0,
                "Links": [],
                "AlarmLeadTime": timespan(d.alarm_minutes.unwrap_or(0)),
                "HasAlarm": d.alarm_minutes.is_some(),
                "ColorIndex": 0,
                "IsFree": d.free,
                "IsAlldayEvent": matches!(d.span, Span::AllDay { .. }),
                "LagTime": "00:00:00",
                "LeadTime": "00:00:00",
                "Location": d.location,
                "RejectCounter": 0,
                "RejectReason": "",
                "Recurrence": self.rule_of(a).map(|r| super::recurrence::render(r, self.tz)),
                "Participants": [],
                "AssignmentStatus": "None",
                "InvitationStatus": "None",
                "BookingType": "None",
                "ActiveDate": active,
                "HasConflict": false,
            }),
            json!({
                "AssignedBy": null,
                "MotherAssociate": self.associate(d.associate_id),
                "Task": self.data.task(d.task_id).map(|t| self.task(t)),
                "PreferredTZLocation": self.rule_of(a).map_or(0, |r| r.zone_id),
                "PreferredTZLocationData": null,
                "Sale": null,
                "SuggestedAppointmentId": 0,
                "IsMileStone": false,
                "CautionWarning": "OK",
                "OwnedExternally": "None",
                "JoinVideomeetUrl": "",
                "CentralserviceVideomeetId": "",
                "UserDefinedFields": {},
                "ExtraFields": {},
                "CustomFields": {},
                "PublishEventDate": EMPTY_DATE,
                "PublishTo": EMPTY_DATE,
                "PublishFrom": EMPTY_DATE,
                "IsPublished": false,
                "VisibleFor": self.visible_for(a),
            }),
            json!({
                "TableRight": table_right("Select, Update, Insert, Delete"),
                "FieldProperties": {},
                "_Links": {
                    "Self": format!("{}/Appointment/{}", self.api, a.id),
                    "Archive": format!("{}/Appointment", self.api),
                },
            }),
        ])
    }
}

pub const NORWAY_ID: u32 = 578;

/// `FieldProperties` naming every field as updatable.
pub fn field_properties(fields: &[&str]) -> Value {
    let map: Map<String, Value> = fields
        .iter()
        .map(|f| {
            (
                f.to_string(),
                json!({
                    "FieldRight": { "Mask": "Update", "Reason": "" },
                    "FieldType": "System.String",
                    "FieldLength": 255,
                }),
            )
        })
        .collect();
    Value::Object(map)
}

/// An empty `Address` of the given address type, with its localized layout.
pub fn address(atype: &str) -> Value {
    let line = |name: &str, label: &str, len: u32| {
        json!({
            "Name": name, "Value": "", "Tooltip": "", "Label": label, "ValueLength": len,
            "AddressType": atype, "TableRight": null, "FieldProperties": {},
        })
    };
    let structured = json!({
        "AtypeIdx": atype, "Address1": "", "Address2": "", "Address3": "", "City": "",
        "County": "", "State": "", "Zipcode": "", "Formatted": "",
    });
    json!({
        "Wgs84Latitude": 0.0,
        "Wgs84Longitude": 0.0,
        "LocalizedAddress": [
            [line("Address1", "SR_AL_ADDRESS1", 80)],
            [line("Address2", "SR_AL_ADDRESS2", 80)],
            [line("Address3", "SR_AL_ADDRESS3", 80)],
            [line("Zipcode", "SR_AL_ZIPCODE", 12), line("City", "SR_AL_CITY", 80)],
        ],
        "Street": structured,
        "Postal": structured,
        "Formatted": "",
        "TableRight": table_right("Select, Update, Insert, Delete"),
        "FieldProperties": field_properties(&[
            "zipcode", "city", "state", "county", "address1", "address2", "address3",
        ]),
    })
}

/// Looks a property up the way Json.NET binds it: case-insensitively.
pub fn get<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn string(object: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match get(object, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{name} must be a string, not {other}")),
    }
}

fn boolean(object: &Map<String, Value>, name: &str) -> Result<Option<bool>, String> {
    match get(object, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(format!("{name} must be true or false, not {other}")),
    }
}

/// An id as Json.NET reads an int: a number, or a string holding one.
pub fn id_value(value: &Value, name: &str) -> Result<u32, String> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse::<u32>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{name} must be a whole number, not {value}"))
}

/// The id inside a carrier property (`"Associate": {"AssociateId": 5}`); 0 or null is none.
fn carrier_id(object: &Map<String, Value>, name: &str, key: &str) -> Result<Option<u32>, String> {
    match get(object, name) {
        None => Ok(None),
        Some(Value::Object(inner)) => match get(inner, key) {
            None => Ok(None),
            Some(v) => Ok(Some(id_value(v, &format!("{name}.{key}"))?).filter(|id| *id != 0)),
        },
        Some(other) => Err(format!("{name} must be an object, not {other}")),
    }
}

fn enum_value<T: Copy>(
    object: &Map<String, Value>,
    name: &str,
    names: &[(&str, i64, Option<T>)],
) -> Result<Option<T>, String> {
    let Some(value) = get(object, name) else {
        return Ok(None);
    };
    let found = names.iter().find(|(n, number, _)| match value {
        Value::String(s) => n.eq_ignore_ascii_case(s) || s.trim() == number.to_string(),
        Value::Number(x) => x.as_i64() == Some(*number),
        _ => false,
    });
    match found {
        Some((_, _, Some(v))) => Ok(Some(*v)),
        Some((n, _, None)) => Err(format!(
            "{name} {n} is not supported for a diary or checklist item"
        )),
        None => Err(format!("{name} has no value {value}")),
    }
}

/// Reads a whole AppointmentEntity sent with POST or PUT (or the result of a PATCH). A
/// property left out takes the carrier's default, as when Json.NET fills a new carrier.
pub fn read_appointment(body: &Value, tz: &TzMode, data: &Data) -> Result<AppointmentData, String> {
    let Value::Object(o) = body else {
        return Err("The body must be an AppointmentEntity JSON object".into());
    };
    let associate_id = carrier_id(o, "Associate", "AssociateId")?
        .ok_or("Associate is required: the associate whose diary the appointment is in")?;
    let task_id = carrier_id(o, "Task", "TaskListItemId")?
        .ok_or("Task is required: the activity type (see /api/v1/List/Task/Items)")?;
    let task = data
        .task(task_id)
        .ok_or_else(|| format!("Task list item id {task_id} not found"))?;
    use AppointmentType::*;
    let kind = enum_value(
        o,
        "Type",
        &[
            ("Unknown", 0, None),
            ("inDiary", 1, Some(InDiary)),
            ("inChecklist", 2, Some(InChecklist)),
            ("Note", 3, None),
            ("Document", 4, None),
            ("SavedReport", 5, None),
            ("BookingForDiary", 6, None),
            ("BookingForChecklist", 7, None),
            ("MergeDraft", 8, None),
            ("MergeFinal", 9, None),
        ],
    )?
    .unwrap_or(if task.record_type == RecordType::ToDo {
        InChecklist
    } else {
        InDiary
    });
    let private = enum_value(
        o,
        "Private",
        &[
            ("Public", 0, Some(Private::Public)),
            ("PrivateUser", 1, Some(Private::PrivateUser)),
            ("PrivateGroup", 2, Some(Private::PrivateGroup)),
        ],
    )?
    .unwrap_or(Private::Public);
    let completed = enum_value(
        o,
        "Completed",
        &[
            ("Unknown", 0, Some(Completed::NotStarted)),
            ("NotStarted", 1, Some(Completed::NotStarted)),
            ("Started", 2, Some(Completed::Started)),
            ("Completed", 3, Some(Completed::Completed)),
        ],
    )?
    .unwrap_or(Completed::NotStarted);
    let start = string(o, "StartDate")?.ok_or("StartDate is required")?;
    let end = string(o, "EndDate")?.ok_or("EndDate is required")?;
    let all_day = boolean(o, "IsAlldayEvent")?.unwrap_or(false);
    let span = if all_day {
        let day = |text: &str, name: &str| -> Result<(jiff::civil::Date, bool), String> {
            match parse_literal(text).map_err(|e| format!("{name}: {e}"))? {
                Literal::Date(d) => Ok((d, false)),
                Literal::Local(dt) => Ok((dt.date(), dt.time() != jiff::civil::Time::midnight())),
                Literal::Exact(at) => {
                    let local = at.to_zoned(tz.zone.clone()).datetime();
                    Ok((local.date(), local.time() != jiff::civil::Time::midnight()))
                }
            }
        };
        let (start, _) = day(&start, "StartDate")?;
        let (end_day, has_time) = day(&end, "EndDate")?;
        // An end inside a day (23:59) includes that day.
        let end = if has_time {
            end_day.tomorrow().map_err(|e| e.to_string())?
        } else {
            end_day
        };
        Span::AllDay { start, end }
    } else {
        Span::Timed {
            start: super::time::whole_seconds(
                tz.parse_local(&start)
                    .map_err(|e| format!("StartDate: {e}"))?,
            ),
            end: super::time::whole_seconds(
                tz.parse_local(&end).map_err(|e| format!("EndDate: {e}"))?,
            ),
        }
    };
    let alarm_minutes = if boolean(o, "HasAlarm")?.unwrap_or(false) {
        Some(match string(o, "AlarmLeadTime")? {
            Some(text) => {
                parse_timespan_minutes(&text).map_err(|e| format!("AlarmLeadTime: {e}"))?
            }
            None => 0,
        })
    } else {
        None
    };
    Ok(AppointmentData {
        associate_id,
        task_id,
        kind,
        title: string(o, "Title")?.unwrap_or_default(),
        description: string(o, "Description")?.unwrap_or_default(),
        location: string(o, "Location")?.unwrap_or_default(),
        span,
        private,
        free: boolean(o, "IsFree")?.unwrap_or(false),
        alarm_minutes,
        completed,
        person_id: carrier_id(o, "Person", "PersonId")?,
        contact_id: carrier_id(o, "Contact", "ContactId")?,
    })
}

/// Joins JSON objects into one (big literals exceed `json!`'s macro recursion limit).
pub fn joined(parts: Vec<Value>) -> Value {
    let mut all = Map::new();
    for part in parts {
        if let Value::Object(o) = part {
            all.extend(o);
        }
    }
    Value::Object(all)
}
