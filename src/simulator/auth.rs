//! The simulator's side of request signing: checks a request exactly as `cds-redis-api.md` §2
//! describes, and rejects it with a documented code when anything is off.
//!
//! | problem | HTTP | Code |
//! | --- | --- | --- |
//! | a common parameter is missing | 400 | `ArgMissing` |
//! | a common parameter is malformed (method, version, timestamp, duplicate key, bad escape) | 400 | `InvalidParameter` |
//! | unknown `AccessKeyId` | 401 | `InvalidAccessKeyId` |
//! | the signature does not match | 403 | `SignatureDoesNotMatch` |
//! | `Timestamp` outside the allowed skew | 403 | `RequestExpired` |
//! | `SignatureNonce` seen before (within the skew window) | 403 | `SignatureNonceUsed` |
//!
//! The real cloud's auth codes are not documented; these follow common cloud practice.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use secrecy::SecretString;

use super::ApiError;
use crate::cds::signer::{self, Method};
use crate::encoding::percent_decode;

/// Common parameters every request must carry (besides `Signature`).
const COMMON: [&str; 7] = [
    "Action",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
    "Version",
];

/// A request whose signature checked out.
#[derive(Debug)]
pub struct Verified {
    /// The action asked for.
    pub action: String,
    /// The access key that signed it.
    pub access_key_id: String,
    /// The action parameters of the query (common ones and `Signature` removed).
    pub params: BTreeMap<String, String>,
}

/// Nonces seen recently, forgotten once their timestamp is outside the skew window.
#[derive(Default)]
pub struct NonceCache {
    seen: HashMap<String, i64>,
}

impl NonceCache {
    fn check_and_remember(&mut self, nonce: &str, ts_ms: i64, now_ms: i64, window_ms: i64) -> bool {
        if self.seen.len() > 10_000 {
            self.seen.retain(|_, t| (now_ms - *t).abs() <= window_ms);
        }
        self.seen.insert(nonce.to_owned(), ts_ms).is_none()
    }
}

/// Splits a raw query into decoded pairs (`+` decodes as a space, as servers do).
pub fn parse_query(raw: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || {
            ApiError::bad_request(
                "InvalidParameter",
                format!("malformed query parameter {:?}", truncate(pair)),
            )
        };
        let k = percent_decode(k, true).ok_or_else(bad)?;
        let v = percent_decode(v, true).ok_or_else(bad)?;
        if out.insert(k.clone(), v).is_some() {
            return Err(ApiError::bad_request(
                "InvalidParameter",
                format!("parameter {k} is given twice"),
            ));
        }
    }
    Ok(out)
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Checks `query` (already decoded) of a `method` request against `keys`, at `now`, in the
/// cloud's order: common parameters, key, signature, freshness, nonce.
pub fn verify(
    method: Method,
    mut query: BTreeMap<String, String>,
    keys: &HashMap<String, SecretString>,
    now: jiff::Timestamp,
    skew: Duration,
    nonces: &mut NonceCache,
) -> Result<Verified, ApiError> {
    let ts = check_common(&query)?;
    let secret = keys
        .get(&query["AccessKeyId"])
        .ok_or_else(|| ApiError::new(401, "InvalidAccessKeyId", "the AccessKeyId is not known"))?;
    let given = query.remove("Signature").unwrap_or_default();
    let expected = signer::signature(
        secret,
        &signer::string_to_sign(method, &signer::canonical_query(&query)),
    );
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::new(
            403,
            "SignatureDoesNotMatch",
            "the request signature does not match",
        ));
    }
    let (ts_ms, now_ms) = (ts.as_millisecond(), now.as_millisecond());
    let window_ms = skew.as_millis() as i64;
    if (now_ms - ts_ms).abs() > window_ms {
        return Err(ApiError::new(
            403,
            "RequestExpired",
            format!(
                "Timestamp is more than {}s away from the server's clock",
                skew.as_secs()
            ),
        ));
    }
    if !nonces.check_and_remember(&query["SignatureNonce"], ts_ms, now_ms, window_ms) {
        return Err(ApiError::new(
            403,
            "SignatureNonceUsed",
            "SignatureNonce was already used",
        ));
    }
    let action = query["Action"].clone();
    let access_key_id = query["AccessKeyId"].clone();
    for name in COMMON {
        query.remove(name);
    }
    Ok(Verified {
        action,
        access_key_id,
        params: query,
    })
}

/// The common parameters are all there, with the values the cloud accepts; returns the
/// request's timestamp.
fn check_common(query: &BTreeMap<String, String>) -> Result<jiff::Timestamp, ApiError> {
    for name in COMMON.iter().chain(["Signature"].iter()) {
        if query.get(*name).is_none_or(|v| v.is_empty()) {
            return Err(ApiError::bad_request(
                "ArgMissing",
                format!("common parameter {name} is missing"),
            ));
        }
    }
    let expect = [
        (
            "SignatureMethod",
            signer::SIGNATURE_METHOD,
            "SignatureMethod must be HMAC-SHA1",
        ),
        (
            "SignatureVersion",
            signer::SIGNATURE_VERSION,
            "SignatureVersion must be 1.0",
        ),
        ("Version", signer::API_VERSION, "Version must be 2019-08-08"),
    ];
    for (name, value, problem) in expect {
        if query[name] != value {
            return Err(ApiError::bad_request("InvalidParameter", problem));
        }
    }
    parse_timestamp(&query["Timestamp"])
        .ok_or_else(|| ApiError::bad_request("InvalidParameter", "Timestamp must look like 2024-01-01T00:00:00Z"))
}

fn parse_timestamp(s: &str) -> Option<jiff::Timestamp> {
    // Exactly YYYY-MM-DDTHH:MM:SSZ: no fractional seconds, no offset other than Z.
    let shape = s.len() == 20
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    s.parse().ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cds::signer::{Credentials, sign};
    use crate::encoding::percent_encode;

    const NONCE: &str = "00000000-0000-0000-0000-000000000000";

    fn keys() -> HashMap<String, SecretString> {
        HashMap::from([("testAccessKeyId".to_owned(), SecretString::from("testSecretKey"))])
    }

    fn at() -> jiff::Timestamp {
        "2024-01-01T00:00:00Z".parse().unwrap()
    }

    fn check(method: Method, query: &str) -> Result<Verified, ApiError> {
        verify(
            method,
            parse_query(query)?,
            &keys(),
            at(),
            Duration::from_secs(900),
            &mut NonceCache::default(),
        )
    }

    fn common(action: &str) -> String {
        format!(
            "AccessKeyId=testAccessKeyId&Action={action}&SignatureMethod=HMAC-SHA1&SignatureNonce={NONCE}&SignatureVersion=1.0&Timestamp=2024-01-01T00%3A00%3A00Z&Version=2019-08-08"
        )
    }

    #[test]
    fn the_three_vectors_verify() {
        let a = format!(
            "{}&InstanceUuid=86b9ded8-3f11-4bea-9232-a571a6de0fbf&Signature=qzWi2OgZLBVYw7iG%2FuloUg1YrP0%3D",
            common("DescribeDBInstances")
        );
        let v = check(Method::Get, &a).unwrap();
        assert_eq!(v.action, "DescribeDBInstances");
        assert_eq!(v.params["InstanceUuid"], "86b9ded8-3f11-4bea-9232-a571a6de0fbf");
        let b = format!(
            "{}&Signature=2LhNtG1Q2Vkbu%2BIX0rR76gUuRME%3D",
            common("CreateDBInstance")
        );
        assert!(check(Method::Post, &b).unwrap().params.is_empty());
        let c = format!(
            "{}&InstanceName=my%20redis%2F~%2A&Signature=R4AL4pNHC899XEmKiicKbFrQmyU%3D",
            common("DescribeDBInstances")
        );
        assert_eq!(check(Method::Get, &c).unwrap().params["InstanceName"], "my redis/~*");
    }

    #[test]
    fn refusals() {
        let code = |r: Result<Verified, ApiError>| r.unwrap_err().code;
        // Wrong secret.
        let q = sign(
            &Credentials::new("testAccessKeyId", "wrong"),
            Method::Get,
            "DescribeRegins",
            &[],
            at(),
            NONCE,
        )
        .query;
        assert_eq!(code(check(Method::Get, &q)), "SignatureDoesNotMatch");
        // A changed parameter.
        let q = sign(
            &Credentials::new("testAccessKeyId", "testSecretKey"),
            Method::Get,
            "DescribeDBInstances",
            &[("InstanceUuid", "a".into())],
            at(),
            NONCE,
        )
        .query;
        assert!(check(Method::Get, &q).is_ok());
        assert_eq!(
            code(check(Method::Get, &q.replace("InstanceUuid=a", "InstanceUuid=b"))),
            "SignatureDoesNotMatch"
        );
        // The method is signed too.
        assert_eq!(code(check(Method::Post, &q)), "SignatureDoesNotMatch");
        // Spaces signed as `+` (the bug of two Go SDKs): the server decodes `+` as a space and
        // computes the documented %20 form, so the signature differs.
        let mut p = signer::common_params("DescribeDBInstances", "testAccessKeyId", "2024-01-01T00:00:00Z", NONCE);
        p.insert("InstanceName".into(), "my redis".into());
        let plus_cqs = signer::canonical_query(&p).replace("%20", "+");
        let sig = signer::signature(
            &SecretString::from("testSecretKey"),
            &signer::string_to_sign(Method::Get, &plus_cqs),
        );
        let q = format!("{plus_cqs}&Signature={}", percent_encode(&sig));
        assert_eq!(code(check(Method::Get, &q)), "SignatureDoesNotMatch");
        // Unknown key, missing and malformed parameters.
        let q = sign(
            &Credentials::new("nobody", "x"),
            Method::Get,
            "DescribeRegins",
            &[],
            at(),
            NONCE,
        )
        .query;
        assert_eq!(code(check(Method::Get, &q)), "InvalidAccessKeyId");
        let good = sign(
            &Credentials::new("testAccessKeyId", "testSecretKey"),
            Method::Get,
            "DescribeRegins",
            &[],
            at(),
            NONCE,
        )
        .query;
        assert_eq!(
            code(check(Method::Get, &good.replace("SignatureNonce=", "X="))),
            "ArgMissing"
        );
        assert_eq!(
            code(check(Method::Get, &good.replace("HMAC-SHA1", "HMAC-SHA256"))),
            "InvalidParameter"
        );
        assert_eq!(
            code(check(
                Method::Get,
                &good.replace("2024-01-01T00%3A00%3A00Z", "2024-01-01")
            )),
            "InvalidParameter"
        );
        assert_eq!(
            code(check(Method::Get, &format!("{good}&Action=X"))),
            "InvalidParameter"
        );
        assert_eq!(code(check(Method::Get, "Action=%ZZ")), "InvalidParameter");
    }

    #[test]
    fn stale_timestamps_and_replayed_nonces_are_refused() {
        let creds = Credentials::new("testAccessKeyId", "testSecretKey");
        let q = sign(&creds, Method::Get, "DescribeRegins", &[], at(), NONCE).query;
        let later = at().checked_add(jiff::SignedDuration::from_secs(901)).unwrap();
        let r = verify(
            Method::Get,
            parse_query(&q).unwrap(),
            &keys(),
            later,
            Duration::from_secs(900),
            &mut NonceCache::default(),
        );
        assert_eq!(r.unwrap_err().code, "RequestExpired");
        let mut nonces = NonceCache::default();
        assert!(
            verify(
                Method::Get,
                parse_query(&q).unwrap(),
                &keys(),
                at(),
                Duration::from_secs(900),
                &mut nonces
            )
            .is_ok()
        );
        let r = verify(
            Method::Get,
            parse_query(&q).unwrap(),
            &keys(),
            at(),
            Duration::from_secs(900),
            &mut nonces,
        );
        assert_eq!(r.unwrap_err().code, "SignatureNonceUsed");
    }
}
