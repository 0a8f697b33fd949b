//! Unit tests of `client`.

use super::*;

#[test]
fn interpret_success_and_errors() {
    assert!(interpret("A", 200, r#"{"Code":"Success","Data":[]}"#, None).is_ok());
    let e = interpret("A", 200, r#"{"Code":"InternalError","Message":"boom"}"#, None).unwrap_err();
    assert_eq!(e.code.as_deref(), Some("InternalError"));
    let e = interpret(
        "A",
        409,
        r#"{"Code":"ResourceInUse","Message":"busy","RequestId":"r1"}"#,
        None,
    )
    .unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(e.request_id.as_deref(), Some("r1"));
    let e = interpret("A", 502, "<html>bad gateway</html>", Some("h1".into())).unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(e.request_id.as_deref(), Some("h1"));
    let e = interpret("A", 200, "not json", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Decode);
    let e = interpret("A", 404, r#"{"Code":"ResourceNotFound","Message":"gone"}"#, None).unwrap_err();
    assert!(e.is_not_found());
}

#[test]
fn client_debug_hides_the_secret() {
    let c = CdsClient::new(
        ClientConfig::default(),
        Credentials::new("AKID", "very-secret-value"),
        rate_limiter(10.0, 10),
    )
    .unwrap();
    let s = format!("{c:?}");
    assert!(s.contains("AKID") && !s.contains("very-secret-value"), "{s}");
    assert_eq!(c.base_url(), "https://cdsapi.capitalonline.net/redis/");
}
