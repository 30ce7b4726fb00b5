//! Item bodies (`itemBody`): stored as given, handed out as Outlook does (events as HTML
//! unless the client prefers text, with Exchange's wrapping), and their `bodyPreview`.

use serde_json::Value;

use super::error::GraphError;
use super::wire::Obj;

/// `text` or `html`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyType {
    Text,
    Html,
}

/// An `itemBody` as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ItemBody {
    pub content_type: BodyType,
    pub content: String,
}

impl ItemBody {
    pub fn text(content: &str) -> Self {
        ItemBody {
            content_type: BodyType::Text,
            content: content.to_string(),
        }
    }

    pub fn parse(obj: &Obj<'_>) -> Result<ItemBody, GraphError> {
        obj.known(&["contentType", "content"])?;
        let content_type = match obj.member("contentType", &["text", "html"])? {
            Some("html") => BodyType::Html,
            _ => BodyType::Text,
        };
        Ok(ItemBody {
            content_type,
            content: obj.string("content")?.unwrap_or_default(),
        })
    }

    /// The body as Outlook hands it out in `want` (events: HTML unless the client prefers
    /// text; Exchange converts and wraps the stored body).
    pub fn render(&self, want: BodyType) -> Value {
        let content = match (self.content_type, want) {
            _ if self.content.is_empty() => String::new(),
            (BodyType::Text, BodyType::Text) => self.content.clone(),
            (BodyType::Html, BodyType::Text) => html_to_text(&self.content),
            (BodyType::Text, BodyType::Html) => wrap_html(&escape_html(&self.content)),
            (BodyType::Html, BodyType::Html) => {
                if self.content.to_ascii_lowercase().contains("<html") {
                    self.content.clone()
                } else {
                    wrap_html(&self.content)
                }
            }
        };
        serde_json::json!({
            "contentType": want,
            "content": content,
        })
    }

    /// The first 255 characters of the text, whitespace collapsed (`bodyPreview`).
    pub fn preview(&self) -> String {
        let text = match self.content_type {
            BodyType::Text => self.content.clone(),
            BodyType::Html => html_to_text(&self.content),
        };
        text.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(255)
            .collect()
    }
}

fn wrap_html(inner: &str) -> String {
    format!(
        "<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n</head>\r\n<body>\r\n{inner}\r\n</body>\r\n</html>\r\n"
    )
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br>\r\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Tags dropped, line breaks kept, the common entities decoded.
fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    // Only the body's content counts when there is a body element.
    let lower = html.to_ascii_lowercase();
    if let Some(start) = lower.find("<body") {
        let after = lower[start..]
            .find('>')
            .map(|i| start + i + 1)
            .unwrap_or(start);
        let end = lower
            .rfind("</body>")
            .filter(|e| *e >= after)
            .unwrap_or(html.len());
        rest = html.get(after..end).unwrap_or(html);
    }
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + close].trim().to_ascii_lowercase();
        if tag.starts_with("br") || tag.starts_with("/p") || tag.starts_with("/div") {
            out.push_str("\r\n");
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .replace("\r\n\r\n", "\r\n")
        .trim()
        .to_string()
}
