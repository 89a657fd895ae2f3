//! `metav1.Status` errors with the real API server's wording.

use crate::resources::ResourceType;
use serde_json::{Value, json};

/// `reason` of [`ApiError::page_not_found`]: never sent, the body is plain text.
const PAGE_NOT_FOUND: &str = "PageNotFound";

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `reason` field.
    pub reason: &'static str,
    /// `message` field.
    pub message: String,
    /// `details` field.
    pub details: Option<Value>,
}

fn details(rt: &ResourceType, name: Option<&str>) -> Value {
    let mut d = serde_json::Map::new();
    if let Some(n) = name {
        d.insert("name".into(), json!(n));
    }
    if !rt.group.is_empty() {
        d.insert("group".into(), json!(rt.group));
    }
    d.insert("kind".into(), json!(rt.plural));
    Value::Object(d)
}

/// The reason Kubernetes uses for a status code.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

impl ApiError {
    /// Generic error with a code, deriving the reason.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        ApiError { code, reason: reason_for(code), message: message.into(), details: None }
    }

    /// The `Status` JSON body.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }

    /// `pods "x" not found`.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{} \"{}\" not found", rt.qualified(), name),
            details: Some(details(rt, Some(name))),
        }
    }

    /// The server's answer for a path it does not serve.
    pub fn path_not_found() -> Self {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: Some(json!({})),
        }
    }

    /// A path under a group the server does not serve at all (e.g. a CRD's group before the CRD
    /// exists): the real API server's catch-all handler answers a plain-text
    /// `404 page not found`, not a `Status` (checked against kube-apiserver 1.20 and 1.34).
    pub fn page_not_found() -> Self {
        ApiError { code: 404, reason: PAGE_NOT_FOUND, message: "404 page not found\n".into(), details: None }
    }

    /// Whether this error is answered as plain text ([`page_not_found`](Self::page_not_found)).
    pub fn is_plain(&self) -> bool {
        self.reason == PAGE_NOT_FOUND
    }

    /// 401.
    pub fn unauthorized() -> Self {
        ApiError { code: 401, reason: "Unauthorized", message: "Unauthorized".into(), details: None }
    }

    /// 403 with the RBAC wording.
    pub fn forbidden(
        rt: &ResourceType,
        sub: Option<&str>,
        name: Option<&str>,
        user: &str,
        verb: &str,
        ns: Option<&str>,
    ) -> Self {
        let resource = match sub {
            Some(s) => format!("{}/{}", rt.plural, s),
            None => rt.plural.clone(),
        };
        let subject = match name {
            Some(n) => format!("{} \"{}\"", rt.qualified(), n),
            None => rt.qualified(),
        };
        let scope = match ns {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
                rt.group
            ),
            details: Some(details(rt, name)),
        }
    }

    /// 409 optimistic-concurrency conflict.
    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                rt.qualified(),
                name
            ),
            details: Some(details(rt, Some(name))),
        }
    }

    /// 409 on create.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{}\" already exists", rt.qualified(), name),
            details: Some(details(rt, Some(name))),
        }
    }

    /// 422 with one field cause. `kind` is e.g. `Deployment.apps` or `Scale.autoscaling`.
    pub fn invalid(kind: &str, group: &str, name: &str, field: &str, detail: &str) -> Self {
        let short_kind = kind.split('.').next().unwrap_or(kind);
        let mut d = json!({
            "name": name,
            "kind": short_kind,
            "causes": [{"reason": "FieldValueInvalid", "message": detail, "field": field}],
        });
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{kind} \"{name}\" is invalid: {field}: {detail}"),
            details: Some(d),
        }
    }

    /// 400.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError { code: 400, reason: "BadRequest", message: msg.into(), details: None }
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: "the server does not allow this method on the requested resource".into(),
            details: Some(json!({})),
        }
    }

    /// 415.
    pub fn unsupported_media_type(ct: &str) -> Self {
        ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
            ),
            details: None,
        }
    }
}
