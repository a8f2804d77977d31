//! Virtual sinks: PipeWire null-audio sinks described in SPA-JSON.
//!
//! The sinks a bed starts with are written to a `pipewire.conf.d` fragment, so
//! PipeWire creates them itself on every start (also after
//! `restart_pipewire`); sinks added later are created with `pw-cli` and added
//! to the fragment too.
//!
//! A plain sink's priority comes from its place (the first one is the
//! default); a device sink, standing in for a sound card, has its own.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// `priority.session` of the first sink, so the session manager picks it as default.
const DEFAULT_SINK_PRIORITY: i32 = 2000;
/// `priority.session` of every other sink.
const OTHER_SINK_PRIORITY: i32 = 1000;

/// The priority of a plain sink: the first one's, or that of the others.
pub(crate) fn plain_priority(is_first: bool) -> i32 {
    if is_first {
        DEFAULT_SINK_PRIORITY
    } else {
        OTHER_SINK_PRIORITY
    }
}

/// Checks that `name` can go into SPA-JSON, file names and command lines as it is.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSinkName(name.to_owned()))
    }
}

/// The human-readable `node.description`: the name with its first letter capitalised.
pub(crate) fn description(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The properties of a null-audio sink, as the body of an SPA-JSON object:
/// `priority` is its `priority.session` and `priority.driver`.
/// `name` must have passed [`validate_name`].
///
/// With `keep_running`, the sink has `node.always-process = true`: PipeWire
/// keeps it running instead of suspending it while no stream plays into it.
/// A suspended null sink accepts `Props` changes but keeps reporting its old
/// `Props` until it runs again, so tests that read a volume back need this.
pub(crate) fn properties(name: &str, priority: i32, keep_running: bool) -> String {
    format!(
        "factory.name = support.null-audio-sink node.name = \"{name}\" \
         node.description = \"{description}\" media.class = \"Audio/Sink\" \
         audio.position = [ FL FR ] object.linger = true monitor.channel-volumes = true \
         priority.session = {priority} priority.driver = {priority} \
         node.always-process = {keep_running}",
        description = description(name),
    )
}

/// A `pipewire.conf.d` fragment creating `names`: those in `device_priorities`
/// with that priority, the others with [`plain_priority`] (the first of all
/// names counting as first); `keep_running` as for [`properties`].
pub(crate) fn config_fragment(
    names: &[String],
    device_priorities: &BTreeMap<String, i32>,
    keep_running: bool,
) -> String {
    let mut text = String::from(
        "# Written by the test bed: the virtual sinks of this private PipeWire.\n\
         context.objects = [\n",
    );
    for (i, name) in names.iter().enumerate() {
        let priority = device_priorities.get(name).copied().unwrap_or_else(|| plain_priority(i == 0));
        text.push_str(&format!(
            "  {{ factory = adapter args = {{ {} }} }}\n",
            properties(name, priority, keep_running)
        ));
    }
    text.push_str("]\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_rejects_the_rest() {
        for good in ["speakers", "game", "alsa_output.usb-1.analog-stereo", "a_b-c.1"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "two words", "quote\"", "brace}", "new\nline", "ünï", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn suspendable_sinks_are_not_always_processed() {
        assert!(properties("game", 1000, false).contains("node.always-process = false"));
    }

    #[test]
    fn description_capitalises() {
        assert_eq!(description("speakers"), "Speakers");
        assert_eq!(description("9lives"), "9lives");
    }

    #[test]
    fn first_sink_in_fragment_has_the_higher_priority() {
        let text = config_fragment(&["speakers".into(), "game".into()], &BTreeMap::new(), true);
        let speakers = text.lines().find(|l| l.contains("\"speakers\"")).unwrap();
        let game = text.lines().find(|l| l.contains("\"game\"")).unwrap();
        assert!(speakers.contains("priority.session = 2000"), "{speakers}");
        assert!(game.contains("priority.session = 1000"), "{game}");
        assert!(game.contains("node.always-process = true"), "{game}");
        assert!(text.starts_with('#') && text.trim_end().ends_with(']'));
    }

    #[test]
    fn device_sinks_have_their_own_priority_for_session_and_driver() {
        let devices = BTreeMap::from([("headphones".to_owned(), 1000), ("speakers".to_owned(), -5)]);
        let text = config_fragment(&["speakers".into(), "game".into(), "headphones".into()], &devices, true);
        let line = |name: &str| text.lines().find(|l| l.contains(&format!("\"{name}\""))).unwrap().to_owned();
        let speakers = line("speakers");
        assert!(speakers.contains("priority.session = -5 priority.driver = -5"), "{speakers}");
        assert!(line("game").contains("priority.session = 1000"));
        let headphones = line("headphones");
        assert!(headphones.contains("priority.session = 1000 priority.driver = 1000"), "{headphones}");
        assert!(headphones.contains("node.description = \"Headphones\""), "{headphones}");
        assert!(headphones.contains("media.class = \"Audio/Sink\""), "{headphones}");
    }
}
