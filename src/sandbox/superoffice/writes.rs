//! Writes to the tenant's data: validation as SuperOffice does it, `UpdatedDate` that only
//! moves forward, and a travel transaction log row for every insert, update and delete.

use jiff::Timestamp;

use super::model::{
    Appointment, AppointmentData, Data, Person, Span, TABLE_APPOINTMENT, TABLE_CONTACT,
    TABLE_PERSON, TTL_DELETE, TTL_INSERT, TTL_UPDATE, TTL_UPDATE_OWNER, TravelLogRow, WriteError,
};
use super::time::{plus_seconds, whole_seconds};

impl Data {
    /// An `UpdatedDate` for a write now: never earlier than (and never equal to) the item's
    /// previous one, so that `updatedDate afterTime <previous>` always finds the write.
    pub(super) fn stamp(now: Timestamp, previous: Option<Timestamp>) -> Timestamp {
        let now = whole_seconds(now);
        match previous {
            Some(p) if now <= p => plus_seconds(p, 1),
            _ => now,
        }
    }

    pub(super) fn log(
        &mut self,
        now: Timestamp,
        table: u32,
        record_id: u32,
        kind: u32,
        by: u32,
        prev: u32,
    ) {
        let id = self.travel_log.last().map(|r| r.id).unwrap_or(0) + 1;
        self.travel_log_by_time
            .insert((whole_seconds(now), self.travel_log.len()));
        self.travel_log.push(TravelLogRow {
            id,
            ttime: whole_seconds(now),
            table,
            record_id,
            kind,
            associate_id: by,
            prev_record_id: prev,
        });
    }

    /// Checks an appointment's references, and fills in the company from the person.
    pub fn validate_appointment(&self, data: &mut AppointmentData) -> Result<(), WriteError> {
        if !self.associates.contains_key(&data.associate_id) {
            return Err(WriteError::Invalid(format!(
                "Associate id {} not found: an appointment must be in an associate's diary",
                data.associate_id
            )));
        }
        if self.task(data.task_id).is_none() {
            return Err(WriteError::Invalid(format!(
                "Task list item id {} not found",
                data.task_id
            )));
        }
        if let Span::Timed { start, end } = data.span
            && end < start
        {
            return Err(WriteError::Invalid(
                "EndDate is before StartDate: an appointment cannot end before it starts".into(),
            ));
        }
        if let Span::AllDay { start, end } = data.span
            && end <= start
        {
            return Err(WriteError::Invalid(
                "An all-day appointment must end on a later day than it starts".into(),
            ));
        }
        if data.location.chars().count() > 254 {
            return Err(WriteError::Invalid(
                "Location is longer than 254 characters".into(),
            ));
        }
        if let Some(person_id) = data.person_id {
            let person = self
                .persons
                .get(&person_id)
                .ok_or_else(|| WriteError::Invalid(format!("Person id {person_id} not found")))?;
            match data.contact_id {
                None => data.contact_id = Some(person.contact_id),
                Some(c) if c != person.contact_id => {
                    return Err(WriteError::Invalid(format!(
                        "Person id {person_id} is not a contact person of company id {c}"
                    )));
                }
                Some(_) => {}
            }
        }
        if let Some(contact_id) = data.contact_id
            && !self.companies.contains_key(&contact_id)
        {
            return Err(WriteError::Invalid(format!(
                "Contact id {contact_id} not found"
            )));
        }
        Ok(())
    }

    pub fn create_appointment(
        &mut self,
        mut data: AppointmentData,
        by: u32,
        now: Timestamp,
    ) -> Result<u32, WriteError> {
        self.validate_appointment(&mut data)?;
        // Ids are never reused, not even after a delete.
        let id = self.next_appointment.max(1);
        self.next_appointment = id + 1;
        let at = Self::stamp(now, None);
        let appointment = Appointment {
            id,
            data,
            created: at,
            updated: at,
            created_by: by,
            updated_by: by,
            updated_count: 0,
            occurrence: None,
        };
        self.index_appointment(&appointment);
        self.appointments.insert(id, appointment);
        self.log(now, TABLE_APPOINTMENT, id, TTL_INSERT, by, 0);
        Ok(id)
    }

    /// An update of one row. A row of a recurring series edited alone becomes an exception.
    pub fn update_appointment(
        &mut self,
        id: u32,
        mut data: AppointmentData,
        by: u32,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        self.validate_appointment(&mut data)?;
        self.replace_appointment(id, data, by, now, true)
    }

    /// Writes a row's new content (validated), stamped and logged. `alone`: an edit of this row
    /// only, rather than of its whole series.
    pub(super) fn replace_appointment(
        &mut self,
        id: u32,
        data: AppointmentData,
        by: u32,
        now: Timestamp,
        alone: bool,
    ) -> Result<(), WriteError> {
        let Some(old) = self.appointments.get(&id).cloned() else {
            return Err(WriteError::NotFound {
                entity: "Appointment",
                id,
            });
        };
        self.unindex_appointment(&old);
        let previous_owner = old.data.associate_id;
        let mut updated = Appointment {
            id,
            updated: Self::stamp(now, Some(old.updated)),
            updated_by: by,
            updated_count: old.updated_count.saturating_add(1),
            data,
            ..old
        };
        if alone && let Some(o) = updated.occurrence.as_mut() {
            o.exception = true;
        }
        let new_owner = updated.data.associate_id;
        self.index_appointment(&updated);
        self.appointments.insert(id, updated);
        self.log(now, TABLE_APPOINTMENT, id, TTL_UPDATE, by, 0);
        if new_owner != previous_owner {
            self.log(
                now,
                TABLE_APPOINTMENT,
                id,
                TTL_UPDATE_OWNER,
                by,
                previous_owner,
            );
        }
        Ok(())
    }

    pub fn delete_appointment(
        &mut self,
        id: u32,
        by: u32,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        let Some(old) = self.appointments.remove(&id) else {
            return Err(WriteError::NotFound {
                entity: "Appointment",
                id,
            });
        };
        self.unindex_appointment(&old);
        // Deleting one row of a series cancels that occurrence; the rule keeps the others.
        if let Some(o) = old.occurrence {
            self.forget_occurrence(o);
        }
        self.log(now, TABLE_APPOINTMENT, id, TTL_DELETE, by, 0);
        Ok(())
    }

    pub fn create_person(
        &mut self,
        mut person: Person,
        by: u32,
        now: Timestamp,
    ) -> Result<u32, WriteError> {
        if !self.companies.contains_key(&person.contact_id) {
            return Err(WriteError::Invalid(format!(
                "Contact id {} not found",
                person.contact_id
            )));
        }
        let id = self.next_person.max(1);
        self.next_person = id + 1;
        let at = Self::stamp(now, None);
        person.id = id;
        person.created = at;
        person.updated = at;
        person.created_by = by;
        person.updated_by = by;
        self.index_person(&person);
        self.persons.insert(id, person);
        self.log(now, TABLE_PERSON, id, TTL_INSERT, by, 0);
        Ok(id)
    }

    pub fn update_person(
        &mut self,
        mut person: Person,
        by: u32,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        let id = person.id;
        let Some(old) = self.persons.get(&id).cloned() else {
            return Err(WriteError::NotFound {
                entity: "Person",
                id,
            });
        };
        if !self.companies.contains_key(&person.contact_id) {
            return Err(WriteError::Invalid(format!(
                "Contact id {} not found",
                person.contact_id
            )));
        }
        self.unindex_person(&old);
        person.created = old.created;
        person.created_by = old.created_by;
        person.updated = Self::stamp(now, Some(old.updated));
        person.updated_by = by;
        self.index_person(&person);
        self.persons.insert(id, person);
        self.log(now, TABLE_PERSON, id, TTL_UPDATE, by, 0);
        Ok(())
    }

    /// Deleting a person in the user interface is a soft delete: the row is gone from every
    /// read, and (as documented) nothing is written to the travel transaction log.
    pub fn soft_delete_person(&mut self, id: u32) -> Result<(), WriteError> {
        if self.associates.values().any(|a| a.person_id == id) {
            return Err(WriteError::Invalid(format!(
                "Person id {id} is an associate's own person card and cannot be deleted"
            )));
        }
        let Some(old) = self.persons.remove(&id) else {
            return Err(WriteError::NotFound {
                entity: "Person",
                id,
            });
        };
        self.unindex_person(&old);
        Ok(())
    }

    pub fn set_our_contact(
        &mut self,
        company_id: u32,
        associate: Option<u32>,
        by: u32,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        if let Some(a) = associate
            && !self.associates.contains_key(&a)
        {
            return Err(WriteError::Invalid(format!("Associate id {a} not found")));
        }
        let Some(company) = self.companies.get_mut(&company_id) else {
            return Err(WriteError::NotFound {
                entity: "Contact",
                id: company_id,
            });
        };
        let previous = company.our_contact;
        company.our_contact = associate;
        company.updated = Self::stamp(now, Some(company.updated));
        company.updated_by = by;
        if let Some(p) = previous
            && let Some(set) = self.companies_by_our_contact.get_mut(&p)
        {
            set.remove(&company_id);
        }
        if let Some(a) = associate {
            self.companies_by_our_contact
                .entry(a)
                .or_default()
                .insert(company_id);
        }
        self.log(now, TABLE_CONTACT, company_id, TTL_UPDATE, by, 0);
        if previous != associate {
            self.log(
                now,
                TABLE_CONTACT,
                company_id,
                TTL_UPDATE_OWNER,
                by,
                previous.unwrap_or(0),
            );
        }
        Ok(())
    }
}
