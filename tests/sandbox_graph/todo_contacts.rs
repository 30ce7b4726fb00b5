//! To Do lists, tasks and linked resources; contact folders and contacts; the control API.

use serde_json::{Value, json};

use super::{G, STAMP};

#[tokio::test(flavor = "multi_thread")]
async fn tasks_carry_linked_resources_from_creation_and_after() {
    let g = G::start().await;
    let user = g.mailbox(0).user_principal_name;
    let lists = format!("/users/{user}/todo/lists");
    let created = g.post(&lists, &json!({"displayName": "CRM tasks"})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["wellknownListName"], "none");
    let list = created.body["id"].as_str().unwrap().to_string();
    let names: Vec<Value> = g.get(&lists).await.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["displayName"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("Tasks"), json!("Flagged email"), json!("CRM tasks")]
    );

    let tasks = format!("{lists}/{list}/tasks");
    let task = g
        .post(
            &tasks,
            &json!({
                "title": "Call back",
                "body": {"content": "About the offer", "contentType": "text"},
                "dueDateTime": {"dateTime": "2026-03-10T00:00:00", "timeZone": "W. Europe Standard Time"},
                "linkedResources": [{"applicationName": "crmsync", "displayName": "Appointment 17", "externalId": "so-17", "webUrl": "https://crm.example/17"}],
            }),
        )
        .await;
    assert_eq!(task.status, 201, "{}", task.body);
    assert_eq!(task.body["linkedResources"][0]["externalId"], "so-17");
    // Stored as an instant, shown in UTC.
    assert_eq!(
        task.body["dueDateTime"],
        json!({"dateTime": "2026-03-09T23:00:00.0000000", "timeZone": "UTC"})
    );
    let id = task.body["id"].as_str().unwrap().to_string();
    let plain = g.get(&format!("{tasks}/{id}")).await;
    assert!(
        plain.body.get("linkedResources").is_none(),
        "only with $expand"
    );
    let expanded = g
        .get(&format!("{tasks}/{id}?$expand=linkedResources"))
        .await;
    assert_eq!(
        expanded.body["linkedResources"][0]["displayName"],
        "Appointment 17"
    );

    let more = g
        .post(
            &format!("{tasks}/{id}/linkedResources"),
            &json!({"applicationName": "crmsync", "externalId": "so-18"}),
        )
        .await;
    assert_eq!(more.status, 201, "{}", more.body);
    let listed = g.get(&format!("{tasks}/{id}/linkedResources")).await;
    let external: Vec<&str> = listed.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["externalId"].as_str().unwrap())
        .collect();
    assert_eq!(external, ["so-17", "so-18"]);
    let after = g.get(&format!("{tasks}/{id}")).await;
    assert_ne!(
        after.body["@odata.etag"], plain.body["@odata.etag"],
        "a new linked resource changes the task"
    );

    let completed = g
        .patch(&format!("{tasks}/{id}"), &json!({"status": "completed"}))
        .await;
    assert_eq!(completed.body["status"], "completed");
    assert!(completed.body["completedDateTime"]["dateTime"].is_string());
    let reopened = g
        .patch(&format!("{tasks}/{id}"), &json!({"status": "notStarted"}))
        .await;
    assert!(reopened.body.get("completedDateTime").is_none());
    let filtered = g
        .get(&format!(
            "{tasks}?$filter=status eq 'notStarted' and title eq 'call back'"
        ))
        .await;
    assert_eq!(
        filtered.body["value"].as_array().unwrap().len(),
        1,
        "{}",
        filtered.body
    );
    let by_stamp = g
        .get(&format!(
            "{tasks}?$filter=linkedResources/any(l: l/externalId eq 'so-17')"
        ))
        .await;
    assert_eq!(by_stamp.status, 400, "not documented, so not emulated");
    assert_eq!(g.delete(&format!("{tasks}/{id}")).await.status, 204);
    assert_eq!(g.get(&format!("{tasks}/{id}")).await.status, 404);
    let default = g.state().graph.default_task_list(&user).unwrap();
    assert_eq!(
        g.delete(&format!("{lists}/{default}")).await.status,
        400,
        "the default list stays"
    );
    assert_eq!(g.delete(&format!("{lists}/{list}")).await.status, 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn contact_folders_are_unique_by_name_and_contacts_carry_stamps() {
    let g = G::start().await;
    let user = g.mailbox(2).id;
    let folders = format!("/users/{user}/contactFolders");
    let crm = g
        .post(&folders, &json!({"displayName": "CRM contacts"}))
        .await;
    assert_eq!(crm.status, 201);
    let duplicate = g
        .post(&folders, &json!({"displayName": "crm CONTACTS"}))
        .await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(duplicate.code(), "ErrorFolderExists");
    let listed = g.get(&folders).await;
    assert_eq!(
        listed.body["value"].as_array().unwrap().len(),
        1,
        "{}",
        listed.body
    );
    let folder = crm.body["id"].as_str().unwrap().to_string();
    let default = g.state().graph.default_contact_folder(&user).unwrap();
    assert_eq!(crm.body["parentFolderId"], default.as_str());

    let contacts = format!("{folders}/{folder}/contacts");
    let made = g
        .post(
            &contacts,
            &json!({
                "givenName": "Pavel",
                "surname": "Bansky",
                "emailAddresses": [{"address": "pavelb@contoso.com", "name": "Pavel Bansky"}],
                "businessPhones": ["+1 732 555 0102"],
                "businessAddress": {"city": "Oslo"},
                "singleValueExtendedProperties": [{"id": STAMP, "value": "Person-5"}],
            }),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["parentFolderId"], folder.as_str());
    assert_eq!(made.body["displayName"], "Pavel Bansky");
    assert_eq!(made.body["businessAddress"], json!({"city": "Oslo"}));
    let id = made.body["id"].as_str().unwrap().to_string();
    let found = g
        .get(&format!("{contacts}?$filter=singleValueExtendedProperties/Any(ep: ep/id eq '{STAMP}' and ep/value eq 'Person-5')"))
        .await;
    assert_eq!(
        found.body["value"].as_array().unwrap().len(),
        1,
        "{}",
        found.body
    );
    let expanded = g
        .get(&format!("/users/{user}/contacts/{id}?$expand=singleValueExtendedProperties($filter=id eq '{STAMP}')"))
        .await;
    assert_eq!(
        expanded.body["singleValueExtendedProperties"][0]["value"],
        "Person-5"
    );
    let renamed = g
        .patch(
            &format!("{contacts}/{id}"),
            &json!({"jobTitle": "CTO", "surname": "Bánský"}),
        )
        .await;
    assert_eq!(renamed.body["displayName"], "Pavel Bánský");
    assert_ne!(renamed.body["changeKey"], made.body["changeKey"]);
    // Not in the default folder's listing.
    let default_list = g.get(&format!("/users/{user}/contacts?$top=100")).await;
    assert!(
        default_list.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != id.as_str())
    );
    assert_eq!(
        g.delete(&format!("/users/{user}/contacts/{id}"))
            .await
            .status,
        204
    );
    assert_eq!(g.get(&format!("{contacts}/{id}")).await.status, 404);
    assert_eq!(
        g.delete(&format!("{folders}/{default}")).await.code(),
        "ErrorDeleteDistinguishedFolder"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_acts_as_a_user_dumps_mailboxes_and_counts_tokens() {
    let g = G::start().await;
    let user = g.mailbox(1).user_principal_name;
    let control = g
        .sandbox
        .urls()
        .control
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let made = g
        .http
        .post(format!("{control}/graph/users/{user}/events"))
        .json(&json!({
            "subject": "Dentist",
            "start": {"dateTime": "2026-06-01T08:00:00", "timeZone": "Eastern Standard Time"},
            "end": {"dateTime": "2026-06-01T09:00:00", "timeZone": "Eastern Standard Time"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 201);
    let made: Value = made.json().await.unwrap();
    let id = made["id"].as_str().unwrap();
    let moved = g
        .http
        .patch(format!("{control}/graph/users/{user}/events/{id}"))
        .json(&json!({"subject": "Dentist (moved)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status().as_u16(), 200);
    let dump: Value = g
        .http
        .get(format!("{control}/graph/mailboxes/{user}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = dump["calendar"]["events"].as_array().unwrap();
    let dentist = events
        .iter()
        .find(|e| e["id"] == id)
        .expect("the user's event is in the dump");
    assert_eq!(dentist["subject"], "Dentist (moved)");
    assert_eq!(dentist["start"]["dateTime"], "2026-06-01T12:00:00.0000000");
    assert!(dump["todoLists"][0]["tasks"].is_array());
    assert!(dump["contactFolders"][0]["contacts"].is_array());
    assert!(
        g.state().log.all().iter().all(|r| !r.path.contains(id)),
        "user edits are not API requests"
    );
    let info: Value = g
        .http
        .get(format!("{control}/graph"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["tokens_issued"], 1);
    assert_eq!(info["mailboxes"], 6);
    let missing = g
        .http
        .get(format!("{control}/graph/mailboxes/nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let expired = g
        .http
        .post(format!("{control}/graph/expire-delta-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status().as_u16(), 200);
}
