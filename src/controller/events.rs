//! Events for transitions, written straight to `events.k8s.io/v1`.
//!
//! kube-runtime's `Recorder` keeps every Event it published for six minutes (to count repeats
//! into a series) and sweeps that cache on every publish: at 5,000 objects and three Events each
//! on the way to Ready that is tens of MiB held and a sweep of up to 15,000 entries per Event.
//! The controller publishes an Event only on a transition (a failure that repeats with the same
//! reason is not published again), so it needs no series, and this publisher keeps nothing.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

pub use kube::runtime::events::EventType;

/// The API's limit on an Event's note, in bytes.
const NOTE_LIMIT: usize = 1024;

/// Publishes Events about objects as one reporting controller instance.
#[derive(Clone)]
pub struct EventPublisher {
    client: kube::Client,
    controller: String,
    instance: String,
}

impl EventPublisher {
    /// A publisher reporting as `controller` (e.g. `cds-redis-operator`), replica `instance`.
    pub fn new(client: kube::Client, controller: impl Into<String>, instance: impl Into<String>) -> Self {
        Self {
            client,
            controller: controller.into(),
            instance: instance.into(),
        }
    }

    /// Creates one Event about `regarding`, shown by `kubectl describe`.
    pub async fn publish(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".to_owned());
        let event = build_event(
            &self.controller,
            &self.instance,
            regarding,
            type_,
            reason,
            note,
            jiff::Timestamp::now(),
        );
        Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await?;
        Ok(())
    }
}

/// The Event (pure, for tests): a unique name from the object's name and the time, the note cut
/// to the API's limit on a character boundary.
fn build_event(
    controller: &str,
    instance: &str,
    regarding: ObjectReference,
    type_: EventType,
    reason: &str,
    note: &str,
    now: jiff::Timestamp,
) -> Event {
    let object = regarding.name.clone().unwrap_or_else(|| controller.to_owned());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        action: Some("Reconcile".to_owned()),
        reason: Some(reason.to_owned()),
        note: Some(truncate(note, NOTE_LIMIT).to_owned()),
        type_: Some(
            match type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .to_owned(),
        ),
        event_time: Some(MicroTime(now)),
        reporting_controller: Some(controller.to_owned()),
        reporting_instance: Some(truncate(instance, 128).to_owned()),
        regarding: Some(regarding),
        ..Event::default()
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> ObjectReference {
        ObjectReference {
            api_version: Some("cds.capitalonline.net/v1alpha1".into()),
            kind: Some("RedisInstance".into()),
            name: Some("cache".into()),
            namespace: Some("team-a".into()),
            uid: Some("u-1".into()),
            ..ObjectReference::default()
        }
    }

    #[test]
    fn event_names_the_object_and_reporter() {
        let now: jiff::Timestamp = "2026-11-28T06:00:00Z".parse().unwrap();
        let ev = build_event(
            "ctl",
            "pod-1",
            reference(),
            EventType::Warning,
            "Throttled",
            "slow down",
            now,
        );
        assert_eq!(ev.metadata.namespace.as_deref(), Some("team-a"));
        assert!(ev.metadata.name.as_deref().unwrap().starts_with("cache."));
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
        assert_eq!(ev.reason.as_deref(), Some("Throttled"));
        assert_eq!(ev.reporting_controller.as_deref(), Some("ctl"));
        assert_eq!(ev.reporting_instance.as_deref(), Some("pod-1"));
        assert_eq!(ev.regarding.unwrap().uid.as_deref(), Some("u-1"));
        assert_eq!(ev.event_time.unwrap().0, now);
    }

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        let note = "密".repeat(400); // 1,200 bytes
        let ev = build_event(
            "c",
            "i",
            reference(),
            EventType::Normal,
            "R",
            &note,
            jiff::Timestamp::UNIX_EPOCH,
        );
        let cut = ev.note.unwrap();
        assert!(cut.len() <= NOTE_LIMIT && cut.len() > NOTE_LIMIT - 3, "{}", cut.len());
        assert!(note.starts_with(&cut));
    }
}
