//! Request signing, signature version 1.0 (HMAC-SHA1), as `cds-redis-api.md` §2 describes.
//!
//! Pure: the clock and the nonce are inputs. Each stage (canonical query, string to sign,
//! signature) is a function of its own so tests can check them separately against §2.5.

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;

use crate::encoding::percent_encode;

/// `SignatureMethod` value.
pub const SIGNATURE_METHOD: &str = "HMAC-SHA1";
/// `SignatureVersion` value.
pub const SIGNATURE_VERSION: &str = "1.0";
/// `Version` value of the Redis API.
pub const API_VERSION: &str = "2019-08-08";

/// HTTP method of a request; part of the string to sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Action parameters are in the (signed) query.
    Get,
    /// Action parameters are a JSON body (not signed).
    Post,
}

impl Method {
    /// The uppercase verb.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// An access key pair. The secret is redacted in `Debug`.
#[derive(Clone)]
pub struct Credentials {
    /// `AccessKeyId`.
    pub access_key_id: String,
    /// The access key secret, the HMAC key.
    pub access_key_secret: SecretString,
}

impl Credentials {
    /// A key pair from its two parts.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: SecretString::from(access_key_secret.into()),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"***")
            .finish()
    }
}

/// Step 1-4: the canonical query string of the signed parameters (`Signature` excluded, empty
/// values dropped), keys sorted by byte order, keys and values percent-encoded.
pub fn canonical_query(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(k, v)| !v.is_empty() && k.as_str() != "Signature")
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Step 5: `METHOD&%2F&enc(CQS)`.
pub fn string_to_sign(method: Method, canonical_query: &str) -> String {
    format!("{}&%2F&{}", method.as_str(), percent_encode(canonical_query))
}

/// Step 6: `Base64(HMAC-SHA1(secret, string_to_sign))`, the raw secret as key (no `&`).
pub fn signature(secret: &SecretString, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC accepts any key length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The common parameters of §2.1 for `action`, without `Signature`.
pub fn common_params(action: &str, access_key_id: &str, timestamp: &str, nonce: &str) -> BTreeMap<String, String> {
    [
        ("Action", action),
        ("AccessKeyId", access_key_id),
        ("SignatureMethod", SIGNATURE_METHOD),
        ("SignatureVersion", SIGNATURE_VERSION),
        ("SignatureNonce", nonce),
        ("Timestamp", timestamp),
        ("Version", API_VERSION),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Formats a Unix time as the `Timestamp` parameter, `YYYY-MM-DDTHH:MM:SSZ` in UTC.
pub fn format_timestamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A signed request's query string, ready to append after `?`.
pub struct SignedQuery {
    /// The full query, `Signature` included. Holds the signature: never log it.
    pub query: String,
}

impl std::fmt::Debug for SignedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignedQuery(***)")
    }
}

/// Signs a request: `action_params` are the GET parameters (pass none for POST, whose body is
/// not signed); `timestamp` and `nonce` are inputs so the result is deterministic.
pub fn sign(
    credentials: &Credentials,
    method: Method,
    action: &str,
    action_params: &[(&str, String)],
    timestamp: jiff::Timestamp,
    nonce: &str,
) -> SignedQuery {
    let mut params = common_params(action, &credentials.access_key_id, &format_timestamp(timestamp), nonce);
    for (k, v) in action_params {
        params.insert((*k).to_owned(), v.clone());
    }
    let cqs = canonical_query(&params);
    let sig = signature(&credentials.access_key_secret, &string_to_sign(method, &cqs));
    SignedQuery {
        query: format!("{cqs}&Signature={}", percent_encode(&sig)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "00000000-0000-0000-0000-000000000000";

    fn creds() -> Credentials {
        Credentials::new("testAccessKeyId", "testSecretKey")
    }

    fn ts() -> jiff::Timestamp {
        "2024-01-01T00:00:00Z".parse().unwrap()
    }

    fn vector_params(action: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut p = common_params(action, "testAccessKeyId", &format_timestamp(ts()), NONCE);
        for (k, v) in extra {
            p.insert((*k).into(), (*v).into());
        }
        p
    }

    #[test]
    fn vector_a_get_with_instance_uuid() {
        let p = vector_params(
            "DescribeDBInstances",
            &[("InstanceUuid", "86b9ded8-3f11-4bea-9232-a571a6de0fbf")],
        );
        let cqs = canonical_query(&p);
        assert_eq!(
            cqs,
            "AccessKeyId=testAccessKeyId&Action=DescribeDBInstances&InstanceUuid=86b9ded8-3f11-4bea-9232-a571a6de0fbf&SignatureMethod=HMAC-SHA1&SignatureNonce=00000000-0000-0000-0000-000000000000&SignatureVersion=1.0&Timestamp=2024-01-01T00%3A00%3A00Z&Version=2019-08-08"
        );
        let sts = string_to_sign(Method::Get, &cqs);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3DtestAccessKeyId%26Action%3DDescribeDBInstances%26InstanceUuid%3D86b9ded8-3f11-4bea-9232-a571a6de0fbf%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D00000000-0000-0000-0000-000000000000%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-01T00%253A00%253A00Z%26Version%3D2019-08-08"
        );
        assert_eq!(
            signature(&creds().access_key_secret, &sts),
            "qzWi2OgZLBVYw7iG/uloUg1YrP0="
        );
        // The secret with `&` appended (the old doc text) gives another signature.
        assert_eq!(
            signature(&SecretString::from("testSecretKey&"), &sts),
            "RwWdVzdsREzth7WPcz6FHUmGrNw="
        );
        let signed = sign(
            &creds(),
            Method::Get,
            "DescribeDBInstances",
            &[("InstanceUuid", "86b9ded8-3f11-4bea-9232-a571a6de0fbf".into())],
            ts(),
            NONCE,
        );
        assert!(
            signed.query.ends_with("&Signature=qzWi2OgZLBVYw7iG%2FuloUg1YrP0%3D"),
            "{}",
            signed.query
        );
    }

    #[test]
    fn vector_b_post_signs_only_common_parameters() {
        let cqs = canonical_query(&vector_params("CreateDBInstance", &[]));
        let sts = string_to_sign(Method::Post, &cqs);
        assert!(sts.starts_with("POST&%2F&AccessKeyId%3DtestAccessKeyId%26Action%3DCreateDBInstance%26"));
        assert_eq!(
            signature(&creds().access_key_secret, &sts),
            "2LhNtG1Q2Vkbu+IX0rR76gUuRME="
        );
    }

    #[test]
    fn vector_c_encoding_rules() {
        let cqs = canonical_query(&vector_params(
            "DescribeDBInstances",
            &[("InstanceName", "my redis/~*")],
        ));
        assert!(cqs.contains("&InstanceName=my%20redis%2F~%2A&"), "{cqs}");
        let sts = string_to_sign(Method::Get, &cqs);
        assert!(sts.contains("InstanceName%3Dmy%2520redis%252F~%252A"), "{sts}");
        assert_eq!(
            signature(&creds().access_key_secret, &sts),
            "R4AL4pNHC899XEmKiicKbFrQmyU="
        );
    }

    #[test]
    fn empty_values_and_signature_are_not_signed() {
        let mut p = vector_params("DescribeDBInstances", &[("InstanceName", "")]);
        p.insert("Signature".into(), "x".into());
        assert!(!canonical_query(&p).contains("InstanceName"));
        assert!(!canonical_query(&p).contains("Signature="));
    }

    #[test]
    fn uppercase_sorts_before_lowercase() {
        let p: BTreeMap<String, String> = [("InstanceName", "a"), ("IP", "1")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert_eq!(canonical_query(&p), "IP=1&InstanceName=a");
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let s = format!("{:?}", creds());
        assert!(!s.contains("testSecretKey"), "{s}");
        assert!(s.contains("testAccessKeyId"));
    }
}
