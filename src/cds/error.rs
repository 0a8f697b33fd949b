//! The one error type of CDS calls, and whether retrying can help (`cds-redis-api.md` §3.2).

use std::time::Duration;

/// Codes the cloud (or the Terraform provider's list) uses for throttling.
const THROTTLING_CODES: [&str; 3] = ["RequestLimitExceeded", "Throttling", "ThrottlingException"];
/// Server-side codes that mean "try again later" even on a 4xx status.
const BUSY_CODES: [&str; 5] = [
    "ResourceInUse",
    "ResourceBusy",
    "ResourceUnavailable",
    "ResourceInsufficient",
    "FailedOperation",
];
/// Server-side failure codes (HTTP 500 in the docs): retryable, whatever HTTP status carried them.
const SERVER_CODES: [&str; 3] = ["InternalError", "CreateOrderExcept", "TradeUnknownError"];
/// The documented 4xx codes (`cds-redis-api.md` §3.2): the cloud looked at the request and
/// refused it, so nothing was done.
const DOCUMENTED_REFUSALS: [&str; 6] = [
    "ArgMissing",
    "InvalidParameter",
    "BadArgs",
    "UnsupportedOperation",
    "ResourceNotFound",
    "ResourceInUse",
];
/// Authentication codes (undocumented for CDS; those its gateway and the simulator use): the
/// request was refused before it reached the service.
const AUTH_CODES: [&str; 7] = [
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "RequestExpired",
    "SignatureNonceUsed",
    "IncompleteSignature",
    "AuthFailure",
    "MissingParameter",
];
/// Longest message kept from a response; the rest is cut.
const MAX_MESSAGE_LEN: usize = 300;

/// What went wrong with a CDS call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The cloud answered with an error `Code` (or a non-200 status).
    Api,
    /// No answer in time.
    Timeout,
    /// The connection failed (refused, reset, TLS, DNS).
    Connect,
    /// The answer could not be understood.
    Decode,
    /// The operator's own rate limiter refused to wait any longer.
    RateLimited,
    /// The request could not be built (bad endpoint, missing credentials).
    Config,
    /// Not sent: the process lost its leader lease (see `SendGate`).
    Fenced,
}

/// A failed CDS call: which action, what the cloud said, and whether to retry.
///
/// The message is sanitised: it never holds a signed URL, a signature, an access key secret or a
/// password, so it may go into conditions, events and logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{action}: {}", self.describe())]
pub struct CdsError {
    /// The action called, e.g. `CreateDBInstance`.
    pub action: String,
    /// The kind of failure.
    pub kind: ErrorKind,
    /// HTTP status, when the cloud answered.
    pub http_status: Option<u16>,
    /// The cloud's error `Code`, when it sent one.
    pub code: Option<String>,
    /// A sanitised, shortened message.
    pub message: String,
    /// The request id, when the cloud sent one.
    pub request_id: Option<String>,
}

impl CdsError {
    /// An error answer of the cloud.
    pub fn api(
        action: &str,
        http_status: u16,
        code: Option<String>,
        message: &str,
        request_id: Option<String>,
    ) -> Self {
        Self {
            action: action.to_owned(),
            kind: ErrorKind::Api,
            http_status: Some(http_status),
            code: code.filter(|c| !c.is_empty()),
            message: sanitise(message),
            request_id: request_id.filter(|r| !r.is_empty()),
        }
    }

    /// A failure without an answer from the cloud.
    pub fn other(action: &str, kind: ErrorKind, message: &str) -> Self {
        Self {
            action: action.to_owned(),
            kind,
            http_status: None,
            code: None,
            message: sanitise(message),
            request_id: None,
        }
    }

    /// A transport error of `reqwest`, with the URL (and so the signature) removed.
    pub fn transport(action: &str, err: reqwest::Error) -> Self {
        let kind = if err.is_timeout() {
            ErrorKind::Timeout
        } else if err.is_decode() || err.is_body() {
            ErrorKind::Decode
        } else if err.is_builder() {
            ErrorKind::Config
        } else {
            ErrorKind::Connect
        };
        let err = err.without_url();
        // `reqwest` puts the interesting part in the source chain.
        let mut msg = err.to_string();
        let mut src = std::error::Error::source(&err);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        Self::other(action, kind, &msg)
    }

    /// Whether retrying the same request later can succeed: 5xx, 409 `ResourceInUse` and the
    /// other busy codes, throttling, timeouts, connection failures and unreadable answers.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Decode | ErrorKind::RateLimited => true,
            // Retrying cannot help a process that lost its lease.
            ErrorKind::Config | ErrorKind::Fenced => false,
            ErrorKind::Api => {
                self.is_throttled()
                    || self.http_status.is_some_and(|s| s >= 500)
                    // A success status without a code is an answer we cannot read, as a Decode.
                    || (self.code.is_none() && self.http_status == Some(200))
                    || self
                        .code
                        .as_deref()
                        .is_some_and(|c| BUSY_CODES.contains(&c) || SERVER_CODES.contains(&c))
            }
        }
    }

    /// Whether retrying cannot help until something changes (argument and auth errors).
    pub fn is_terminal(&self) -> bool {
        !self.is_retryable()
    }

    /// Whether the cloud says the resource does not exist (`ResourceNotFound`). A bare HTTP 404
    /// without that code is not taken for it: a wrong endpoint answers 404 too.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::Api && self.code.as_deref() == Some("ResourceNotFound")
    }

    /// Whether the request certainly was not carried out: never sent (our own rate limiter, a
    /// request that could not be built, a refused connection), or refused by the cloud with a
    /// documented argument error, an authentication error or throttling. Only these clear a
    /// create's intent marker (contract, Ownership rule 6: unknown is not "no").
    pub fn is_definite_rejection(&self) -> bool {
        match self.kind {
            ErrorKind::RateLimited | ErrorKind::Config | ErrorKind::Fenced => true,
            ErrorKind::Connect => self.message.contains("refused"),
            ErrorKind::Timeout | ErrorKind::Decode => false,
            ErrorKind::Api => {
                // Vendor SDKs carry error codes in HTTP 200 answers too; a 5xx is never definite.
                let answered = self.http_status.is_some_and(|s| s < 500);
                let code = self.code.as_deref().unwrap_or_default();
                self.is_throttled() || (answered && (DOCUMENTED_REFUSALS.contains(&code) || AUTH_CODES.contains(&code)))
            }
        }
    }

    /// Whether the cloud says another task holds the resource (HTTP 409, `ResourceInUse` and
    /// the other busy codes).
    pub fn is_busy(&self) -> bool {
        self.kind == ErrorKind::Api
            && (self.http_status == Some(409) || self.code.as_deref().is_some_and(|c| BUSY_CODES.contains(&c)))
    }

    /// Whether the cloud or our own limiter throttled the call.
    pub fn is_throttled(&self) -> bool {
        self.kind == ErrorKind::RateLimited
            || self.http_status == Some(429)
            || self.code.as_deref().is_some_and(|c| THROTTLING_CODES.contains(&c))
    }

    /// Whether a write with this error may have been carried out although no success answer
    /// came back: everything that is not a definite rejection (a timeout, a reset connection, a
    /// 5xx, an undocumented code such as `TradeUnknownError`, a 200 without `Code`).
    pub fn outcome_unknown(&self) -> bool {
        !self.is_definite_rejection()
    }

    /// A short label for metrics: the code, or the kind.
    pub fn metric_label(&self) -> String {
        match (&self.code, &self.kind) {
            (Some(code), _) => code.clone(),
            (None, ErrorKind::Api) => format!("http_{}", self.http_status.unwrap_or(0)),
            (None, kind) => format!("{kind:?}").to_lowercase(),
        }
    }

    /// A suggested wait before retrying, for throttling answers.
    pub fn retry_after(&self) -> Option<Duration> {
        self.is_throttled().then_some(Duration::from_secs(2))
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(status) = self.http_status {
            s.push_str(&format!("HTTP {status} "));
        }
        if let Some(code) = &self.code {
            s.push_str(code);
            s.push(' ');
        } else if self.kind != ErrorKind::Api {
            s.push_str(&format!("{:?} ", self.kind).to_lowercase());
        }
        s.push_str(&self.message);
        if let Some(id) = &self.request_id {
            s.push_str(&format!(" (request id {id})"));
        }
        s.trim_end().to_owned()
    }
}

/// Keeps a message safe to show: one line, printable, short, and with anything that looks like
/// a query string's signature or secret removed.
pub fn sanitise(message: &str) -> String {
    let mut out: String = message.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    for marker in ["Signature=", "AccessKeySecret=", "Password=", "password="] {
        while let Some(i) = out.find(marker) {
            let end = out[i..].find(['&', ' ', '"', ',']).map_or(out.len(), |e| i + e);
            out.replace_range(i..end, "[redacted]");
        }
    }
    // A JSON body echoed in a message: `"Password": "…"` (any case, any spacing).
    let mut from = 0;
    while let Some(found) = out[from..].to_ascii_lowercase().find("password\"") {
        let key_end = from + found + "password\"".len();
        let rest = &out[key_end..];
        let Some(colon) = rest
            .find(|c: char| !c.is_whitespace())
            .filter(|&i| rest[i..].starts_with(':'))
        else {
            from = key_end;
            continue;
        };
        let after_colon = key_end + colon + 1;
        let value_start = out[after_colon..]
            .find(|c: char| !c.is_whitespace())
            .map_or(out.len(), |i| after_colon + i);
        let value_end = if out[value_start..].starts_with('"') {
            // The closing quote, skipping escaped ones.
            let bytes = out.as_bytes();
            let mut i = value_start + 1;
            while i < bytes.len() && !(bytes[i] == b'"' && bytes[i - 1] != b'\\') {
                i += 1;
            }
            (i + 1).min(out.len())
        } else {
            out[value_start..]
                .find([',', '}', ' '])
                .map_or(out.len(), |e| value_start + e)
        };
        out.replace_range(value_start..value_end, "\"[redacted]\"");
        from = value_start + "\"[redacted]\"".len();
    }
    if out.chars().count() > MAX_MESSAGE_LEN {
        out = out.chars().take(MAX_MESSAGE_LEN).collect::<String>() + "…";
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> CdsError {
        CdsError::api("CreateDBInstance", status, Some(code.into()), "m", None)
    }

    #[test]
    fn classification_follows_the_documented_codes() {
        for (status, code) in [
            (400, "ArgMissing"),
            (400, "InvalidParameter"),
            (400, "BadArgs"),
            (400, "UnsupportedOperation"),
            (403, "SignatureDoesNotMatch"),
            (401, "InvalidAccessKeyId"),
        ] {
            assert!(api(status, code).is_terminal(), "{code}");
        }
        for (status, code) in [
            (500, "InternalError"),
            (500, "CreateOrderExcept"),
            (409, "ResourceInUse"),
            (429, "RequestLimitExceeded"),
            (400, "RequestLimitExceeded"),
            (503, "Unavailable"),
        ] {
            assert!(api(status, code).is_retryable(), "{code}");
        }
        assert!(api(404, "ResourceNotFound").is_not_found());
        assert!(api(404, "ResourceNotFound").is_terminal());
        assert!(!api(400, "InvalidParameter").is_not_found());
        for kind in [
            ErrorKind::Timeout,
            ErrorKind::Connect,
            ErrorKind::Decode,
            ErrorKind::RateLimited,
        ] {
            assert!(
                CdsError::other("DescribeDBInstances", kind.clone(), "x").is_retryable(),
                "{kind:?}"
            );
        }
        assert!(CdsError::other("DescribeDBInstances", ErrorKind::Config, "x").is_terminal());
        assert!(api(429, "RequestLimitExceeded").is_throttled());
        // The SDK's way: HTTP 200 with an error Code. Server codes stay retryable, and a write
        // answered so has an unknown outcome.
        assert!(api(200, "InternalError").is_retryable() && api(200, "InternalError").outcome_unknown());
        assert!(api(200, "CreateOrderExcept").is_retryable());
        assert!(api(200, "InvalidParameter").is_terminal() && !api(200, "InvalidParameter").outcome_unknown());
    }

    #[test]
    fn unknown_outcome_for_writes() {
        assert!(api(500, "InternalError").outcome_unknown());
        assert!(!api(400, "InvalidParameter").outcome_unknown());
        assert!(!api(409, "ResourceInUse").outcome_unknown());
        assert!(CdsError::other("CreateDBInstance", ErrorKind::Timeout, "t").outcome_unknown());
        assert!(!CdsError::other("CreateDBInstance", ErrorKind::Connect, "connection refused").outcome_unknown());
        // Unknown is not "no" (Ownership rule 6): undocumented codes and a 404 without a code.
        for unknown in [
            api(400, "TradeUnknownError"),
            api(400, "FailedOperation"),
            CdsError::api("CreateDBInstance", 404, None, "not found", None),
            CdsError::api("CreateDBInstance", 200, None, "", None),
            CdsError::other("CreateDBInstance", ErrorKind::Connect, "connection reset by peer"),
        ] {
            assert!(unknown.outcome_unknown(), "{unknown}");
        }
        assert!(!CdsError::api("DeleteDBInstance", 404, None, "", None).is_not_found());
        for definite in [
            api(403, "SignatureDoesNotMatch"),
            api(429, "RequestLimitExceeded"),
            api(409, "ResourceInUse"),
        ] {
            assert!(definite.is_definite_rejection(), "{definite}");
        }
    }

    #[test]
    fn messages_are_sanitised() {
        let e = CdsError::api(
            "DescribeDBInstances",
            400,
            Some("InvalidParameter".into()),
            "bad request https://h/redis/?Action=X&Signature=abc%2Fdef&Timestamp=1 with\nPassword=hunter2 here",
            Some("req-1".into()),
        );
        let shown = e.to_string();
        assert!(
            !shown.contains("abc%2Fdef") && !shown.contains("hunter2") && !shown.contains('\n'),
            "{shown}"
        );
        assert_eq!(
            shown,
            "DescribeDBInstances: HTTP 400 InvalidParameter bad request https://h/redis/?Action=X&[redacted]&Timestamp=1 with [redacted] here (request id req-1)"
        );
        assert!(sanitise(&"x".repeat(1000)).chars().count() <= MAX_MESSAGE_LEN + 1);
        // A JSON request body echoed back by the server.
        for echoed in [
            r#"bad body {"InstanceName":"n","Password":"hunter2","Amount":1}"#,
            r#"bad body {"password" : "hun\"ter2", "x": 1}"#,
        ] {
            let shown = sanitise(echoed);
            assert!(!shown.contains("hunter2") && !shown.contains("ter2"), "{shown}");
            assert!(shown.contains(r#""[redacted]""#), "{shown}");
        }
    }

    #[test]
    fn metric_labels() {
        assert_eq!(api(500, "InternalError").metric_label(), "InternalError");
        assert_eq!(CdsError::api("A", 502, None, "", None).metric_label(), "http_502");
        assert_eq!(CdsError::other("A", ErrorKind::Timeout, "").metric_label(), "timeout");
    }
}
