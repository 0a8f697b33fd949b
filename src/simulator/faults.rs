//! Fault injection: error rates per action, added latency, lost write responses and visibility
//! lag. Set at start from flags and replaced at run time through the admin endpoint.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// Probabilities (0.0-1.0) of injected errors for one action, checked before the action runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorRates {
    /// HTTP 500 `InternalError`.
    pub internal_error: f64,
    /// HTTP 409 `ResourceInUse`.
    pub resource_in_use: f64,
    /// HTTP 429 `RequestLimitExceeded`.
    pub throttling: f64,
    /// HTTP 400 `InvalidParameter`: a refusal no lookup foresees (an account's quota or
    /// balance, in the real cloud), final.
    pub invalid_parameter: f64,
}

/// How a lost response looks to the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LostMode {
    /// The action is carried out, the caller gets HTTP 500 `InternalError`.
    #[default]
    ServerError,
    /// The action is carried out, the connection is closed without an answer.
    Drop,
    /// The action is carried out, the caller gets HTTP 400 with a code the documentation does
    /// not list (`TradeUnknownError`, which the vendor's Terraform provider retries).
    UndocumentedCode,
}

/// A lost-response fault of one write action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LostResponse {
    /// Probability (0.0-1.0) that a successful call's answer is lost.
    pub rate: f64,
    /// How it is lost.
    pub mode: LostMode,
}

/// Every fault in force. `*` as an action name applies to every action without its own entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Injected error rates by action.
    pub errors: BTreeMap<String, ErrorRates>,
    /// Latency added to every call, in milliseconds.
    pub latency_ms: u64,
    /// Lost responses by (write) action.
    pub lost_responses: BTreeMap<String, LostResponse>,
    /// A new instance appears in listings only this many milliseconds after its create.
    pub visibility_lag_ms: u64,
    /// An instance being deleted keeps its listed status (e.g. `RUNNING`) until it is gone,
    /// instead of `DELETING`: the cloud documents no status for it.
    pub hide_deleting_status: bool,
    /// Faults of one account only, by access key id: its error rates replace `errors` for its
    /// calls, its latency is added to `latencyMs` (one account throttled or slow, the others
    /// not).
    pub by_access_key: BTreeMap<String, AccountFaults>,
}

/// Faults of one account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountFaults {
    /// Injected error rates by action (`*`: every action without its own entry).
    pub errors: BTreeMap<String, ErrorRates>,
    /// Latency added to each of its calls, in milliseconds.
    pub latency_ms: u64,
}

/// An injected error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InjectedError {
    /// HTTP status.
    pub status: u16,
    /// CDS code.
    pub code: &'static str,
}

/// The faults in force and the seeded dice that decide them.
pub struct FaultInjector {
    /// The faults.
    pub faults: Faults,
    rng: StdRng,
    /// How many faults were injected, by kind.
    pub injected: BTreeMap<String, u64>,
}

impl FaultInjector {
    /// Faults decided by a generator seeded with `seed`.
    pub fn new(faults: Faults, seed: u64) -> Self {
        Self {
            faults,
            rng: StdRng::seed_from_u64(seed),
            injected: BTreeMap::new(),
        }
    }

    fn roll(&mut self, rate: f64) -> bool {
        rate > 0.0 && (rate >= 1.0 || self.rng.random::<f64>() < rate)
    }

    fn count(&mut self, kind: &str) {
        *self.injected.entry(kind.to_owned()).or_default() += 1;
    }

    /// An error to answer `action` with instead of carrying it out, if the dice say so.
    pub fn error_for(&mut self, action: &str) -> Option<InjectedError> {
        self.error_of(None, action)
    }

    /// The latency added to a call of `access_key_id`.
    pub fn latency_for(&self, access_key_id: &str) -> u64 {
        self.faults.latency_ms + self.faults.by_access_key.get(access_key_id).map_or(0, |f| f.latency_ms)
    }

    /// An error to answer `action` of `access_key_id` with, if the dice say so: the account's
    /// own rates if it has any, else everyone's.
    pub fn error_of(&mut self, access_key_id: Option<&str>, action: &str) -> Option<InjectedError> {
        let own = access_key_id
            .and_then(|k| self.faults.by_access_key.get(k))
            .filter(|f| !f.errors.is_empty())
            .map(|f| &f.errors);
        let errors = own.unwrap_or(&self.faults.errors);
        let rates = errors.get(action).or_else(|| errors.get("*")).copied()?;
        for (rate, status, code) in [
            (rates.internal_error, 500, "InternalError"),
            (rates.resource_in_use, 409, "ResourceInUse"),
            (rates.throttling, 429, "RequestLimitExceeded"),
            (rates.invalid_parameter, 400, "InvalidParameter"),
        ] {
            if self.roll(rate) {
                self.count(code);
                return Some(InjectedError { status, code });
            }
        }
        None
    }

    /// Whether the answer of a successful `action` is lost, and how.
    pub fn lost_response(&mut self, action: &str) -> Option<LostMode> {
        let lost = self
            .faults
            .lost_responses
            .get(action)
            .or_else(|| self.faults.lost_responses.get("*"))
            .copied()?;
        if self.roll(lost.rate) {
            self.count(match lost.mode {
                LostMode::ServerError => "LostResponse",
                LostMode::Drop => "DroppedConnection",
                LostMode::UndocumentedCode => "UndocumentedCode",
            });
            return Some(lost.mode);
        }
        None
    }
}

/// Parses `ACTION=KIND:RATE` (KIND `internal`, `in-use`, `throttle` or `invalid`) into `faults`.
pub fn parse_error_rate(faults: &mut Faults, spec: &str) -> Result<(), String> {
    let (action, rest) = spec.split_once('=').ok_or("expected ACTION=KIND:RATE")?;
    let (kind, rate) = rest.split_once(':').ok_or("expected ACTION=KIND:RATE")?;
    let rate: f64 = rate.parse().map_err(|_| format!("bad rate {rate:?}"))?;
    let entry = faults.errors.entry(action.to_owned()).or_default();
    match kind {
        "internal" => entry.internal_error = rate,
        "in-use" => entry.resource_in_use = rate,
        "throttle" => entry.throttling = rate,
        "invalid" => entry.invalid_parameter = rate,
        _ => {
            return Err(format!(
                "unknown error kind {kind:?}: use internal, in-use, throttle or invalid"
            ));
        }
    }
    Ok(())
}

/// Parses `ACTION=MODE:RATE` (MODE `5xx`, `drop` or `undocumented`) into `faults`.
pub fn parse_lost_response(faults: &mut Faults, spec: &str) -> Result<(), String> {
    let (action, rest) = spec.split_once('=').ok_or("expected ACTION=MODE:RATE")?;
    let (mode, rate) = rest.split_once(':').ok_or("expected ACTION=MODE:RATE")?;
    let rate: f64 = rate.parse().map_err(|_| format!("bad rate {rate:?}"))?;
    let mode = match mode {
        "5xx" => LostMode::ServerError,
        "drop" => LostMode::Drop,
        "undocumented" => LostMode::UndocumentedCode,
        _ => return Err(format!("unknown mode {mode:?}: use 5xx, drop or undocumented")),
    };
    faults
        .lost_responses
        .insert(action.to_owned(), LostResponse { rate, mode });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_can_have_faults_of_its_own() {
        let f: Faults = serde_json::from_value(serde_json::json!({
            "latencyMs": 5,
            "byAccessKey": { "AKIDa": { "errors": { "*": { "throttling": 1.0 } }, "latencyMs": 100 } },
        }))
        .unwrap();
        let mut inj = FaultInjector::new(f, 1);
        assert_eq!(
            inj.error_of(Some("AKIDa"), "DescribeRegins").map(|e| e.status),
            Some(429)
        );
        assert_eq!(inj.error_of(Some("AKIDb"), "DescribeRegins"), None);
        assert_eq!((inj.latency_for("AKIDa"), inj.latency_for("AKIDb")), (105, 5));
    }

    #[test]
    fn rates_are_seeded_and_roughly_right() {
        let mut f = Faults::default();
        parse_error_rate(&mut f, "CreateDBInstance=internal:0.3").unwrap();
        let run = |seed| {
            let mut inj = FaultInjector::new(f.clone(), seed);
            (0..1000)
                .filter(|_| inj.error_for("CreateDBInstance").is_some())
                .count()
        };
        let n = run(7);
        assert_eq!(n, run(7), "same seed, same dice");
        assert!((200..400).contains(&n), "{n}");
        let mut inj = FaultInjector::new(f, 7);
        assert!(inj.error_for("DescribeDBInstances").is_none());
    }

    #[test]
    fn wildcard_and_parsing() {
        let mut f = Faults::default();
        parse_error_rate(&mut f, "*=in-use:1").unwrap();
        parse_lost_response(&mut f, "CreateDBInstance=drop:1").unwrap();
        assert!(parse_error_rate(&mut f, "X=boom:1").is_err());
        assert!(parse_lost_response(&mut f, "X").is_err());
        let mut inj = FaultInjector::new(f, 1);
        assert_eq!(
            inj.error_for("DescribeRegins"),
            Some(InjectedError {
                status: 409,
                code: "ResourceInUse"
            })
        );
        assert_eq!(inj.lost_response("CreateDBInstance"), Some(LostMode::Drop));
        assert_eq!(inj.lost_response("DeleteDBInstance"), None);
        assert_eq!(inj.injected["ResourceInUse"], 1);
    }
}
