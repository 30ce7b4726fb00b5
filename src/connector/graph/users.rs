//! Load External Users: every user of the tenant with its SMTP addresses (`GET /users`, all
//! pages).

use reqwest::Method;
use serde_json::Value;

use super::wire::{self, Op};
use super::{APP_KEY, GraphClient, json_of};
use crate::connector::http::Request;
use crate::connector::{ConnectorError, ExternalMailbox};

/// The first page: the properties Auto Link needs, the largest page the directory gives.
pub const USERS_PATH: &str =
    "/users?$select=id,displayName,userPrincipalName,mail,proxyAddresses&$top=999";

/// A user as a mailbox: `mail` and every `smtp:`/`SMTP:` proxy address, lower case, the
/// primary first, each once.
pub fn mailbox_of(user: &Value) -> Option<ExternalMailbox> {
    let id = user.get("id")?.as_str()?.to_string();
    let text = |k: &str| user.get(k).and_then(Value::as_str).map(str::to_string);
    let mail = text("mail").filter(|m| !m.is_empty());
    let mut smtp: Vec<String> = Vec::new();
    let mut push = |address: &str| {
        let address = address.trim().to_ascii_lowercase();
        if !address.is_empty() && !smtp.contains(&address) {
            smtp.push(address);
        }
    };
    let proxies: Vec<&str> = user
        .get("proxyAddresses")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // `SMTP:` (upper case) is the primary address.
    for p in &proxies {
        if let Some(a) = p.strip_prefix("SMTP:") {
            push(a);
        }
    }
    if let Some(m) = &mail {
        push(m);
    }
    for p in &proxies {
        if let Some((scheme, a)) = p.split_once(':')
            && scheme.eq_ignore_ascii_case("smtp")
        {
            push(a);
        }
    }
    Some(ExternalMailbox {
        id,
        display_name: text("displayName").unwrap_or_default(),
        user_principal_name: text("userPrincipalName").unwrap_or_default(),
        mail,
        smtp_addresses: smtp,
    })
}

pub async fn mailboxes(client: &GraphClient) -> Result<Vec<ExternalMailbox>, ConnectorError> {
    let mut out = Vec::new();
    let mut path = USERS_PATH.to_string();
    // A directory of a million users is 1,002 pages; more means a link that loops.
    for _ in 0..10_000 {
        let request = Request::new(Method::GET, client.url(&path)?, APP_KEY);
        // The directory is no mailbox: only the global quota applies.
        let response = client.http.send_global(&request, &client.tokens).await?;
        let page = json_of(&response, Op::Read, "the user list")?;
        let users = page
            .get("value")
            .and_then(Value::as_array)
            .ok_or_else(|| wire::malformed("a user page without value"))?;
        out.extend(users.iter().filter_map(mailbox_of));
        match page.get("@odata.nextLink").and_then(Value::as_str) {
            Some(next) => path = client.relative(next)?,
            None => return Ok(out),
        }
    }
    Err(wire::malformed("the user list does not end"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn addresses_are_lower_case_primary_first_each_once() {
        let user = json!({"id": "u1", "displayName": "Dina", "userPrincipalName": "dina@contoso.onmicrosoft.com",
            "mail": "Dina.Dahl@Contoso.example",
            "proxyAddresses": ["smtp:dd@contoso.example", "SMTP:Dina.Dahl@contoso.example", "X500:/o=x", "sip:dina@contoso.example"]});
        let m = mailbox_of(&user).unwrap();
        assert_eq!(
            m.smtp_addresses,
            vec!["dina.dahl@contoso.example", "dd@contoso.example"]
        );
        assert_eq!(m.mail.as_deref(), Some("Dina.Dahl@Contoso.example"));
        let bare = mailbox_of(&json!({"id": "u2", "mail": null, "proxyAddresses": []})).unwrap();
        assert!(bare.smtp_addresses.is_empty());
        assert!(mailbox_of(&json!({"mail": "x"})).is_none());
    }
}
