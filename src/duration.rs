//! Durations given on the command line or in the environment (`500ms`, `5s`, `2m`, `1h`,
//! `1h30m`), parsed by `jiff`'s friendly format; shared by the operator's and the simulator's
//! settings.

use std::time::Duration;

/// A duration that could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum DurationError {
    /// Not a duration at all.
    #[error("{input:?} is not a duration such as 500ms, 5s, 2m or 1h")]
    Syntax {
        /// What was given.
        input: String,
        /// Why jiff refused it.
        #[source]
        source: jiff::Error,
    },
    /// A duration below zero.
    #[error("{input:?} is negative")]
    Negative {
        /// What was given.
        input: String,
    },
}

/// Parses a non-negative duration in jiff's friendly format (`500ms`, `5s`, `2m`, `1h`,
/// `1h30m`, `1.5s`; ISO 8601 `PT5S` too). A bare number has no unit and is refused.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let input = s.trim();
    let signed: jiff::SignedDuration = input.parse().map_err(|source| DurationError::Syntax {
        input: input.to_owned(),
        source,
    })?;
    Duration::try_from(signed).map_err(|_| DurationError::Negative {
        input: input.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_durations_parse() {
        for (text, want) in [
            ("500ms", Duration::from_millis(500)),
            ("5s", Duration::from_secs(5)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1h30m", Duration::from_secs(5400)),
            ("0s", Duration::ZERO),
            (" 30s ", Duration::from_secs(30)),
            ("PT5S", Duration::from_secs(5)),
        ] {
            assert_eq!(parse_duration(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn bad_durations_say_what_is_wrong() {
        for text in ["", "3", "3 weeks", "5 parsecs", "s"] {
            let e = parse_duration(text).unwrap_err();
            assert!(matches!(e, DurationError::Syntax { .. }), "{text}: {e:?}");
            assert!(e.to_string().contains("is not a duration"), "{e}");
            assert!(std::error::Error::source(&e).is_some(), "{text}");
        }
        assert!(matches!(parse_duration("-5s"), Err(DurationError::Negative { .. })));
    }
}
