//! Percent-encoding, one way for the whole crate: RFC 3986's unreserved bytes
//! (`A-Z a-z 0-9 - _ . ~`) stay, every other byte becomes `%XY` with uppercase hex (a space is
//! `%20`, never `+`). That is what the CDS signature needs (`cds-redis-api.md` §2), what the
//! simulator checks, and what a password needs inside a `redis://` URI.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Every byte but RFC 3986's unreserved characters is escaped.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes `s` (UTF-8 bytes; unreserved bytes kept, hex digits uppercase).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, ESCAPED).to_string()
}

/// Decodes `%XY` escapes (and, leniently, `+` as a space when `plus_is_space`). `None` when an
/// escape is malformed (`%` not followed by two hex digits) or the bytes are not UTF-8.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    // The crate passes a malformed escape through as it is; a signed query must refuse it.
    let bytes = s.as_bytes();
    let malformed = s.match_indices('%').any(|(i, _)| {
        !bytes
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return None;
    }
    let s = if plus_is_space {
        Cow::Owned(s.replace('+', " "))
    } else {
        Cow::Borrowed(s)
    };
    percent_decode_str(&s).decode_utf8().ok().map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn encoding_examples() {
        assert_eq!(percent_encode(" "), "%20");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("~"), "~");
        assert_eq!(percent_encode("/"), "%2F");
        assert_eq!(percent_encode("+="), "%2B%3D");
        assert_eq!(percent_encode("北"), "%E5%8C%97");
        assert_eq!(percent_encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
    }

    #[test]
    fn decoding_examples() {
        assert_eq!(percent_decode("a%20b+c", true).as_deref(), Some("a b c"));
        assert_eq!(percent_decode("a%20b+c", false).as_deref(), Some("a b+c"));
        assert_eq!(percent_decode("%2B", true).as_deref(), Some("+"));
        assert_eq!(percent_decode("%e5%8c%97", false).as_deref(), Some("北"));
        for bad in ["%", "%4", "%G1", "%+1", "a%2", "%%41", "%FF"] {
            assert_eq!(percent_decode(bad, true), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn unreserved_characters_are_kept(s in "[A-Za-z0-9._~-]*") {
            prop_assert_eq!(percent_encode(&s), s);
        }

        #[test]
        fn output_uses_only_unreserved_and_uppercase_escapes(s in any::<String>()) {
            let e = percent_encode(&s);
            let ok = e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b));
            prop_assert!(ok, "{}", e);
            prop_assert!(!e.contains(' ') && !e.contains('+') && !e.contains('*'));
            // Hex digits of escapes are uppercase.
            for (i, _) in e.match_indices('%') {
                prop_assert!(e[i + 1..i + 3].bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
            }
        }

        #[test]
        fn encoding_round_trips(s in any::<String>()) {
            prop_assert_eq!(percent_decode(&percent_encode(&s), false), Some(s.clone()));
            prop_assert_eq!(percent_decode(&percent_encode(&s), true), Some(s));
        }

        #[test]
        fn every_reserved_ascii_byte_is_escaped(c in prop::char::range(' ', '~')) {
            let e = percent_encode(&c.to_string());
            if c.is_ascii_alphanumeric() || "-_.~".contains(c) {
                prop_assert_eq!(e, c.to_string());
            } else {
                prop_assert_eq!(e, format!("%{:02X}", c as u8));
            }
        }
    }
}
