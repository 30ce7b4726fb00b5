//! Every documented sample of ../shared/reference/graph that describes a response, compared
//! with what the emulator answers to the same request: the same field names, nesting and
//! JSON types (values may differ).

use reqwest::Method;
use serde_json::{Value, json};

use super::G;
use super::common::shape::{assert_same_shape, reference};

fn sample(name: &str) -> Value {
    reference(&format!("graph/{name}"))
}

/// The sample with its `value` array cut to the one element at `index` (the comparison
/// checks every answer element against a sample's first element).
fn with_value_element(sample: &Value, index: usize) -> Value {
    let mut out = sample.clone();
    out["value"] = json!([sample["value"][index].clone()]);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_created_event_has_the_shape_of_event_json() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let answer = g
        .call(
            Method::POST,
            &format!("/users/{user}/events"),
            Some(&sample("event-create-request.json")),
            &[("Prefer", "outlook.timezone=\"Pacific Standard Time\"")],
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_same_shape("graph/event.json", &sample("event.json"), &answer.body);
    // The sample answers 11:00-12:00 to a 12:00-14:00 request (a doc mistake); the emulator
    // keeps the times it was given.
    assert_eq!(
        answer.body["start"]["dateTime"],
        "2017-04-15T12:00:00.0000000"
    );
    assert_eq!(
        answer.body["end"]["dateTime"],
        "2017-04-15T14:00:00.0000000"
    );
    assert_eq!(answer.body["start"]["timeZone"], "Pacific Standard Time");
    assert_eq!(
        answer.body["originalStartTimeZone"],
        "Pacific Standard Time"
    );
    assert_eq!(answer.body["subject"], "Let's go for lunch");
    assert_eq!(answer.body["type"], "singleInstance");
    assert_eq!(
        answer.body["@odata.etag"],
        format!("W/\"{}\"", answer.body["changeKey"].as_str().unwrap())
    );
    assert!(
        answer.body.get("transactionId").is_none(),
        "only returned when set"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_created_series_has_the_shape_of_event_recurring_json() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let answer = g
        .call(
            Method::POST,
            &format!("/users/{user}/events"),
            Some(&sample("event-recurring-request.json")),
            &[("Prefer", "outlook.timezone=\"Pacific Standard Time\"")],
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    // The sample's last key, `OnlineMeeting`, is the docs' misspelling of `onlineMeeting`
    // (OData names are case-sensitive); the rest is compared as documented.
    let mut documented = sample("event-recurring.json");
    if let Some(map) = documented.as_object_mut()
        && let Some(v) = map.remove("OnlineMeeting")
    {
        map.insert("onlineMeeting".into(), v);
    }
    assert_same_shape("graph/event-recurring.json", &documented, &answer.body);
    assert_eq!(answer.body["type"], "seriesMaster");
    assert_eq!(
        answer.body["recurrence"], documented["recurrence"],
        "the documented recurrence, every property present"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_series_instances_have_the_shape_of_event_instances_json() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let master = g
        .post(
            &format!("/users/{user}/events"),
            &sample("event-recurring-request.json"),
        )
        .await;
    assert_eq!(master.status, 201, "{}", master.body);
    let id = master.body["id"].as_str().unwrap();
    let first = g
        .get(&format!(
            "/users/{user}/events/{id}/instances?startDateTime=2017-09-01&endDateTime=2017-10-01"
        ))
        .await;
    // The sample holds an exception: make one, by changing an occurrence.
    let occurrence = first.body["value"][1]["id"].as_str().unwrap().to_string();
    let changed = g
        .patch(
            &format!("/users/{user}/events/{occurrence}"),
            &json!({"body": {"contentType": "text", "content": "Changing the meeting."}}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let answer = g
        .get(&format!(
            "/users/{user}/events/{id}/instances?startDateTime=2017-09-01&endDateTime=2017-10-01&$select=subject,bodyPreview,seriesMasterId,type,recurrence,start,end"
        ))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let documented = sample("event-instances.json");
    for index in 0..2 {
        assert_same_shape(
            "graph/event-instances.json",
            &with_value_element(&documented, index),
            &answer.body,
        );
    }
    let types: Vec<&str> = answer.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["occurrence", "exception", "occurrence", "occurrence"]
    );
    assert!(
        answer.body["@odata.context"]
            .as_str()
            .unwrap()
            .contains("/instances(subject,bodyPreview,seriesMasterId,type,recurrence,start,end)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn extended_properties_come_back_only_expanded_in_the_documented_shape() {
    let g = G::start().await;
    let user = g.mailbox(1).user_principal_name;
    let created = g
        .post(
            &format!("/users/{user}/events"),
            &sample("event-with-extended-property.json"),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(
        created.body.get("singleValueExtendedProperties").is_none(),
        "the create answer does not include the extended property"
    );
    let id = created.body["id"].as_str().unwrap().to_string();
    // The documented PATCH adds another property to the item.
    let patched = g
        .patch(
            &format!("/users/{user}/events/{id}"),
            &sample("extended-property-patch-request.json"),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);

    let color = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color";
    let expanded = g
        .get(&format!(
            "/users/{user}/events/{id}?$expand=singleValueExtendedProperties($filter=id eq '{color}')"
        ))
        .await;
    assert_eq!(expanded.status, 200, "{}", expanded.body);
    // The sample is a message; only its singleValueExtendedProperties part applies to events.
    let documented = sample("extended-property-expand-response.json");
    let part =
        json!({ "singleValueExtendedProperties": documented["singleValueExtendedProperties"] });
    assert_same_shape(
        "graph/extended-property-expand-response.json",
        &part,
        &expanded.body,
    );
    assert_eq!(
        expanded.body["singleValueExtendedProperties"],
        json!([{"id": color, "value": "Green"}])
    );
    let fun = g
        .get(&format!(
            "/users/{user}/events/{id}?$expand=singleValueExtendedProperties($filter=id eq 'String {{66f5a359-4659-4830-9070-00040ec6ac6e}} Name Fun')"
        ))
        .await;
    assert_eq!(
        fun.body["singleValueExtendedProperties"][0]["value"],
        "Food"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_calendar_view_delta_round_has_the_shape_of_the_documented_pages() {
    let g = G::start().await;
    let user = g.mailbox(2).id;
    let times = [
        ("2016-12-09T20:30:00", "2016-12-09T22:00:00"),
        ("2016-12-10T01:00:00", "2016-12-10T02:00:00"),
        ("2016-12-10T19:30:00", "2016-12-10T21:30:00"),
        ("2016-12-10T22:00:00", "2016-12-11T00:00:00"),
        ("2016-12-12T02:00:00", "2016-12-12T07:30:00"),
    ];
    let mut ids = Vec::new();
    for (i, (start, end)) in times.iter().enumerate() {
        let event = g
            .create_event(
                &user,
                &format!("Errand {i}"),
                start,
                end,
                json!({"location": {"displayName": "Home"}}),
            )
            .await;
        ids.push(event["id"].as_str().unwrap().to_string());
    }
    let prefer = [("Prefer", "odata.maxpagesize=2")];
    let first = format!(
        "{}/users/{user}/calendarView/delta?startdatetime=2016-12-01T00:00:00Z&enddatetime=2016-12-30T00:00:00Z",
        g.base
    );
    let page1 = g.url(Method::GET, &first, None, &prefer).await;
    assert_eq!(page1.status, 200, "{}", page1.body);
    assert_same_shape(
        "graph/calendarview-delta-page.json",
        &sample("calendarview-delta-page.json"),
        &page1.body,
    );
    let next = page1.body["@odata.nextLink"].as_str().unwrap().to_string();
    assert!(next.contains("$skiptoken="), "{next}");
    let page2 = g.url(Method::GET, &next, None, &prefer).await;
    assert_same_shape(
        "graph/calendarview-delta-page2.json",
        &sample("calendarview-delta-page2.json"),
        &page2.body,
    );
    let next = page2.body["@odata.nextLink"].as_str().unwrap().to_string();
    let page3 = g.url(Method::GET, &next, None, &prefer).await;
    assert_same_shape(
        "graph/calendarview-delta-final.json",
        &sample("calendarview-delta-final.json"),
        &page3.body,
    );
    // 2 + 2 + 1 events, as in the documented round.
    let counts: Vec<usize> = [&page1, &page2, &page3]
        .iter()
        .map(|p| p.body["value"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts, [2, 2, 1]);
    let delta_link = page3.body["@odata.deltaLink"].as_str().unwrap().to_string();
    assert!(delta_link.contains("$deltatoken="), "{delta_link}");

    // The next round: one deleted, one new (with the sample's address and coordinates).
    assert_eq!(
        g.delete(&format!("/users/{user}/events/{}", ids[0]))
            .await
            .status,
        204
    );
    g.create_event(
        &user,
        "Attend service",
        "2016-12-25T06:00:00",
        "2016-12-25T07:30:00",
        json!({"location": {
            "displayName": "Chapel of Saint Ignatius",
            "address": {"street": "900 Broadway", "city": "Seattle", "state": "WA", "countryOrRegion": "United States", "postalCode": ""},
            "coordinates": {"latitude": 47.6105, "longitude": -122.321}
        }}),
    )
    .await;
    let round = g.url(Method::GET, &delta_link, None, &prefer).await;
    assert_eq!(round.status, 200, "{}", round.body);
    let next_round = sample("calendarview-delta-next-round.json");
    let items = round.body["value"].as_array().unwrap().clone();
    let (removed, changed): (Vec<Value>, Vec<Value>) =
        items.into_iter().partition(|i| i.get("@removed").is_some());
    assert_eq!((removed.len(), changed.len()), (1, 1), "{}", round.body);
    let mut only_removed = round.body.clone();
    only_removed["value"] = json!(removed);
    assert_same_shape(
        "graph/calendarview-delta-next-round.json (its @removed item)",
        &with_value_element(&next_round, 0),
        &only_removed,
    );
    let mut only_changed = round.body.clone();
    only_changed["value"] = json!(changed);
    assert_same_shape(
        "graph/calendarview-delta-next-round.json (its changed item)",
        &with_value_element(&next_round, 1),
        &only_changed,
    );
    assert_eq!(removed[0]["id"], ids[0].as_str());
    assert_eq!(removed[0]["@removed"]["reason"], "deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_delta_reference_page_names_the_properties_delta_items_carry() {
    let g = G::start().await;
    let user = g.mailbox(3).id;
    for i in 0..3 {
        // transactionId is only returned when set; the reference page shows it on every item.
        g.create_event(
            &user,
            &format!("Reference {i}"),
            "2015-06-01T10:00:00",
            "2015-06-01T11:00:00",
            json!({"transactionId": format!("tx-reference-{i}")}),
        )
        .await;
    }
    let page = g
        .call(
            Method::GET,
            &format!("/users/{user}/calendarView/delta?startDateTime=2015-05-01T00:00:00&endDateTime=2015-07-01T00:00:00"),
            None,
            &[("Prefer", "odata.maxpagesize=2")],
        )
        .await;
    // The sample holds placeholder strings ("datetime-value") where typed values belong; the
    // answer's real values are strings there too, so names, nesting and types still compare.
    assert_same_shape(
        "graph/event-delta-reference-page.json",
        &sample("event-delta-reference-page.json"),
        &page.body,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn to_do_answers_have_the_shape_of_the_samples() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let lists = g.get(&format!("/users/{user}/todo/lists")).await;
    let default = lists.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["wellknownListName"] == "defaultList")
        .cloned()
        .expect("a default list");
    assert_eq!(default["displayName"], "Tasks");
    let list_id = default["id"].as_str().unwrap().to_string();
    let list = g.get(&format!("/users/{user}/todo/lists/{list_id}")).await;
    assert_same_shape(
        "graph/todotasklist.json",
        &sample("todotasklist.json"),
        &list.body,
    );

    let created = g
        .post(
            &format!("/users/{user}/todo/lists/{list_id}/tasks"),
            &json!({
                "title": "Shop for dinner",
                "importance": "low",
                "categories": ["Important", "Urgent"],
                "dueDateTime": {"dateTime": "2020-08-25T04:00:00", "timeZone": "UTC"},
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let task = g
        .get(&format!("/users/{user}/todo/lists/{list_id}/tasks/{id}"))
        .await;
    // The sample's @odata.context points to beta; only its shape is compared.
    assert_same_shape("graph/todotask.json", &sample("todotask.json"), &task.body);
    assert_eq!(
        task.body["dueDateTime"]["dateTime"],
        "2020-08-25T04:00:00.0000000"
    );

    let linked = g
        .post(
            &format!("/users/{user}/todo/lists/{list_id}/tasks"),
            &sample("todotask-linkedresource-request.json"),
        )
        .await;
    assert_eq!(linked.status, 201, "{}", linked.body);
    assert_same_shape(
        "graph/todotask-linkedresource.json",
        &sample("todotask-linkedresource.json"),
        &linked.body,
    );

    let (_, last) = g
        .delta_round(
            &format!("/users/{user}/todo/lists/{list_id}/tasks/delta"),
            &[],
        )
        .await;
    let page = g.url(Method::GET, &last, None, &[]).await;
    assert_eq!(page.status, 200);
    // An idle round: no items, a new delta link. The full first round's last page:
    let first = g
        .get(&format!("/users/{user}/todo/lists/{list_id}/tasks/delta"))
        .await;
    assert!(
        first.body.get("@odata.deltaLink").is_some(),
        "one page: {}",
        first.body
    );
    assert_same_shape(
        "graph/todotask-delta.json",
        &sample("todotask-delta.json"),
        &first.body,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn contact_answers_have_the_shape_of_the_samples() {
    let g = G::start().await;
    let user = g.mailbox(1).id;
    let created = g
        .post(
            &format!("/users/{user}/contacts"),
            &json!({"givenName": "Alex", "surname": "Wilber", "emailAddresses": [{"address": "Alex@FineArtSchool.net"}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let contact = g.get(&format!("/users/{user}/contacts/{id}")).await;
    assert_same_shape("graph/contact.json", &sample("contact.json"), &contact.body);
    assert_eq!(contact.body["displayName"], "Alex Wilber");
    assert_eq!(
        contact.body["emailAddresses"][0]["name"],
        "Alex@FineArtSchool.net"
    );

    let folder = g
        .post(
            &format!("/users/{user}/contactFolders"),
            &json!({"displayName": "CRM"}),
        )
        .await;
    assert_eq!(folder.status, 201, "{}", folder.body);
    let folder_id = folder.body["id"].as_str().unwrap();
    for i in 0..3 {
        let c = g
            .post(
                &format!("/users/{user}/contactFolders/{folder_id}/contacts"),
                &json!({"givenName": format!("G{i}"), "initials": "GG", "birthday": "2016-10-19T10:37:00Z", "fileAs": "x"}),
            )
            .await;
        assert_eq!(c.status, 201, "{}", c.body);
    }
    // The sample was asked with $select=displayName but shows other properties (with
    // placeholder values); the full item is compared.
    let page = g
        .call(
            Method::GET,
            &format!("/users/{user}/contactFolders/{folder_id}/contacts/delta"),
            None,
            &[("Prefer", "odata.maxpagesize=2")],
        )
        .await;
    assert_same_shape(
        "graph/contacts-delta.json",
        &sample("contacts-delta.json"),
        &page.body,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn users_list_token_and_throttling_answers_have_the_documented_shapes() {
    let g = G::start().await;
    let users = g.get("/users").await;
    assert_eq!(users.status, 200);
    assert_same_shape(
        "graph/users-list.json",
        &sample("users-list.json"),
        &users.body,
    );

    let c = g.sandbox.credentials();
    let ok = g
        .http
        .post(g.token_url())
        .form(&[
            ("client_id", c.graph_client_id.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_secret", c.graph_client_secret.as_str()),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    let ok: Value = ok.json().await.unwrap();
    assert_same_shape(
        "graph/token-response.json",
        &sample("token-response.json"),
        &ok,
    );
    assert_eq!(ok["token_type"], "Bearer");
    assert_eq!(ok["expires_in"], 3599);
    let bad = g
        .http
        .post(g.token_url())
        .form(&[
            ("client_id", c.graph_client_id.as_str()),
            ("scope", "https://foo.microsoft.com/.default"),
            ("client_secret", c.graph_client_secret.as_str()),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let bad: Value = bad.json().await.unwrap();
    assert_same_shape(
        "graph/token-error-response.json",
        &sample("token-error-response.json"),
        &bad,
    );
    assert_eq!(bad["error"], "invalid_scope");
    assert_eq!(bad["error_codes"], json!([70011]));

    g.state().limits.set_spec(crmsync::sandbox::LimitSpec {
        graph_mailbox: Some(crmsync::sandbox::Rate {
            requests: 1,
            per: std::time::Duration::from_secs(600),
        }),
        ..crmsync::sandbox::LimitSpec::off()
    });
    let user = g.mailbox(0).id;
    assert_eq!(g.get(&format!("/users/{user}/events")).await.status, 200);
    let throttled = g.get(&format!("/users/{user}/events")).await;
    assert_eq!(throttled.status, 429);
    assert!(throttled.header("Retry-After").is_some());
    assert_same_shape(
        "graph/error-429.json",
        &sample("error-429.json"),
        &throttled.body,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_answer_has_the_shape_of_batch_response_json() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let batch = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users?$top=1"},
        {"id": "2", "method": "GET", "url": format!("/users/{user}/events/AAMkAGI1AAAt9AHjAAA=")},
        {"id": "3", "method": "PUT", "url": "/users", "body": {}, "headers": {"Content-Type": "application/json"}},
        {"id": "5", "method": "GET", "url": "users?$select=id,displayName,userPrincipalName"},
    ]});
    let answer = g.post("/$batch", &batch).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut documented = sample("batch-response.json");
    // `x-ms-resource-unit` is the directory's cost header; the Outlook resources send none.
    for item in documented["responses"].as_array_mut().unwrap() {
        if let Some(headers) = item["headers"].as_object_mut() {
            headers.remove("x-ms-resource-unit");
        }
    }
    let responses = &documented["responses"];
    // Every item: id, status, headers. The sample's first item also has `x-ms-resource-unit`
    // (the directory's resource units) and `OData-Version`, which error items lack, so
    // headers compare on what every item carries.
    let mut per_item = responses[0].clone();
    per_item["headers"] = json!({
        "Cache-Control": responses[0]["headers"]["Cache-Control"],
        "Content-Type": responses[0]["headers"]["Content-Type"],
    });
    let per_item = per_item.as_object().unwrap();
    let outline = json!({"responses": [{
        "id": per_item["id"], "status": per_item["status"], "headers": per_item["headers"],
    }]});
    assert_same_shape(
        "graph/batch-response.json (every item)",
        &outline,
        &answer.body,
    );

    let by_id = |id: &str| {
        answer.body["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap()
    };
    // Item 1 of the sample pages (its values are directory roles of /me/memberOf, which is
    // not emulated: the page's own properties compare).
    let mut paged = responses[0].clone();
    paged["body"]["value"] = json!([]);
    assert_same_shape("graph/batch-response.json (item 1)", &paged, &by_id("1"));
    assert_eq!(by_id("2")["status"], 404);
    assert_same_shape(
        "graph/batch-response.json (item 3)",
        &responses[2],
        &by_id("2"),
    );
    assert_eq!(by_id("3")["status"], 405);
    assert_same_shape(
        "graph/batch-response.json (item 4)",
        &responses[3],
        &by_id("3"),
    );
    // Item 5 without `@odata.count` (`$count` is not emulated).
    let mut selected = responses[4].clone();
    if let Some(body) = selected["body"].as_object_mut() {
        body.remove("@odata.count");
    }
    assert_same_shape("graph/batch-response.json (item 5)", &selected, &by_id("5"));
    assert_eq!(
        by_id("5")["body"]["value"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>()
            .len(),
        3,
        "$select keeps the three properties"
    );
}
