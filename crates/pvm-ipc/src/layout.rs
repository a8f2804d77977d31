//! Layout version 2 of the shared-memory snapshot.
//!
//! Version 2 added, in bytes that were reserved in version 1, each sink's
//! kind (a channel the daemon made, or any other sink) and a channel's
//! current output; a version-1 reader refuses it, as it must.
//!
//! The file is one [`Snapshot`]: a 64-byte [`Header`], [`MAX_SINKS`] sink
//! slots and [`MAX_APPS`] app slots, `#[repr(C)]`, little-endian, no pointers.
//! `docs/shm-layout.md` and `include/pipewire-volume-mixer.h` describe the same
//! bytes; the tests below pin every offset.
//!
//! Strings are UTF-8, NUL-padded to the size of their field. A string that
//! fills its field completely has no NUL (C readers use `strnlen`). Names that
//! do not fit are cut on a character boundary and flagged.

use bytemuck::{Pod, Zeroable};

/// `magic`: the bytes `"PVMS"` read as a little-endian `u32`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"PVMS");
/// The layout described here.
pub const LAYOUT_VERSION: u32 = 2;
/// Sink slots in the snapshot.
pub const MAX_SINKS: usize = 8;
/// App slots in the snapshot.
pub const MAX_APPS: usize = 128;
/// Stream node ids kept per app slot.
pub const MAX_STREAMS_PER_APP: usize = 8;
/// Bytes of a sink's `node.name`.
pub const SINK_NAME_LEN: usize = 64;
/// Bytes of a sink's `node.description`.
pub const SINK_DESCRIPTION_LEN: usize = 112;
/// Bytes of an app's name.
pub const APP_NAME_LEN: usize = 80;
/// Bytes of the sink names held in an app slot.
pub const APP_SINK_LEN: usize = 64;
/// Bytes of a channel's output `node.name` held in a sink slot.
pub const SINK_OUTPUT_LEN: usize = 48;
/// Node id meaning "none".
pub const NO_ID: u32 = u32::MAX;

/// Bits of [`Header::flags`].
pub mod header_flags {
    /// A daemon owns the file and is publishing.
    pub const RUNNING: u32 = 1 << 0;
    /// The daemon is connected to PipeWire (state is live).
    pub const CONNECTED: u32 = 1 << 1;
    /// More sinks exist than [`super::MAX_SINKS`]; the first ones are shown.
    pub const SINKS_OVERFLOW: u32 = 1 << 2;
    /// More apps exist than [`super::MAX_APPS`]; the first ones are shown.
    pub const APPS_OVERFLOW: u32 = 1 << 3;
    /// At least one string in the snapshot was truncated.
    pub const TRUNCATED: u32 = 1 << 4;
    /// The session manager's routing hold has announced itself: new streams
    /// wait for the daemon's decision before they are linked.
    pub const HOLD_ACTIVE: u32 = 1 << 5;
}

/// Bits of [`SinkSlot::flags`].
pub mod sink_flags {
    /// The sink is muted.
    pub const MUTED: u32 = 1 << 0;
    /// The sink is the default sink (`default.audio.sink`).
    pub const DEFAULT: u32 = 1 << 1;
    /// `name` was truncated.
    pub const NAME_TRUNCATED: u32 = 1 << 2;
    /// `description` was truncated.
    pub const DESCRIPTION_TRUNCATED: u32 = 1 << 3;
    /// Volume and mute live in the device's `Route` param.
    pub const DEVICE_BACKED: u32 = 1 << 4;
    /// `output` was truncated.
    pub const OUTPUT_TRUNCATED: u32 = 1 << 5;
}

/// What a sink is ([`SinkSlot::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum SinkKind {
    /// Any sink the daemon did not make: a sound card, a Bluetooth headset,
    /// a virtual sink made elsewhere.
    Device = 0,
    /// A channel the daemon made from a `[[channel]]` of its config.
    Channel = 1,
}

impl SinkKind {
    /// Decodes the `kind` field; unknown values read as a device.
    pub fn from_u32(v: u32) -> Self {
        match v {
            1 => Self::Channel,
            _ => Self::Device,
        }
    }

    /// The name used in JSON and in `pvmctl status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Channel => "channel",
        }
    }
}

/// Bits of [`AppSlot::flags`].
pub mod app_flags {
    /// At least one of the app's streams is running.
    pub const ACTIVE: u32 = 1 << 0;
    /// The app's streams may be moved (no `node.dont-move` / `node.dont-reconnect`).
    pub const MOVABLE: u32 = 1 << 1;
    /// All of the app's streams are muted.
    pub const MUTED: u32 = 1 << 2;
    /// `name` was truncated.
    pub const NAME_TRUNCATED: u32 = 1 << 3;
    /// The app has more streams than [`super::MAX_STREAMS_PER_APP`].
    pub const STREAMS_OVERFLOW: u32 = 1 << 4;
    /// `sink` or `target` was truncated.
    pub const SINK_TRUNCATED: u32 = 1 << 5;
}

/// Where an app's target sink comes from ([`AppSlot::target_source`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TargetSource {
    /// No target of ours: the session manager decides.
    SessionManager = 0,
    /// A rule in the config file.
    Rule = 1,
    /// A `ROUTE` command (persisted).
    Route = 2,
    /// Someone else moved the stream after it started (a user in another
    /// tool: pavucontrol, wpctl, pw-metadata); respected, not persisted.
    OtherTool = 3,
}

impl TargetSource {
    /// Decodes the `target_source` field; unknown values read as the session manager.
    pub fn from_u32(v: u32) -> Self {
        match v {
            1 => Self::Rule,
            2 => Self::Route,
            3 => Self::OtherTool,
            _ => Self::SessionManager,
        }
    }

    /// The name used in JSON and in `pvmctl status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionManager => "session-manager",
            Self::Rule => "rule",
            Self::Route => "route",
            Self::OtherTool => "other-tool",
        }
    }
}

/// The 64-byte header.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: u32,
    /// [`LAYOUT_VERSION`]; 0 while the file is being initialised.
    pub version: u32,
    /// Seqlock counter: odd while a publish is in progress, even otherwise.
    /// Readers wait for changes with a futex on its low 32 bits (offset 8).
    pub generation: u64,
    /// `CLOCK_MONOTONIC` time of the last publish, in nanoseconds.
    pub last_update_ns: u64,
    /// [`header_flags`].
    pub flags: u32,
    /// Sink slots in use (`<= MAX_SINKS`).
    pub sink_count: u32,
    /// App slots in use (`<= MAX_APPS`).
    pub app_count: u32,
    /// Sinks the daemon knows (may exceed `sink_count`).
    pub total_sinks: u32,
    /// Apps the daemon knows (may exceed `app_count`).
    pub total_apps: u32,
    /// Process id of the daemon that owns the file.
    pub daemon_pid: u32,
    /// `size_of::<Snapshot>()`, so readers can check they map the whole file.
    pub file_size: u32,
    /// Reserved, zero.
    pub reserved: [u32; 3],
}

/// One sink (256 bytes).
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct SinkSlot {
    /// PipeWire node id.
    pub id: u32,
    /// [`sink_flags`].
    pub flags: u32,
    /// Volume on the cubic scale wpctl shows (0.0-1.0; may exceed 1.0 if set so elsewhere).
    pub volume: f32,
    /// Number of channels.
    pub channels: u32,
    /// `object.serial` of the node.
    pub serial: u64,
    /// `node.name`.
    pub name: [u8; SINK_NAME_LEN],
    /// `node.description`.
    pub description: [u8; SINK_DESCRIPTION_LEN],
    /// [`SinkKind`] as `u32`.
    pub kind: u32,
    /// A channel's current output: the node id of the sink its audio goes
    /// to; [`NO_ID`] for a channel without output and for every device.
    pub output_id: u32,
    /// A channel's current output: that sink's `node.name`; empty if none.
    pub output: [u8; SINK_OUTPUT_LEN],
}

/// One application: all output streams with the same app identity (256 bytes).
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct AppSlot {
    /// [`app_flags`].
    pub flags: u32,
    /// Number of streams of the app (may exceed [`MAX_STREAMS_PER_APP`]).
    pub stream_count: u32,
    /// Volume of the app's first stream, cubic scale.
    pub volume: f32,
    /// [`TargetSource`] as `u32`.
    pub target_source: u32,
    /// Node ids of the first streams; unused entries are [`NO_ID`].
    pub stream_ids: [u32; MAX_STREAMS_PER_APP],
    /// The app name (see `docs/shm-layout.md`, "App identity").
    pub name: [u8; APP_NAME_LEN],
    /// `node.name` of the sink the app's first linked stream plays to; empty if none.
    pub sink: [u8; APP_SINK_LEN],
    /// `node.name` of the sink we route the app to; empty when the session manager decides.
    pub target: [u8; APP_SINK_LEN],
}

/// The whole file.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct Snapshot {
    /// Header.
    pub header: Header,
    /// Sinks; the first `header.sink_count` are valid.
    pub sinks: [SinkSlot; MAX_SINKS],
    /// Apps; the first `header.app_count` are valid.
    pub apps: [AppSlot; MAX_APPS],
}

/// Size of the snapshot file in bytes.
pub const SNAPSHOT_SIZE: usize = std::mem::size_of::<Snapshot>();

impl Snapshot {
    /// An all-zero snapshot on the heap (it is 34 KiB; keep it off the stack).
    pub fn new_boxed() -> Box<Snapshot> {
        bytemuck::allocation::zeroed_box()
    }

    /// The valid sink slots.
    pub fn sinks(&self) -> &[SinkSlot] {
        &self.sinks[..(self.header.sink_count as usize).min(MAX_SINKS)]
    }

    /// The valid app slots.
    pub fn apps(&self) -> &[AppSlot] {
        &self.apps[..(self.header.app_count as usize).min(MAX_APPS)]
    }
}

/// Copies `s` into `dst`, cut on a UTF-8 character boundary, NUL-padded.
/// Returns `true` when it had to cut.
pub fn write_str(dst: &mut [u8], s: &str) -> bool {
    let mut n = s.len().min(dst.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
    dst[n..].fill(0);
    n < s.len()
}

/// Reads a NUL-padded UTF-8 field; invalid bytes are replaced.
pub fn read_str(src: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = src.iter().position(|&b| b == 0).unwrap_or(src.len());
    String::from_utf8_lossy(&src[..end])
}

impl SinkSlot {
    /// `node.name`.
    pub fn name(&self) -> std::borrow::Cow<'_, str> {
        read_str(&self.name)
    }
    /// `node.description`.
    pub fn description(&self) -> std::borrow::Cow<'_, str> {
        read_str(&self.description)
    }
    /// Whether a flag of [`sink_flags`] is set.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
    /// What the sink is.
    pub fn kind(&self) -> SinkKind {
        SinkKind::from_u32(self.kind)
    }
    /// A channel's current output (`node.name`), if any.
    pub fn output(&self) -> Option<std::borrow::Cow<'_, str>> {
        (self.output_id != NO_ID && self.kind() == SinkKind::Channel).then(|| read_str(&self.output))
    }
}

impl AppSlot {
    /// The app name.
    pub fn name(&self) -> std::borrow::Cow<'_, str> {
        read_str(&self.name)
    }
    /// The sink the app plays to.
    pub fn sink(&self) -> std::borrow::Cow<'_, str> {
        read_str(&self.sink)
    }
    /// The sink we route the app to.
    pub fn target(&self) -> std::borrow::Cow<'_, str> {
        read_str(&self.target)
    }
    /// The stream ids held in the slot.
    pub fn stream_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.stream_ids.iter().copied().filter(|&id| id != NO_ID)
    }
    /// Whether a flag of [`app_flags`] is set.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn header_offsets() {
        assert_eq!(size_of::<Header>(), 64);
        assert_eq!(offset_of!(Header, magic), 0);
        assert_eq!(offset_of!(Header, version), 4);
        assert_eq!(offset_of!(Header, generation), 8);
        assert_eq!(offset_of!(Header, last_update_ns), 16);
        assert_eq!(offset_of!(Header, flags), 24);
        assert_eq!(offset_of!(Header, sink_count), 28);
        assert_eq!(offset_of!(Header, app_count), 32);
        assert_eq!(offset_of!(Header, total_sinks), 36);
        assert_eq!(offset_of!(Header, total_apps), 40);
        assert_eq!(offset_of!(Header, daemon_pid), 44);
        assert_eq!(offset_of!(Header, file_size), 48);
        assert_eq!(offset_of!(Header, reserved), 52);
    }

    #[test]
    fn sink_slot_offsets() {
        assert_eq!(size_of::<SinkSlot>(), 256);
        assert_eq!(offset_of!(SinkSlot, id), 0);
        assert_eq!(offset_of!(SinkSlot, flags), 4);
        assert_eq!(offset_of!(SinkSlot, volume), 8);
        assert_eq!(offset_of!(SinkSlot, channels), 12);
        assert_eq!(offset_of!(SinkSlot, serial), 16);
        assert_eq!(offset_of!(SinkSlot, name), 24);
        assert_eq!(offset_of!(SinkSlot, description), 88);
        assert_eq!(offset_of!(SinkSlot, kind), 200);
        assert_eq!(offset_of!(SinkSlot, output_id), 204);
        assert_eq!(offset_of!(SinkSlot, output), 208);
    }

    #[test]
    fn app_slot_offsets() {
        assert_eq!(size_of::<AppSlot>(), 256);
        assert_eq!(offset_of!(AppSlot, flags), 0);
        assert_eq!(offset_of!(AppSlot, stream_count), 4);
        assert_eq!(offset_of!(AppSlot, volume), 8);
        assert_eq!(offset_of!(AppSlot, target_source), 12);
        assert_eq!(offset_of!(AppSlot, stream_ids), 16);
        assert_eq!(offset_of!(AppSlot, name), 48);
        assert_eq!(offset_of!(AppSlot, sink), 128);
        assert_eq!(offset_of!(AppSlot, target), 192);
    }

    #[test]
    fn snapshot_offsets() {
        assert_eq!(offset_of!(Snapshot, header), 0);
        assert_eq!(offset_of!(Snapshot, sinks), 64);
        assert_eq!(offset_of!(Snapshot, apps), 64 + 8 * 256);
        assert_eq!(SNAPSHOT_SIZE, 64 + 8 * 256 + 128 * 256);
        assert_eq!(SNAPSHOT_SIZE % 8, 0);
        assert_eq!(std::mem::align_of::<Snapshot>(), 8);
    }

    #[test]
    fn magic_spells_pvms() {
        assert_eq!(&MAGIC.to_le_bytes(), b"PVMS");
    }

    #[test]
    fn truncates_on_char_boundary() {
        let mut buf = [0u8; 5];
        // "aé€" is 1 + 2 + 3 bytes: only "aé" (3 bytes) fits in 5.
        assert!(write_str(&mut buf, "aé€"));
        assert_eq!(read_str(&buf), "aé");
        assert_eq!(&buf[3..], &[0, 0]);
        assert!(!write_str(&mut buf, "abcde"));
        assert_eq!(read_str(&buf), "abcde");
        assert!(!write_str(&mut buf, ""));
        assert_eq!(buf, [0; 5]);
    }

    #[test]
    fn long_multibyte_name_is_cut_and_valid() {
        let name = "ü".repeat(150); // 300 bytes
        let mut field = [0u8; APP_NAME_LEN];
        assert!(write_str(&mut field, &name));
        let back = read_str(&field);
        assert_eq!(back.len(), APP_NAME_LEN);
        assert!(name.starts_with(&*back));
    }
}
