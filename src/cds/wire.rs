//! The CDS Redis API's JSON, spelled as the API spells it (`cds-redis-api.md` §3-4).
//!
//! Parsing is lenient where the documentation and real responses disagree (§6 item 6): numbers
//! may come as strings, objects as `""` or `null`, lists as `null`. The same types serialise the
//! simulator's responses, in the shapes the real API returns.

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The `Code` of a successful response.
pub const SUCCESS: &str = "Success";

/// The envelope of every response: `{Code, Message, Data, TaskId}`.
///
/// `Data` is kept as the raw JSON text and parsed straight into the action's type: a listing of
/// thousands of instances never becomes a `serde_json::Value` tree (several times its size).
#[derive(Serialize, Deserialize, Debug)]
pub struct Envelope {
    /// `Success`, or an error code.
    #[serde(rename = "Code", default, deserialize_with = "lenient_string")]
    pub code: String,
    /// Free text; never compare it.
    #[serde(rename = "Message", default, deserialize_with = "lenient_string")]
    pub message: String,
    /// The action's payload, as sent.
    #[serde(rename = "Data", default = "null_raw")]
    pub data: Box<RawValue>,
    /// Task id of an asynchronous action; often `""`, missing on some list calls.
    #[serde(rename = "TaskId", default, deserialize_with = "lenient_string")]
    pub task_id: String,
    /// A request id, if the server sends one (not documented).
    #[serde(
        rename = "RequestId",
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub request_id: String,
    /// The page of a paged listing (`DescribeVdc`'s doc table; absent from its example).
    #[serde(
        rename = "PageNumber",
        default,
        deserialize_with = "lenient_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub page_number: Option<i64>,
    /// How many pages a paged listing has.
    #[serde(
        rename = "PageCount",
        default,
        deserialize_with = "lenient_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub page_count: Option<i64>,
}

fn null_raw() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("null is JSON")
}

/// Whether a payload is one of the spellings of "nothing": `null`, `""` or `{}`.
fn is_empty_payload(raw: &RawValue) -> bool {
    let text = raw.get().trim();
    text == "null" || text == "\"\"" || (text.starts_with('{') && text[1..].trim() == "}")
}

impl Envelope {
    /// A successful envelope around `data`.
    pub fn success(data: impl Serialize, task_id: impl Into<String>) -> Self {
        Self {
            code: SUCCESS.into(),
            message: "Success.".into(),
            data: serde_json::value::to_raw_value(&data).expect("serialisable payload"),
            task_id: task_id.into(),
            request_id: String::new(),
            page_number: None,
            page_count: None,
        }
    }

    /// A failed envelope: `code` and `message`, an empty payload.
    pub fn failure(code: impl Into<String>, message: impl Into<String>, request_id: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            data: RawValue::from_string("{}".to_owned()).expect("{} is JSON"),
            task_id: String::new(),
            request_id: request_id.into(),
            page_number: None,
            page_count: None,
        }
    }

    /// The payload parsed as `T`, leniently (`null` or `""` parse as `T::default()` where `T`
    /// allows it through its own field defaults).
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        if is_empty_payload(&self.data) {
            return serde_json::from_str("{}");
        }
        serde_json::from_str(self.data.get())
    }

    /// The payload parsed as a list (`null`, `""` and `{}` are empty).
    pub fn data_as_list<T: DeserializeOwned>(&self) -> Result<Vec<T>, serde_json::Error> {
        if is_empty_payload(&self.data) {
            return Ok(vec![]);
        }
        serde_json::from_str(self.data.get())
    }

    /// The task id, from the top level or (before August 2021) from inside `Data`.
    pub fn task_id(&self) -> Option<String> {
        if !self.task_id.is_empty() {
            return Some(self.task_id.clone());
        }
        #[derive(Deserialize)]
        struct Inner {
            #[serde(rename = "TaskId", default, deserialize_with = "lenient_string")]
            task_id: String,
        }
        if !self.data.get().trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str::<Inner>(self.data.get())
            .ok()
            .map(|i| i.task_id)
            .filter(|t| !t.is_empty())
    }
}

/// A string that may arrive as a number, a bool or `null`.
pub fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    })
}

/// An integer that may arrive as a number, a numeric string, `""` or `null`.
pub fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    })
}

/// A list that may arrive as `null` or `""`.
pub fn lenient_vec<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(serde::de::Error::custom))
            .collect(),
        _ => Ok(vec![]),
    }
}

mod backups;
mod catalogue;
mod instances;
mod network;

pub use backups::*;
pub use catalogue::*;
pub use instances::*;
pub use network::*;

#[cfg(test)]
mod tests;
