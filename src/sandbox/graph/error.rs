//! Graph's error shape (`{"error": {"code", "message", "innerError"}}`) and the answers of the
//! emulated API, with the headers Graph sends on every response.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

/// What Graph sends as the `Content-Type` of a JSON answer.
pub const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// An error answer of the emulated Graph API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Extra headers (`Location` on a 410, `WWW-Authenticate` on a 401).
    pub headers: Vec<(HeaderName, String)>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code: code.to_string(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// An Exchange item (event, contact, task, folder, list) that does not exist.
    pub fn item_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }

    /// An id that is not even shaped like an Exchange id.
    pub fn malformed_id() -> Self {
        Self::bad_request("ErrorInvalidIdMalformed", "Id is malformed.")
    }

    /// A mailbox path naming a user the tenant does not have (Exchange's answer).
    pub fn invalid_user(user: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            format!("The requested user '{user}' is invalid."),
        )
    }

    /// A directory object that does not exist (`/users/{id}`).
    pub fn directory_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    /// A body that is not JSON, or not an object.
    pub fn unreadable_body(detail: impl Into<String>) -> Self {
        Self::bad_request(
            "UnableToDeserializePostBody",
            format!("were unable to deserialize {}", detail.into()),
        )
    }

    /// A JSON body whose properties do not fit the entity type.
    pub fn body_read(message: impl Into<String>) -> Self {
        Self::bad_request("RequestBodyRead", message)
    }

    /// A path segment that names nothing (OData routing's answer).
    pub fn segment(segment: &str) -> Self {
        Self::bad_request(
            "BadRequest",
            format!("Resource not found for the segment '{segment}'."),
        )
    }

    /// A method the resource does not support; the directory and Outlook answer differently.
    pub fn method_not_allowed(directory: bool) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            if directory {
                "Request_BadRequest"
            } else {
                "MethodNotAllowed"
            },
            "Specified HTTP method is not allowed for the request target.",
        )
    }

    /// An unknown property in `$select` or `$filter` of an Outlook entity.
    pub fn unknown_property(name: &str, entity: &str) -> Self {
        Self::bad_request(
            "RequestBroker--ParseUri",
            format!("Could not find a property named '{name}' on type 'microsoft.graph.{entity}'."),
        )
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(
            "BadRequest",
            format!("Invalid filter clause: {}", detail.into()),
        )
    }

    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::bad_request("BadRequest", message)
    }

    /// The body of this error, with the request's ids and the sandbox time.
    pub fn body(&self, ids: &RequestIds, now: jiff::Timestamp) -> Value {
        json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": now.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                    "request-id": ids.request_id,
                    "client-request-id": ids.client_request_id,
                }
            }
        })
    }
}

/// A successful answer: status, JSON body (none for 204) and extra headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub headers: Vec<(HeaderName, String)>,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Reply {
            status: StatusCode::OK,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub fn created(body: Value) -> Self {
        Reply {
            status: StatusCode::CREATED,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub fn no_content() -> Self {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

pub type Answer = Result<Reply, GraphError>;

/// `request-id` (new for each request) and `client-request-id` (the client's, echoed).
#[derive(Debug, Clone)]
pub struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

impl RequestIds {
    pub fn of(headers: &HeaderMap) -> Self {
        let request_id = uuid::Uuid::new_v4().to_string();
        let client_request_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 100)
            .map(str::to_string)
            .unwrap_or_else(|| request_id.clone());
        RequestIds {
            request_id,
            client_request_id,
        }
    }
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// The HTTP response for an answer.
pub fn respond(answer: Answer, ids: &RequestIds, now: jiff::Timestamp) -> Response {
    let (status, body, extra, content_type) = match answer {
        Ok(reply) => (reply.status, reply.body, reply.headers, ODATA_JSON),
        Err(e) => (
            e.status,
            Some(e.body(ids, now)),
            e.headers,
            "application/json",
        ),
    };
    let mut response = match body {
        Some(body) => Response::new(Body::from(serde_json::to_vec(&body).unwrap_or_default())),
        None => Response::new(Body::empty()),
    };
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("Cache-Control", HeaderValue::from_static("no-cache"));
    headers.insert("request-id", header_value(&ids.request_id));
    headers.insert("client-request-id", header_value(&ids.client_request_id));
    if status != StatusCode::NO_CONTENT {
        headers.insert("Content-Type", HeaderValue::from_static(content_type));
        if content_type == ODATA_JSON {
            headers.insert("OData-Version", HeaderValue::from_static("4.0"));
        }
    }
    for (name, value) in extra {
        headers.append(name, header_value(&value));
    }
    response
}
