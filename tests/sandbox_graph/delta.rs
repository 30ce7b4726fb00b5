//! Delta queries: changes appear once in the next round, changes made while paging are not
//! lost, removals, moving out of the window, token expiry (410), user edits.

use reqwest::Method;
use serde_json::{Value, json};

use super::{G, day, split_delta};

fn window(g: &G) -> String {
    format!(
        "startDateTime={}T00:00:00Z&endDateTime={}T00:00:00Z",
        day(g, -30),
        day(g, 120)
    )
}

fn ids_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_an_update_and_a_delete_each_appear_once_in_the_next_round() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let first = format!("/users/{user}/calendarView/delta?{}", window(&g));
    let prefer = [("Prefer", "odata.maxpagesize=3")];
    let (initial, link) = g.delta_round(&first, &prefer).await;
    let seeded = g.mailbox(0).events.len();
    assert!(seeded > 0);
    assert_eq!(initial.len(), seeded, "every seeded event is in the window");
    assert!(initial.iter().all(|i| i.get("@removed").is_none()));

    // Nothing changed: an empty round and a new delta link.
    let (idle, link) = g.delta_round(&link, &prefer).await;
    assert!(idle.is_empty(), "{idle:?}");

    let ids = ids_of(&initial);
    let soon = |h: u32| format!("{}T{h:02}:00:00", day(&g, 3));
    let created = g
        .create_event(&user, "New", &soon(9), &soon(10), json!({}))
        .await;
    let created_id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        g.patch(
            &format!("/users/{user}/events/{}", ids[0]),
            &json!({"subject": "Updated"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        g.patch(
            &format!("/users/{user}/events/{}", ids[0]),
            &json!({"subject": "Updated twice"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        g.delete(&format!("/users/{user}/events/{}", ids[1]))
            .await
            .status,
        204
    );
    // Outside the window: a change there is reported as a removal (the documented rule).
    let far = g
        .create_event(
            &user,
            "Far away",
            "2030-01-01T09:00:00",
            "2030-01-01T10:00:00",
            json!({}),
        )
        .await;
    let (next, link) = g.delta_round(&link, &prefer).await;
    let (changed, removed) = split_delta(&next);
    let mut expected_changed = vec![ids[0].clone(), created_id.clone()];
    expected_changed.sort();
    let mut changed_sorted = changed.clone();
    changed_sorted.sort();
    assert_eq!(changed_sorted, expected_changed, "{next:?}");
    let mut removed_sorted = removed.clone();
    removed_sorted.sort();
    let mut expected_removed = vec![ids[1].clone(), far["id"].as_str().unwrap().to_string()];
    expected_removed.sort();
    assert_eq!(removed_sorted, expected_removed);
    let updated = next.iter().find(|i| i["id"] == ids[0].as_str()).unwrap();
    assert_eq!(updated["subject"], "Updated twice", "the latest version");
    assert_eq!(updated["@odata.type"], "#microsoft.graph.event");

    // Moved out of the window: removed from the client's view.
    let out = json!({"start": {"dateTime": "2031-01-01T09:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2031-01-01T10:00:00", "timeZone": "UTC"}});
    assert_eq!(
        g.patch(&format!("/users/{user}/events/{}", ids[2]), &out)
            .await
            .status,
        200
    );
    let (next, _) = g.delta_round(&link, &prefer).await;
    assert_eq!(split_delta(&next), (vec![], vec![ids[2].clone()]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_made_while_a_client_pages_is_not_lost() {
    let g = G::start().await;
    let user = g.mailbox(2).id;
    let prefer = [("Prefer", "odata.maxpagesize=2")];
    let first = format!("{}/users/{user}/calendarView/delta?{}", g.base, window(&g));
    let page1 = g.url(Method::GET, &first, None, &prefer).await;
    let seen_first = ids_of(page1.body["value"].as_array().unwrap());
    let all_ids: Vec<String> = g.state().graph.mailbox_state(&user).unwrap()["calendar"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let not_yet: Vec<&String> = all_ids.iter().filter(|i| !seen_first.contains(i)).collect();
    // While the client pages: an item it has seen and one it has not are changed, one is
    // created, one it has not seen is deleted.
    let now = g.now();
    let graph = &g.state().graph;
    graph
        .user_update_event(
            now,
            &user,
            &seen_first[0],
            &json!({"subject": "seen, then changed"}),
        )
        .unwrap();
    graph
        .user_update_event(
            now,
            &user,
            not_yet[0],
            &json!({"subject": "changed before seen"}),
        )
        .unwrap();
    graph.user_delete_event(now, &user, not_yet[1]).unwrap();
    let soon = format!("{}T12:00:00", day(&g, 2));
    let late = format!("{}T13:00:00", day(&g, 2));
    let made = g
        .create_event(&user, "made while paging", &soon, &late, json!({}))
        .await;
    let (rest, link) = g
        .delta_round(page1.body["@odata.nextLink"].as_str().unwrap(), &prefer)
        .await;
    let mut round: Vec<Value> = page1.body["value"].as_array().unwrap().clone();
    round.extend(rest);
    let round_ids = ids_of(&round);
    let mut unique = round_ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), round_ids.len(), "each item once per round");
    let (next, _) = g.delta_round(&link, &prefer).await;
    let (changed, removed) = split_delta(&next);
    // The round's bound was fixed when it started: what changed while the client paged is
    // in the next round (as the latest version), nothing is lost.
    let made_id = made["id"].as_str().unwrap().to_string();
    for id in [&seen_first[0], not_yet[0], &made_id] {
        assert!(changed.contains(id), "{id} lost: {next:?}");
    }
    assert!(removed.contains(not_yet[1]), "the deletion is not lost");
    let latest = next
        .iter()
        .find(|i| i["id"] == not_yet[0].as_str())
        .unwrap();
    assert_eq!(latest["subject"], "changed before seen");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_delta_token_gets_410_sync_state_not_found_with_a_location() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let first = format!("/users/{user}/calendarView/delta?{}", window(&g));
    let (_, link) = g.delta_round(&first, &[]).await;
    let expire = g
        .http
        .post(format!(
            "{}/graph/mailboxes/{user}/expire-delta-tokens",
            g.sandbox.urls().control
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(expire.status().as_u16(), 200);
    let gone = g.url(Method::GET, &link, None, &[]).await;
    assert_eq!(gone.status, 410);
    assert_eq!(gone.code(), "syncStateNotFound");
    assert!(gone.body["error"]["innerError"]["request-id"].is_string());
    let location = gone
        .header("Location")
        .expect("a Location header")
        .to_string();
    assert!(location.ends_with("$deltatoken="), "{location}");
    assert!(location.contains("startDateTime="), "{location}");
    // The Location starts over: a full round again.
    let (again, _) = g.delta_round(&location, &[]).await;
    assert_eq!(again.len(), g.mailbox(0).events.len());

    // Skip tokens of a round in progress expire too; so do tasks' and contacts' tokens.
    let page = g
        .call(
            Method::GET,
            &first,
            None,
            &[("Prefer", "odata.maxpagesize=1")],
        )
        .await;
    let list = g.state().graph.default_task_list(&user).unwrap();
    let folder = g.state().graph.default_contact_folder(&user).unwrap();
    let (_, tasks) = g
        .delta_round(&format!("/users/{user}/todo/lists/{list}/tasks/delta"), &[])
        .await;
    let (_, contacts) = g
        .delta_round(
            &format!("/users/{user}/contactFolders/{folder}/contacts/delta"),
            &[],
        )
        .await;
    assert!(g.state().graph.expire_delta_tokens(&user).is_some());
    for url in [
        page.body["@odata.nextLink"].as_str().unwrap(),
        &tasks,
        &contacts,
    ] {
        let gone = g.url(Method::GET, url, None, &[]).await;
        assert_eq!(gone.status, 410, "{url}");
        assert_eq!(gone.code(), "syncStateNotFound");
    }
    // Another mailbox's tokens live on.
    let other = g.mailbox(1).id;
    let (_, other_link) = g
        .delta_round(
            &format!("/users/{other}/calendarView/delta?{}", window(&g)),
            &[],
        )
        .await;
    assert_eq!(g.url(Method::GET, &other_link, None, &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_and_contacts_deltas_report_each_change_once() {
    let g = G::start().await;
    let user = g.mailbox(1).id;
    let list = g.state().graph.default_task_list(&user).unwrap();
    let tasks_url = format!("/users/{user}/todo/lists/{list}/tasks/delta");
    let (initial, link) = g
        .delta_round(&tasks_url, &[("Prefer", "odata.maxpagesize=2")])
        .await;
    assert_eq!(initial.len(), g.mailbox(1).tasks.len());
    let ids = ids_of(&initial);
    let created = g
        .post(
            &format!("/users/{user}/todo/lists/{list}/tasks"),
            &json!({"title": "new"}),
        )
        .await;
    assert_eq!(created.status, 201);
    g.patch(
        &format!("/users/{user}/todo/lists/{list}/tasks/{}", ids[0]),
        &json!({"status": "completed"}),
    )
    .await;
    g.delete(&format!("/users/{user}/todo/lists/{list}/tasks/{}", ids[1]))
        .await;
    let (next, link) = g.delta_round(&link, &[]).await;
    let (mut changed, removed) = split_delta(&next);
    changed.sort();
    let mut expected = vec![
        ids[0].clone(),
        created.body["id"].as_str().unwrap().to_string(),
    ];
    expected.sort();
    assert_eq!(changed, expected);
    assert_eq!(removed, vec![ids[1].clone()]);
    let done = next.iter().find(|t| t["id"] == ids[0].as_str()).unwrap();
    assert_eq!(done["status"], "completed");
    assert!(done["completedDateTime"]["dateTime"].is_string());
    assert!(g.delta_round(&link, &[]).await.0.is_empty());

    let folder = g.state().graph.default_contact_folder(&user).unwrap();
    let now = g.now();
    for i in 0..3 {
        g.state()
            .graph
            .user_create_contact(
                now,
                &user,
                None,
                &json!({"givenName": format!("Before{i}"), "jobTitle": "x"}),
            )
            .unwrap();
    }
    let contacts_url = format!(
        "/users/{user}/contactFolders/{folder}/contacts/delta?$select=displayName,emailAddresses"
    );
    let (initial, link) = g.delta_round(&contacts_url, &[]).await;
    assert_eq!(initial.len(), g.mailbox(1).contacts.len() + 3);
    assert!(
        initial[0].get("jobTitle").is_none(),
        "$select is kept through the round"
    );
    let graph = &g.state().graph;
    let made = graph
        .user_create_contact(
            now,
            &user,
            None,
            &json!({"givenName": "Made", "surname": "InOutlook"}),
        )
        .unwrap();
    let first_id = initial[0]["id"].as_str().unwrap();
    graph
        .user_update_contact(now, &user, first_id, &json!({"jobTitle": "CEO"}))
        .unwrap();
    let second_id = initial[1]["id"].as_str().unwrap();
    graph.user_delete_contact(now, &user, second_id).unwrap();
    let (next, _) = g.delta_round(&link, &[]).await;
    let (mut changed, removed) = split_delta(&next);
    changed.sort();
    let mut expected = vec![
        first_id.to_string(),
        made["id"].as_str().unwrap().to_string(),
    ];
    expected.sort();
    assert_eq!(changed, expected);
    assert_eq!(removed, vec![second_id.to_string()]);
    assert!(
        next.iter()
            .all(|c| c.get("@removed").is_some() || c.get("jobTitle").is_none()),
        "still $select"
    );
    // User edits are not API requests: nothing of them in the request log.
    let logged = g.state().log.all();
    assert!(logged.iter().all(|r| !r.path.contains("_sandbox")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delta_query_needs_its_window_and_takes_no_other_options() {
    let g = G::start().await;
    let user = g.mailbox(0).id;
    let missing = g
        .get(&format!(
            "/users/{user}/calendarView/delta?startDateTime=2026-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.code(), "ErrorInvalidParameter");
    let select = g
        .get(&format!(
            "/users/{user}/calendarView/delta?{}&$select=subject",
            window(&g)
        ))
        .await;
    assert_eq!(select.status, 400);
    assert_eq!(select.code(), "ErrorInvalidUrlQuery");
    let garbage = g
        .get(&format!(
            "/users/{user}/calendarView/delta?$deltatoken=R0usmcMDNGg0J1E"
        ))
        .await;
    assert_eq!(garbage.status, 400);
    // A token of one mailbox does not serve another.
    let (_, link) = g
        .delta_round(
            &format!("/users/{user}/calendarView/delta?{}", window(&g)),
            &[],
        )
        .await;
    let token = link.split("$deltatoken=").nth(1).unwrap();
    let other = g.mailbox(1).id;
    let stolen = g
        .get(&format!(
            "/users/{other}/calendarView/delta?$deltatoken={token}"
        ))
        .await;
    assert_eq!(stolen.status, 400);
    // The parameter names are case-insensitive.
    let lower = g
        .get(&format!(
            "/users/{user}/calendarview/delta?startdatetime={}T00:00:00Z&enddatetime={}T00:00:00Z",
            day(&g, -30),
            day(&g, 120)
        ))
        .await;
    assert_eq!(lower.status, 200, "{}", lower.body);
}
