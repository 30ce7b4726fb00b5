//! PersonEntity and ContactEntity as `GET /api/v1/Person/{id}` and `GET /api/v1/Contact/{id}`
//! show them (the shape of SuperOffice's captured `person-entity.json`).

use serde_json::{Value, json};

use super::entities::{
    EMPTY_DATE, NORWAY_ID, View, address, field_properties, joined, table_right,
};
use super::model::{Company, Person};

fn element(value: &str, description: &str) -> Value {
    json!({
        "Value": value,
        "StrippedValue": value,
        "Description": description,
        "TableRight": null,
        "FieldProperties": {},
    })
}

fn list_item(id: u32, value: &str) -> Value {
    json!({ "Id": id, "Value": value, "Tooltip": "", "TableRight": null, "FieldProperties": {} })
}

pub fn country() -> Value {
    json!({
        "CountryId": NORWAY_ID,
        "Name": "Norway",
        "CurrencyId": 47,
        "EnglishName": "Norway",
        "TwoLetterISOCountry": "NO",
        "ThreeLetterISOCountry": "NOR",
        "ImageDescription": null,
        "OrgNrText": "Org.nr",
        "InterAreaPrefix": "0",
        "DialInPrefix": "47",
        "ZipPrefix": "NO",
        "DomainName": "NO",
        "AddressLayoutId": 1,
        "DomesticAddressLayoutId": 1,
        "ForeignAddressLayoutId": 1,
        "Rank": 1,
        "Tooltip": "",
        "Deleted": false,
        "TableRight": null,
        "FieldProperties": {},
    })
}

/// The fields a person's `FieldProperties` names (as in the captured sample).
const PERSON_FIELDS: &[&str] = &[
    "PersonId",
    "Firstname",
    "MiddleName",
    "Lastname",
    "Mrmrs",
    "Title",
    "UpdatedDate",
    "CreatedDate",
    "PersonNumber",
    "Post3",
    "Post2",
    "Post1",
    "Kanalname",
    "Kanafname",
    "Salutation",
    "DbiAgentId",
    "DbiKey",
    "DbiLastModified",
    "DbiLastSyncronized",
    "SentInfo",
    "ShowContactTickets",
    "Source",
    "ActiveErpLinks",
    "BirthDate",
    "CreatedBy",
    "Description",
    "IsAssociate",
    "Position",
    "UpdatedBy",
    "Contact",
    "Country",
    "Interests",
    "FullName",
    "NoMailing",
    "UsePersonAddress",
    "Retired",
    "FormalName",
    "Address.Zipcode",
    "Address.City",
    "Address.State",
    "Address.County",
    "Address.Address1",
    "Address.Address2",
    "Address.Address3",
    "Address",
    "CorrespondingAssociate",
    "Category",
    "Business",
    "Associate",
    "ActiveInterests",
    "SupportAssociate",
    "TicketPriority",
    "CustomerLanguage",
    "UserInfo",
    "ShipmentTypes",
    "Consents",
    "BounceEmails",
    "ActiveStatusMonitorId",
    "Emails",
    "PrivatePhones",
    "Faxes",
    "MobilePhones",
    "OfficePhones",
    "OtherPhones",
    "Urls",
    "ChatEmails",
    "InternetPhones",
];

impl View<'_> {
    /// `PersonEntityWithLinks`.
    pub fn person(&self, p: &Person) -> Value {
        let company = self.data.companies.get(&p.contact_id);
        let our = company.and_then(|c| c.our_contact);
        let own_associate = self.data.associates.values().find(|a| a.person_id == p.id);
        let name = format!("{} {}", p.first_name, p.last_name)
            .trim()
            .to_string();
        let link = |path: &str| format!("{}/{path}", self.api);
        joined(vec![
            json!({
                "PersonId": p.id,
                "Firstname": p.first_name,
                "MiddleName": "",
                "Lastname": p.last_name,
                "Mrmrs": "",
                "Title": p.title,
                "UpdatedDate": self.tz.utc(p.updated),
                "CreatedDate": self.tz.utc(p.created),
                "BirthDate": EMPTY_DATE,
                "CreatedBy": self.associate(p.created_by),
                "Emails": p.emails.iter().map(|e| element(e, "")).collect::<Vec<_>>(),
                "Description": "",
                "IsAssociate": own_associate.is_some(),
                "PrivatePhones": [],
                "Faxes": [],
                "MobilePhones": p.mobiles.iter().map(|m| element(m, "")).collect::<Vec<_>>(),
                "OfficePhones": p.phones.iter().map(|m| element(m, "")).collect::<Vec<_>>(),
                "OtherPhones": [],
                "Position": list_item(0, ""),
                "UpdatedBy": self.associate(p.updated_by),
            }),
            json!({
                "Contact": company.map(|c| self.contact(c)),
                "Country": country(),
                "Interests": [],
                "PersonNumber": "",
                "FullName": name,
                "NoMailing": false,
                "UsePersonAddress": false,
                "Retired": false,
                "Urls": [],
                "FormalName": name,
                "Address": address("PersonPrivateAddress"),
                "Post3": "",
                "Post2": "",
                "Post1": "",
                "Kanalname": "",
                "Kanafname": "",
                "CorrespondingAssociate": own_associate.map(|a| self.associate(a.id)),
                "Category": list_item(0, ""),
                "Business": list_item(0, ""),
                "Associate": our.map(|a| self.associate(a)),
            }),
            json!({
                "Salutation": "",
                "ActiveInterests": 0,
                "SupportAssociate": null,
                "TicketPriority": null,
                "CustomerLanguage": null,
                "DbiAgentId": 0,
                "DbiKey": "",
                "DbiLastModified": EMPTY_DATE,
                "DbiLastSyncronized": EMPTY_DATE,
                "SentInfo": 0,
                "ShowContactTickets": 0,
                "UserInfo": null,
                "ChatEmails": [],
                "InternetPhones": [],
                "Source": 0,
                "ActiveErpLinks": 0,
                "ShipmentTypes": [],
                "Consents": [],
                "BounceEmails": [],
                "ActiveStatusMonitorId": 0,
            }),
            json!({
                "UserDefinedFields": {},
                "ExtraFields": {},
                "CustomFields": {},
                "TableRight": table_right("Select, Update, Insert, Delete"),
                "FieldProperties": field_properties(PERSON_FIELDS),
                "_Links": {
                    "Self": link(&format!("Person/{}/", p.id)),
                    "Self.Simple": link(&format!("Person/{}/Simple/", p.id)),
                    "UdefLayout": link("Person/UdefLayout/Published/"),
                    "Mrmrs.List": link("MDOList/mrmrs/"),
                    "Position.List": link("MDOList/perspos/"),
                    "Contact": link(&format!("Contact/{}/", p.contact_id)),
                    "Contact.List": link("MDOList/contact_new/"),
                    "Country.List": link("MDOList/country/"),
                    "Interests.List": link("MDOList/persint/"),
                    "Category.List": link("MDOList/category/"),
                    "Business.List": link("MDOList/business/"),
                    "Associate.List": link("MDOList/associate/"),
                    "Salutation.List": link("MDOList/salutation/"),
                    "SupportAssociate.List": link("MDOList/associate/"),
                    "TicketPriority.List": link("MDOList/ticketpriority/"),
                    "CustomerLanguage.List": link("MDOList/customerlanguage/"),
                    "Archive": link("Person/"),
                    "Archive.Activities": link(&format!("Person/{}/Activities/", p.id)),
                    "Archive.Appointments": link(&format!("Person/{}/Appointments/", p.id)),
                    "Archive.Documents": link(&format!("Person/{}/Documents/", p.id)),
                    "Archive.Sales": link(&format!("Person/{}/Sales/", p.id)),
                    "Archive.Relations": link(&format!("Person/{}/Relations/", p.id)),
                    "Archive.Tickets": link(&format!("Person/{}/Tickets/", p.id)),
                },
            }),
        ])
    }

    /// `ContactEntityWithLinks` (a company).
    pub fn company(&self, c: &Company) -> Value {
        let persons: Vec<Value> = self
            .data
            .persons_of_company(c.id)
            .filter_map(|id| self.data.persons.get(&id))
            .map(|p| self.person_carrier(p))
            .collect();
        joined(vec![
            json!({
                "ContactId": c.id,
                "Name": c.name,
                "Department": "",
                "OrgNr": "",
                "Number1": "",
                "Number2": "",
                "UpdatedDate": self.tz.utc(c.updated),
                "CreatedDate": self.tz.utc(c.created),
                "Emails": [],
                "Interests": [],
                "Urls": [],
                "Phones": [],
                "Faxes": [],
                "Description": "",
                "UpdatedBy": self.associate(c.updated_by),
                "CreatedBy": self.associate(c.created_by),
                "Associate": c.our_contact.map(|a| self.associate(a)),
                "Business": list_item(0, ""),
                "Category": list_item(0, ""),
                "Country": country(),
            }),
            json!({
                "Persons": persons,
                "NoMailing": false,
                "Kananame": "",
                "Xstop": false,
                "ActiveInterests": 0,
                "GroupId": 1,
                "ActiveStatusMonitorId": 0,
                "SupportAssociate": null,
                "TicketPriority": null,
                "CustomerLanguage": null,
                "Deleted": 0,
                "DbiAgentId": 0,
                "DbiLastSyncronized": EMPTY_DATE,
                "DbiKey": "",
                "DbiLastModified": EMPTY_DATE,
                "SupportPerson": null,
                "Address": address("ContactPostalAddress"),
                "Source": 0,
                "ActiveErpLinks": 0,
                "BounceEmails": [],
            }),
            json!({
                "Domains": [],
                "UtmParameters": null,
                "UserDefinedFields": {},
                "ExtraFields": {},
                "CustomFields": {},
                "TableRight": table_right("Select, Update, Insert, Delete"),
                "FieldProperties": {},
                "_Links": {
                    "Self": format!("{}/Contact/{}", self.api, c.id),
                    "Archive": format!("{}/Contact", self.api),
                },
            }),
        ])
    }
}
