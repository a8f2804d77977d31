//! Fills the shared-memory snapshot from the mixer's state.

use pvm_ipc::layout::{
    app_flags, header_flags, sink_flags, write_str, SinkKind, Snapshot, TargetSource, MAX_APPS, MAX_SINKS,
    MAX_STREAMS_PER_APP, NO_ID,
};

use crate::model::{volume, Mixer};
use crate::router::Router;

/// What the snapshot shows.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// The graph.
    pub mixer: &'a Mixer,
    /// Routing targets.
    pub router: &'a Router,
    /// Connected to PipeWire and in sync.
    pub connected: bool,
    /// The session manager's routing hold has announced itself.
    pub hold_active: bool,
}

/// Writes the state into `snap` (header counts and flags, every sink slot,
/// and every app slot when `apps` is set; otherwise the app slots are left as
/// the last fill wrote them, which is right when only sinks changed). The
/// writer sets the seqlock fields.
pub fn fill(snap: &mut Snapshot, view: View<'_>, apps: bool) {
    let View { mixer, router, connected, hold_active } = view;
    let mut flags = header_flags::RUNNING;
    if connected {
        flags |= header_flags::CONNECTED;
    }
    if hold_active {
        flags |= header_flags::HOLD_ACTIVE;
    }
    let mut truncated = false;

    let default = mixer.default_sink();
    let mut n_sinks = 0;
    // Channels first: with more sinks than slots, they are the ones to show.
    let ordered = mixer.sinks().filter(|s| s.props.channel).chain(mixer.sinks().filter(|s| !s.props.channel));
    for (slot, sink) in snap.sinks.iter_mut().zip(ordered) {
        let mut f = 0;
        if sink.muted {
            f |= sink_flags::MUTED;
        }
        if default == Some(sink.name()) {
            f |= sink_flags::DEFAULT;
        }
        if sink.device_backed {
            f |= sink_flags::DEVICE_BACKED;
        }
        if write_str(&mut slot.name, sink.name()) {
            f |= sink_flags::NAME_TRUNCATED;
        }
        if write_str(&mut slot.description, sink.props.description.as_deref().unwrap_or("")) {
            f |= sink_flags::DESCRIPTION_TRUNCATED;
        }
        let output = if sink.props.channel { mixer.sink_outputs(sink.id).first().copied() } else { None };
        let output_name = output.and_then(|id| mixer.sink(id)).map_or("", |s| s.name());
        if write_str(&mut slot.output, output_name) {
            f |= sink_flags::OUTPUT_TRUNCATED;
        }
        slot.kind = if sink.props.channel { SinkKind::Channel } else { SinkKind::Device } as u32;
        slot.output_id = output.unwrap_or(NO_ID);
        truncated |=
            f & (sink_flags::NAME_TRUNCATED | sink_flags::DESCRIPTION_TRUNCATED | sink_flags::OUTPUT_TRUNCATED) != 0;
        slot.id = sink.id;
        slot.flags = f;
        slot.volume = volume::displayed(&sink.channels);
        slot.channels = sink.channels.len() as u32;
        slot.serial = sink.props.serial.unwrap_or(0);
        n_sinks += 1;
    }
    for slot in &mut snap.sinks[n_sinks..] {
        *slot = bytemuck::Zeroable::zeroed();
    }
    if mixer.sink_count() > MAX_SINKS {
        flags |= header_flags::SINKS_OVERFLOW;
    }

    if apps {
        fill_apps(snap, mixer, router);
    }
    let n_apps = snap.header.app_count as usize;
    let apps_truncated =
        snap.apps[..n_apps].iter().any(|a| a.flags & (app_flags::NAME_TRUNCATED | app_flags::SINK_TRUNCATED) != 0);
    if mixer.apps().len() > MAX_APPS {
        flags |= header_flags::APPS_OVERFLOW;
    }
    if truncated || apps_truncated {
        flags |= header_flags::TRUNCATED;
    }

    let h = &mut snap.header;
    h.flags = flags;
    h.sink_count = n_sinks as u32;
    h.total_sinks = mixer.sink_count() as u32;
}

/// Writes every app slot, `app_count` and `total_apps`.
fn fill_apps(snap: &mut Snapshot, mixer: &Mixer, router: &Router) {
    let apps = mixer.apps();
    let mut n_apps = 0;
    for (slot, app) in snap.apps.iter_mut().zip(apps) {
        let mut f = 0;
        let mut any_running = false;
        let mut all_muted = true;
        let mut movable = true;
        let mut sink_name = "";
        slot.stream_ids = [NO_ID; MAX_STREAMS_PER_APP];
        for (i, stream) in app.streams.iter().filter_map(|&id| mixer.stream(id)).enumerate() {
            if i < MAX_STREAMS_PER_APP {
                slot.stream_ids[i] = stream.id;
            }
            any_running |= stream.running;
            all_muted &= stream.muted;
            movable &= stream.movable();
            if sink_name.is_empty() {
                if let Some(s) = stream.sink_id().and_then(|id| mixer.sink(id)) {
                    sink_name = s.name();
                }
            }
        }
        let first = app.streams.first().and_then(|&id| mixer.stream(id));
        // A move made in another tool after the stream started is where it
        // plays now and what we leave it to.
        let moved = app.streams.first().and_then(|&id| router.override_value(id)).map(|v| {
            let sink = v.parse::<u64>().ok().and_then(|serial| mixer.sinks().find(|s| s.props.serial == Some(serial)));
            sink.map_or(v, |s| s.name())
        });
        let target = app.streams.first().and_then(|&id| router.target(id));
        if any_running {
            f |= app_flags::ACTIVE;
        }
        if movable {
            f |= app_flags::MOVABLE;
        }
        if all_muted {
            f |= app_flags::MUTED;
        }
        if app.streams.len() > MAX_STREAMS_PER_APP {
            f |= app_flags::STREAMS_OVERFLOW;
        }
        if write_str(&mut slot.name, &app.name) {
            f |= app_flags::NAME_TRUNCATED;
        }
        let cut_sink = write_str(&mut slot.sink, sink_name);
        let target_name = moved.unwrap_or_else(|| target.map_or("", |t| t.sink.as_str()));
        let cut_target = write_str(&mut slot.target, target_name);
        if cut_sink || cut_target {
            f |= app_flags::SINK_TRUNCATED;
        }
        slot.flags = f;
        slot.stream_count = app.streams.len() as u32;
        slot.volume = first.map_or(0.0, |s| volume::displayed(&s.channels));
        slot.target_source = match (moved, target) {
            (Some(_), _) => TargetSource::OtherTool,
            (None, Some(t)) => t.source,
            (None, None) => TargetSource::SessionManager,
        } as u32;
        n_apps += 1;
    }
    for slot in &mut snap.apps[n_apps..] {
        *slot = bytemuck::Zeroable::zeroed();
    }
    snap.header.app_count = n_apps as u32;
    snap.header.total_apps = apps.len() as u32;
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GraphEvent, NodeProps};

    fn view<'a>(mixer: &'a Mixer, router: &'a Router, connected: bool) -> View<'a> {
        View { mixer, router, connected, hold_active: false }
    }

    fn mixer_with(sinks: usize, apps: usize, app_name: impl Fn(usize) -> String) -> Mixer {
        let mut m = Mixer::new();
        for i in 0..sinks {
            let name = format!("sink{i}");
            let props = NodeProps::from_pairs([
                ("media.class", "Audio/Sink"),
                ("node.name", name.as_str()),
                ("object.serial", "7"),
            ]);
            m.apply(GraphEvent::NodeAdded { id: i as u32, props });
        }
        for i in 0..apps {
            let name = app_name(i);
            let props =
                NodeProps::from_pairs([("media.class", "Stream/Output/Audio"), ("application.name", name.as_str())]);
            m.apply(GraphEvent::NodeAdded { id: 1000 + i as u32, props });
        }
        m
    }

    #[test]
    fn ten_sinks_and_130_apps_overflow_but_fill_the_first_slots() {
        let m = mixer_with(10, 130, |i| format!("app{i}"));
        let mut snap = Snapshot::new_boxed();
        fill(&mut snap, view(&m, &Router::new(), true), true);
        let h = snap.header;
        assert_eq!(h.sink_count, 8);
        assert_eq!(h.app_count, 128);
        assert_eq!(h.total_sinks, 10);
        assert_eq!(h.total_apps, 130);
        assert_ne!(h.flags & header_flags::SINKS_OVERFLOW, 0);
        assert_ne!(h.flags & header_flags::APPS_OVERFLOW, 0);
        assert_eq!(h.flags & header_flags::TRUNCATED, 0);
        assert_eq!(snap.sinks[0].name(), "sink0");
        assert_eq!(snap.sinks[7].name(), "sink7");
        assert_eq!(snap.apps[0].name(), "app0");
        assert_eq!(snap.apps[127].name(), "app127");
        assert_eq!(snap.apps[127].stream_ids().collect::<Vec<_>>(), vec![1127]);
    }

    #[test]
    fn long_multibyte_name_is_truncated_and_flagged() {
        let long = "ä".repeat(150); // 300 bytes
        let m = mixer_with(1, 1, |_| long.clone());
        let mut snap = Snapshot::new_boxed();
        fill(&mut snap, view(&m, &Router::new(), true), true);
        let app = &snap.apps[0];
        assert!(app.has(app_flags::NAME_TRUNCATED));
        assert_ne!(snap.header.flags & header_flags::TRUNCATED, 0);
        let name = app.name();
        assert!(long.starts_with(&*name));
        assert_eq!(name.chars().count(), pvm_ipc::layout::APP_NAME_LEN / 2);
    }

    #[test]
    fn removed_entries_are_cleared() {
        let mut m = mixer_with(2, 2, |i| format!("app{i}"));
        let mut snap = Snapshot::new_boxed();
        fill(&mut snap, view(&m, &Router::new(), false), true);
        assert_eq!(snap.header.flags & header_flags::CONNECTED, 0);
        m.apply(GraphEvent::Removed { id: 1001 });
        m.apply(GraphEvent::Removed { id: 1 });
        fill(&mut snap, view(&m, &Router::new(), true), true);
        assert_eq!(snap.header.app_count, 1);
        assert_eq!(snap.header.sink_count, 1);
        assert_eq!(snap.apps[1].name(), "");
        assert_eq!(snap.sinks[1].name(), "");
    }

    #[test]
    fn a_sink_only_fill_updates_sinks_and_keeps_app_slots_and_flags() {
        let long = "ä".repeat(150);
        let mut m = mixer_with(2, 2, |i| if i == 0 { long.clone() } else { format!("app{i}") });
        let mut snap = Snapshot::new_boxed();
        fill(&mut snap, view(&m, &Router::new(), true), true);
        let apps_before = snap.apps;
        m.apply(GraphEvent::NodeVolume {
            id: 1,
            channels: Some([0.125f32, 0.125].into_iter().collect()),
            muted: Some(true),
        });
        fill(&mut snap, view(&m, &Router::new(), true), false);
        assert!((snap.sinks[1].volume - 0.5).abs() < 1e-6);
        assert!(snap.sinks[1].has(sink_flags::MUTED));
        assert_eq!(bytemuck::bytes_of(&snap.apps), bytemuck::bytes_of(&apps_before));
        assert_eq!(snap.header.app_count, 2);
        assert_ne!(snap.header.flags & header_flags::TRUNCATED, 0, "the app's truncation still shows");
    }
}
