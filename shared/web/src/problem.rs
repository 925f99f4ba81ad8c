//! RFC 9457 problem details: every error leaves a component as
//! `application/problem+json` with a stable `code`, a Chinese `title` and an
//! English `detail`, and, for validation, the list of fields concerned.

use crate::Response;
use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};

/// One field that was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldIssue {
    /// JSON path, for example `roster[16].id_number`.
    pub field: String,
    /// What is wrong, in English. Never repeats the value.
    pub detail: String,
    /// Rule id, when a rule is concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// A problem details response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI naming the problem type (`urn:problem:<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Chinese title for people.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// English detail.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// Fields concerned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldIssue>,
    /// Further members (a state, a limit).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Response headers the problem needs (`Allow` on a 405, `Retry-After`).
    #[serde(skip)]
    pub headers: Vec<(http::HeaderName, String)>,
}

impl Problem {
    /// A problem with `status`, stable `code`, Chinese `title` and English `detail`.
    pub fn new(
        status: StatusCode,
        code: &str,
        title: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: format!("urn:problem:{code}"),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            errors: Vec::new(),
            extra: serde_json::Map::new(),
            headers: Vec::new(),
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: http::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds a field issue.
    pub fn field(mut self, field: impl Into<String>, detail: impl Into<String>) -> Self {
        self.errors.push(FieldIssue {
            field: field.into(),
            detail: detail.into(),
            rule: None,
        });
        self
    }

    /// Adds a member.
    pub fn with(mut self, name: &str, value: impl Serialize) -> Self {
        self.extra.insert(
            name.to_string(),
            serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
        );
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The response carrying this problem.
    pub fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = http::Response::new(Bytes::from(body));
        *res.status_mut() = self.status();
        for (name, value) in &self.headers {
            if let Ok(v) = http::HeaderValue::from_str(value) {
                res.headers_mut().insert(name.clone(), v);
            }
        }
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/problem+json"),
        );
        if self.status == 401 {
            res.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }

    /// 400 `malformed_json`.
    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "请求体不是有效的 JSON",
            detail,
        )
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "未认证或令牌无效",
            detail,
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "无权访问", detail)
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "资源不存在", detail)
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "不支持该请求方法",
            "this route does not accept that method",
        )
    }

    /// 409 `conflict`.
    pub fn conflict(code: &str, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, title, detail)
    }

    /// 413 `body_too_large`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "请求体过大",
            format!("request bodies are limited to {limit} bytes"),
        )
        .with("limit_bytes", limit)
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "请求体须为 JSON",
            "send the body as application/json",
        )
    }

    /// 422 `validation_failed` with field issues.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "请求内容未通过校验",
            detail,
        )
    }

    /// 422 for a query parameter the route does not take: named when it is
    /// shaped like a parameter name, `…` otherwise (a caller's text that
    /// could be personal data is never repeated).
    pub fn unknown_parameter(name: &str, expectation: &str) -> Self {
        let name = if crate::json::is_member_name(name) {
            name
        } else {
            "…"
        };
        Self::invalid(format!("unknown query parameter {name}")).field(name, expectation)
    }

    /// 500 `internal` (the detail never carries data).
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "服务器内部错误",
            detail,
        )
    }

    /// 503 `store_unavailable`.
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "存储暂不可用，请稍后重试",
            "the key-value store failed; retry later",
        )
    }
}

impl From<store::StoreError> for Problem {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::Contention => Problem::conflict(
                "contention",
                "并发冲突，请重试",
                "too many concurrent changes to one record; retry",
            ),
            store::StoreError::Corrupt(what) => {
                Problem::internal(format!("a stored {what} record could not be read"))
            }
            store::StoreError::Missing(what) => Problem::internal(format!(
                "a stored {what} record the audit log records is missing: run the audit verification"
            )),
            store::StoreError::Kv(store::KvError::Sealed(_)) => {
                Problem::internal("a stored record failed its integrity check")
            }
            store::StoreError::Kv(_) => Problem::store_unavailable(),
        }
    }
}

impl From<store::KvError> for Problem {
    fn from(e: store::KvError) -> Self {
        store::StoreError::from(e).into()
    }
}
