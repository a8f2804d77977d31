//! [`Recorder`]: listens to what a sink plays, through its monitor.
//!
//! A capture stream (F32 stereo 48 kHz) on the monitor of one sink, run by
//! a PipeWire client of its own on its own thread (like the
//! [`GraphWatcher`](crate::GraphWatcher)). For every buffer it receives it
//! keeps a [`BufferRecord`]: when it arrived, where it lies in the stream
//! and how loud it was. The measurements ([`Recorder::rms_between`],
//! [`Recorder::longest_gap_between`], ...) are pure functions of those
//! records ([`rms_of`], [`longest_gap`]).

use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pipewire as pw;
use pw::properties::PropertiesBox;
use pw::spa;
use pw::stream::{StreamBox, StreamFlags};

use crate::bed::{dump_with, TestBed};
use crate::error::{Error, Result};
use crate::sinks;
use crate::wait::POLL_INTERVAL;

/// Frames per second of the capture stream.
pub const RECORD_RATE: u32 = 48_000;
/// Channels of the capture stream (front left, front right).
const CHANNELS: usize = 2;
/// Bytes per frame: F32 samples.
const FRAME_BYTES: usize = CHANNELS * std::mem::size_of::<f32>();
/// How long [`TestBed::record`] waits for the capture thread to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One buffer the recorder received.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BufferRecord {
    /// When the recorder's thread got it (monotonic clock).
    pub at: Instant,
    /// The stream position of its first frame: the frames of every earlier buffer.
    pub position: u64,
    /// Its length in frames.
    pub frames: u32,
    /// The sum of the squares of all its samples, both channels.
    pub sum_squares: f64,
    /// The largest absolute sample value.
    pub peak: f32,
}

impl BufferRecord {
    /// The RMS of its samples, both channels; 0 for an empty buffer.
    pub fn rms(&self) -> f32 {
        if self.frames == 0 {
            return 0.0;
        }
        (self.sum_squares / (f64::from(self.frames) * CHANNELS as f64)).sqrt() as f32
    }

    /// The stream position just after its last frame.
    pub fn end(&self) -> u64 {
        self.position + u64::from(self.frames)
    }
}

/// The longest gap in a recording window: see [`longest_gap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Gap {
    /// Its length in frames (at 48 kHz): silent frames plus frames that never arrived.
    pub frames: u64,
    /// How many silent buffers it holds (0 when it is only missing time).
    pub buffers: usize,
    /// The typical buffer size of the window in frames (the median), 0 without buffers.
    pub quantum: u32,
}

impl Gap {
    /// The gap's length as a duration at 48 kHz.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.frames as f64 / f64::from(RECORD_RATE))
    }
}

/// The records whose arrival time lies in `from..=to` (`records` in arrival order).
fn window(records: &[BufferRecord], from: Instant, to: Instant) -> std::ops::Range<usize> {
    let start = records.partition_point(|r| r.at < from);
    let end = records.partition_point(|r| r.at <= to).max(start);
    start..end
}

/// The RMS over all samples of `records` (both channels), `None` without frames.
pub fn rms_of(records: &[BufferRecord]) -> Option<f32> {
    let frames: u64 = records.iter().map(|r| u64::from(r.frames)).sum();
    if frames == 0 {
        return None;
    }
    let sum: f64 = records.iter().map(|r| r.sum_squares).sum();
    Some((sum / (frames as f64 * CHANNELS as f64)).sqrt() as f32)
}

/// The RMS of the buffers (in arrival order) that arrived in `from..=to`; `None` if none did.
pub fn rms_between(records: &[BufferRecord], from: Instant, to: Instant) -> Option<f32> {
    rms_of(&records[window(records, from, to)])
}

/// The median buffer size, 0 without buffers.
fn median_frames(records: &[BufferRecord]) -> u32 {
    let mut sizes: Vec<u32> = records.iter().map(|r| r.frames).collect();
    sizes.sort_unstable();
    sizes.get(sizes.len() / 2).copied().unwrap_or(0)
}

/// Seconds from `earlier` to `later`, 0 if `later` is not later.
fn seconds(earlier: Instant, later: Instant) -> f64 {
    later.saturating_duration_since(earlier).as_secs_f64()
}

/// The longest gap in the signal among the buffers (in arrival order)
/// that arrived in `from..=to`.
///
/// A gap is the stretch between two *sounding* buffers (RMS at least
/// `threshold`), or between one and an end of the window. It counts
///
/// * the frames of the silent buffers in it (RMS below `threshold`): exact,
///   however the buffers were delivered; plus
/// * the frames that never arrived: time during which the sink's monitor
///   delivered nothing (the sink was paused or suspended, the recorder
///   lost buffers). The recorder measures this with both clocks: for each
///   buffer *i*, `behind(i)` = (arrival − first arrival) × 48 kHz − frames
///   received up to and including *i*. Audio that flows steadily keeps
///   `behind` constant; frames that never come raise it for good; a buffer
///   that merely arrives late (the recorder's thread was slow) raises it
///   only until the buffers queued behind it arrive. So the recorder takes
///   the lower envelope (the smallest `behind` of this and every later
///   buffer of the whole recording), and the frames missing before buffer
///   *i* are how much that envelope rose since the buffer before; only the
///   part of that time inside the window counts. Buffers that arrive
///   after `to` count this way too (for the time up to `to`), but if none
///   has arrived yet, time without buffers at the end of the window is not
///   seen. The missing frames of one gap count only from half the window's
///   quantum on, so scheduling noise is not a gap; a silent buffer always is.
///
/// So `frames` = silent frames + missing frames of the gap. A window with
/// no buffer at all is one gap as long as the window. A gap shorter than
/// half a quantum with no silent buffer reads as no gap (`frames == 0`).
pub fn longest_gap(records: &[BufferRecord], from: Instant, to: Instant, threshold: f32) -> Gap {
    let range = window(records, from, to);
    let quantum = median_frames(&records[range.clone()]);
    let rate = f64::from(RECORD_RATE);
    let Some(first) = records.first() else {
        return Gap { frames: (seconds(from, to) * rate).round() as u64, buffers: 0, quantum };
    };
    // behind(i) and its lower envelope from the right.
    let behind = |r: &BufferRecord| seconds(first.at, r.at) * rate - (r.end() - first.position) as f64;
    let mut envelope = vec![0.0; records.len()];
    let mut lowest = f64::INFINITY;
    for (i, r) in records.iter().enumerate().rev() {
        lowest = lowest.min(behind(r));
        envelope[i] = lowest;
    }
    // The frames missing just before record i, within the window.
    let missing_before = |i: usize| -> f64 {
        if i == 0 {
            return 0.0;
        }
        let rose = (envelope[i] - envelope[i - 1]).max(0.0);
        let inside = seconds(records[i - 1].at.max(from), records[i].at.min(to)) * rate;
        rose.min(inside)
    };
    if range.is_empty() && range.end == records.len() {
        // Nothing in the window and nothing after it yet.
        return Gap { frames: (seconds(from, to) * rate).round() as u64, buffers: 0, quantum };
    }

    let tolerance = f64::from(quantum) / 2.0;
    let mut longest = Gap { frames: 0, buffers: 0, quantum };
    let (mut silent, mut buffers, mut missing) = (0u64, 0usize, 0.0f64);
    let mut close = |silent: &mut u64, buffers: &mut usize, missing: &mut f64| {
        let missing_counted = if *missing >= tolerance && *missing > 0.0 { missing.round() as u64 } else { 0 };
        let frames = *silent + missing_counted;
        if frames > longest.frames || (frames == longest.frames && *buffers > longest.buffers) {
            longest = Gap { frames, buffers: *buffers, quantum };
        }
        (*silent, *buffers, *missing) = (0, 0, 0.0);
    };
    for i in range.clone() {
        let record = &records[i];
        missing += missing_before(i);
        if record.rms() < threshold {
            silent += u64::from(record.frames);
            buffers += 1;
        } else {
            close(&mut silent, &mut buffers, &mut missing);
        }
    }
    // The first buffer after the window tells what is missing up to `to`.
    if range.end < records.len() {
        missing += missing_before(range.end);
    }
    close(&mut silent, &mut buffers, &mut missing);
    longest
}

/// What the recorder's thread and its owner share.
#[derive(Default)]
struct State {
    records: Vec<BufferRecord>,
    /// The capture stream's node id, once it has one.
    node_id: Option<u32>,
    /// Why the stream failed, if it did.
    error: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }
}

/// Records the signal a sink plays: a capture stream on the sink's monitor,
/// started with [`TestBed::record`].
///
/// The stream has `stream.capture.sink = true` and `target.object` = the
/// sink's name, `node.dont-reconnect`, `node.dont-fallback` and
/// `node.dont-move`, so it listens to that sink or to nothing (never to
/// another sink). It is an ordinary (not passive) stream: like a sound card
/// that is always on, it keeps the sink running, so silence arrives as
/// buffers of zeros; it also keeps running whatever plays into the sink
/// through ordinary links, so do not keep one in a test of suspension or
/// idle CPU ([`TestBed::record_passive`] does not).
///
/// The client has its own PipeWire main loop on its own thread; buffers
/// are taken on PipeWire's data thread of that client (`RT_PROCESS`), as
/// soon as they are ready, so a busy machine rarely makes it lose one.
/// Each buffer becomes a [`BufferRecord`] (all are kept, a few kB per
/// second). Levels are RMS values over both channels: a sine of amplitude
/// *a* reads as *a* / √2.
///
/// It does not survive [`TestBed::restart_pipewire`] (its connection
/// goes; [`wait_level`](Self::wait_level) and
/// [`wait_connected`](Self::wait_connected) then fail): start a new one.
/// Dropping it (or [`stop`](Self::stop)) disconnects and joins the thread.
///
/// ```no_run
/// use std::time::Duration;
/// use testbed::{AppSpec, TestBed};
///
/// # fn main() -> testbed::Result<()> {
/// let mut bed = TestBed::start(&[])?;
/// bed.create_device_sink("headphones", 1000)?;
/// let recorder = bed.record("headphones")?;
/// recorder.wait_connected(Duration::from_secs(10))?;
/// let _app = bed.spawn_app(&AppSpec::new("Tone").sine(440.0).prop("target.object", "headphones"))?;
/// let level = recorder.wait_level("the tone", Duration::from_secs(10), Duration::from_millis(200), |l| l > 0.3)?;
/// assert!((level - 0.354).abs() < 0.01);
/// # Ok(())
/// # }
/// ```
pub struct Recorder {
    sink: String,
    shared: Arc<Shared>,
    env: Vec<(String, String)>,
    stop: pw::channel::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Recorder")
            .field("sink", &self.sink)
            .field("node_id", &state.node_id)
            .field("buffers", &state.records.len())
            .field("error", &state.error)
            .finish()
    }
}

impl TestBed {
    /// Starts recording what the sink named `sink_name` plays (its
    /// monitor); see [`Recorder`]. Returns once the capture stream is
    /// connected to PipeWire; [`Recorder::wait_connected`] waits until it
    /// is linked to the sink and receives buffers.
    pub fn record(&self, sink_name: &str) -> Result<Recorder> {
        sinks::validate_name(sink_name)?;
        if !self.is_running() {
            return Err(Error::NotRunning);
        }
        Recorder::start(&self.pipewire_socket().to_string_lossy(), sink_name, false, self.env())
    }

    /// [`record`](Self::record) with a passive capture stream
    /// (`node.passive = true`): it does not keep the sink running, and gets
    /// buffers only while something else does (a stream playing into the
    /// sink, or a non-passive link from its monitor). The bed's sinks are
    /// kept running by default, yet a passive recorder of an idle sink gets
    /// nothing: silence then shows as time without buffers ([`Recorder::level`]
    /// is `None`, [`Recorder::longest_gap_between`] counts it as missing),
    /// and [`Recorder::wait_connected`] waits until something plays.
    pub fn record_passive(&self, sink_name: &str) -> Result<Recorder> {
        sinks::validate_name(sink_name)?;
        if !self.is_running() {
            return Err(Error::NotRunning);
        }
        Recorder::start(&self.pipewire_socket().to_string_lossy(), sink_name, true, self.env())
    }
}

impl Recorder {
    fn start(socket: &str, sink: &str, passive: bool, env: Vec<(String, String)>) -> Result<Recorder> {
        let shared = Arc::new(Shared { state: Mutex::default(), changed: Condvar::new() });
        let (stop, stop_receiver) = pw::channel::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<(), String>>();
        let (thread_socket, thread_sink, thread_shared) = (socket.to_owned(), sink.to_owned(), Arc::clone(&shared));
        let thread = thread::Builder::new()
            .name(format!("recorder-{sink}"))
            .spawn(move || capture(&thread_socket, &thread_sink, passive, &thread_shared, stop_receiver, &ready_tx))
            .map_err(|e| Error::io("starting the recorder thread", e))?;
        let mut recorder = Recorder { sink: sink.to_owned(), shared, env, stop, thread: Some(thread) };
        match ready_rx.recv_timeout(CONNECT_TIMEOUT) {
            Ok(Ok(())) => Ok(recorder),
            Ok(Err(e)) => Err(Error::Recorder(e)),
            Err(_) => {
                // The thread may still be connecting: Drop would wait for it.
                recorder.thread.take();
                Err(Error::Timeout {
                    what: format!("the recorder of `{sink}` to connect to PipeWire"),
                    timeout: CONNECT_TIMEOUT,
                    details: String::new(),
                })
            }
        }
    }

    /// The sink it records.
    pub fn sink(&self) -> &str {
        &self.sink
    }

    /// The capture stream's node id, once PipeWire has given it one.
    pub fn node_id(&self) -> Option<u32> {
        self.shared.lock().node_id
    }

    /// A copy of every buffer record so far, in arrival order.
    pub fn records(&self) -> Vec<BufferRecord> {
        self.shared.lock().records.clone()
    }

    /// Waits until the capture stream receives buffers and is linked to
    /// the sink's monitor (and to nothing else), as `pw-dump` shows it.
    pub fn wait_connected(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no buffer received yet");
        loop {
            if let Some(error) = self.shared.lock().error.clone() {
                return Err(Error::Recorder(format!("the recorder of `{}`: {error}", self.sink)));
            }
            let (node, buffers) = {
                let state = self.shared.lock();
                (state.node_id, state.records.len())
            };
            if let (Some(node), true) = (node, buffers > 0) {
                match dump_with(&self.env) {
                    Ok(graph) => {
                        let mut sources: Vec<String> = graph
                            .links
                            .iter()
                            .filter(|l| l.input_node == node)
                            .filter_map(|l| graph.node(l.output_node).and_then(|n| n.name()))
                            .collect();
                        sources.sort();
                        sources.dedup();
                        if sources == [self.sink.as_str()] {
                            return Ok(());
                        }
                        if !sources.is_empty() {
                            return Err(Error::Recorder(format!(
                                "the recorder of `{}` (node {node}) is linked to {sources:?}",
                                self.sink
                            )));
                        }
                        last = format!("{buffers} buffers received, but node {node} has no link yet");
                    }
                    Err(e) => last = format!("pw-dump failed: {e}"),
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("the recorder to be linked to the monitor of `{}`", self.sink),
                    timeout,
                    details: format!(" ({last})"),
                });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The RMS (both channels) of the samples in the buffers that arrived
    /// in `from..=to`; `None` if no buffer did.
    pub fn rms_between(&self, from: Instant, to: Instant) -> Option<f32> {
        rms_between(&self.shared.lock().records, from, to)
    }

    /// The RMS over the last `window` ([`rms_between`](Self::rms_between) up to now).
    pub fn level(&self, window: Duration) -> Option<f32> {
        let now = Instant::now();
        let from = now.checked_sub(window).unwrap_or(now);
        self.rms_between(from, now)
    }

    /// Waits until [`level`](Self::level)`(window)` satisfies `pred` and
    /// returns that level. After `timeout` the error names `what` and the
    /// last level read.
    pub fn wait_level(
        &self,
        what: &str,
        timeout: Duration,
        window: Duration,
        pred: impl Fn(f32) -> bool,
    ) -> Result<f32> {
        let deadline = Instant::now() + timeout;
        loop {
            let level = self.level(window);
            if let Some(level) = level.filter(|&l| pred(l)) {
                return Ok(level);
            }
            if let Some(error) = self.shared.lock().error.clone() {
                return Err(Error::Recorder(format!("the recorder of `{}`: {error}", self.sink)));
            }
            if Instant::now() >= deadline {
                let last = match level {
                    Some(level) => format!("{level:.4}"),
                    None => "none (no buffer in the window)".into(),
                };
                return Err(Error::Timeout {
                    what: what.to_owned(),
                    timeout,
                    details: format!(
                        " (level of `{}` over the last {window:?}: {last}; {} buffers recorded)",
                        self.sink,
                        self.shared.lock().records.len()
                    ),
                });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The longest gap among the buffers that arrived in `from..=to`, a
    /// buffer being silent when its RMS is below `threshold`; see
    /// [`longest_gap`] for exactly what counts.
    pub fn longest_gap_between(&self, from: Instant, to: Instant, threshold: f32) -> Gap {
        longest_gap(&self.shared.lock().records, from, to, threshold)
    }

    /// Stops recording: disconnects and joins the thread.
    pub fn stop(self) {}
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The stream's properties: capture the monitor of `sink`, and only that.
fn stream_properties(sink: &str, passive: bool) -> PropertiesBox {
    let mut props = PropertiesBox::new();
    props.insert(*pw::keys::MEDIA_TYPE, "Audio");
    props.insert(*pw::keys::MEDIA_CATEGORY, "Capture");
    props.insert(*pw::keys::NODE_NAME, format!("pvm-testbed-recorder.{sink}").as_str());
    props.insert(*pw::keys::APP_NAME, "pvm-testbed-recorder");
    props.insert("target.object", sink);
    props.insert("stream.capture.sink", "true");
    props.insert("node.dont-reconnect", "true");
    props.insert("node.dont-fallback", "true");
    props.insert("node.dont-move", "true");
    if passive {
        props.insert("node.passive", "true");
    }
    props
}

/// The one format the stream accepts: F32LE, stereo FL/FR, 48 kHz.
fn format_param() -> std::result::Result<Vec<u8>, String> {
    let mut info = spa::param::audio::AudioInfoRaw::new();
    info.set_format(spa::param::audio::AudioFormat::F32LE);
    info.set_rate(RECORD_RATE);
    info.set_channels(CHANNELS as u32);
    let mut position = [0; spa::param::audio::MAX_CHANNELS];
    position[0] = spa::sys::SPA_AUDIO_CHANNEL_FL;
    position[1] = spa::sys::SPA_AUDIO_CHANNEL_FR;
    info.set_position(position);
    let object = spa::pod::Value::Object(spa::pod::Object {
        type_: spa::utils::SpaTypes::ObjectParamFormat.as_raw(),
        id: spa::param::ParamType::EnumFormat.as_raw(),
        properties: info.into(),
    });
    spa::pod::serialize::PodSerializer::serialize(std::io::Cursor::new(Vec::new()), &object)
        .map(|(cursor, _)| cursor.into_inner())
        .map_err(|e| format!("serialising the stream format: {e:?}"))
}

/// Takes the next buffer of `stream`, if there is one, and records it.
/// Runs on the client's data thread.
fn take_buffer(stream: &pw::stream::Stream, shared: &Shared) {
    let at = Instant::now();
    let Some(mut buffer) = stream.dequeue_buffer() else {
        return;
    };
    let Some(data) = buffer.datas_mut().first_mut() else {
        return;
    };
    let (offset, size) = {
        let chunk = data.chunk();
        (chunk.offset() as usize, chunk.size() as usize)
    };
    let (mut sum_squares, mut peak, mut frames) = (0.0f64, 0.0f32, 0u32);
    if let Some(bytes) = data.data() {
        let start = offset.min(bytes.len());
        let end = (start + size).min(bytes.len());
        let whole = (end - start) / FRAME_BYTES * FRAME_BYTES;
        for sample in bytes[start..start + whole].chunks_exact(4) {
            let value = f32::from_le_bytes([sample[0], sample[1], sample[2], sample[3]]);
            sum_squares += f64::from(value) * f64::from(value);
            peak = peak.max(value.abs());
        }
        frames = (whole / FRAME_BYTES) as u32;
    }
    shared.update(|state| {
        let position = state.records.last().map_or(0, BufferRecord::end);
        state.records.push(BufferRecord { at, position, frames, sum_squares, peak });
    });
}

/// The recorder's thread: connects, captures until told to stop.
/// `ready` gets `Ok` once the stream is connected, or why it failed.
fn capture(
    socket: &str,
    sink: &str,
    passive: bool,
    shared: &Arc<Shared>,
    stop: pw::channel::Receiver<()>,
    ready: &mpsc::Sender<std::result::Result<(), String>>,
) {
    pw::init();
    let connected = (|| -> std::result::Result<_, String> {
        let main_loop = pw::main_loop::MainLoopRc::new(None).map_err(|e| e.to_string())?;
        let context = pw::context::ContextRc::new(&main_loop, None).map_err(|e| e.to_string())?;
        let core = context
            .connect_rc(Some(pw::properties::properties! { *pw::keys::REMOTE_NAME => socket }))
            .map_err(|e| format!("cannot connect to {socket}: {e}"))?;
        Ok((main_loop, context, core))
    })();
    let (main_loop, _context, core) = match connected {
        Ok(parts) => parts,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };

    let on_error = Arc::clone(shared);
    let quit_on_error = main_loop.clone();
    let core_listener = core
        .add_listener_local()
        .error(move |id, _seq, res, message| {
            if id == pw::core::PW_ID_CORE {
                on_error.update(|state| state.error = Some(format!("PipeWire error {res}: {message}")));
                quit_on_error.quit();
            }
        })
        .register();

    let stream = match StreamBox::new(&core, "pvm-testbed-recorder", stream_properties(sink, passive)) {
        Ok(stream) => stream,
        Err(e) => {
            let _ = ready.send(Err(format!("creating the capture stream: {e}")));
            return;
        }
    };
    let on_buffer = Arc::clone(shared);
    let on_state = Arc::clone(shared);
    let listener = stream
        .add_local_listener_with_user_data(())
        .process(move |stream, _| take_buffer(stream, &on_buffer))
        .state_changed(move |stream, _, _old, new| {
            let node = stream.node_id();
            on_state.update(|state| {
                if node != pw::sys::PW_ID_ANY {
                    state.node_id = Some(node);
                }
                if let pw::stream::StreamState::Error(message) = new {
                    state.error = Some(format!("stream error: {message}"));
                }
            });
        })
        .register();
    let listener = match listener {
        Ok(listener) => listener,
        Err(e) => {
            let _ = ready.send(Err(format!("listening to the capture stream: {e}")));
            return;
        }
    };
    let connected = format_param().and_then(|format| {
        let pod = spa::pod::Pod::from_bytes(&format).ok_or("the serialised format is not a pod")?;
        stream
            .connect(
                spa::utils::Direction::Input,
                None,
                StreamFlags::AUTOCONNECT | StreamFlags::MAP_BUFFERS | StreamFlags::RT_PROCESS,
                &mut [pod],
            )
            .map_err(|e| format!("connecting the capture stream: {e}"))
    });
    if let Err(e) = connected {
        let _ = ready.send(Err(e));
        return;
    }

    let quit = main_loop.clone();
    let _stop = stop.attach(main_loop.loop_(), move |()| quit.quit());
    let _ = ready.send(Ok(()));
    main_loop.run();
    // Each listener goes before what it listens to.
    drop(listener);
    if let Err(e) = stream.disconnect() {
        tracing::debug!("recorder of `{sink}`: disconnecting: {e}");
    }
    drop(stream);
    drop(core_listener);
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: u32 = 1024;

    /// Seconds per quantum.
    fn q_secs() -> f64 {
        f64::from(Q) / f64::from(RECORD_RATE)
    }

    /// A recording built from `(arrival offset in seconds, frames, rms)`.
    fn records(start: Instant, buffers: &[(f64, u32, f32)]) -> Vec<BufferRecord> {
        let mut position = 0;
        buffers
            .iter()
            .map(|&(offset, frames, rms)| {
                let sum_squares = f64::from(rms) * f64::from(rms) * f64::from(frames) * CHANNELS as f64;
                let record = BufferRecord {
                    at: start + Duration::from_secs_f64(offset),
                    position,
                    frames,
                    sum_squares,
                    peak: rms * std::f32::consts::SQRT_2,
                };
                position += u64::from(frames);
                record
            })
            .collect()
    }

    /// `count` full-quantum buffers arriving on time from `first` (in quanta), all at `rms`.
    fn steady(first: usize, count: usize, rms: f32) -> Vec<(f64, u32, f32)> {
        (first..first + count).map(|i| ((i + 1) as f64 * q_secs(), Q, rms)).collect()
    }

    fn at(start: Instant, quanta: f64) -> Instant {
        start + Duration::from_secs_f64(quanta * q_secs())
    }

    #[test]
    fn rms_combines_buffers_by_their_samples() {
        let start = Instant::now();
        let recs = records(start, &[(0.01, 100, 0.5), (0.02, 300, 0.0)]);
        // (0.25 * 100) / 400 = 0.0625 -> 0.25
        assert!((rms_of(&recs).unwrap() - 0.25).abs() < 1e-6);
        assert!((recs[0].rms() - 0.5).abs() < 1e-6);
        assert_eq!(rms_of(&[]), None);
        assert_eq!(rms_between(&recs, start, start + Duration::from_millis(15)), Some(recs[0].rms()));
        assert_eq!(rms_between(&recs, start + Duration::from_millis(30), start + Duration::from_secs(1)), None);
    }

    #[test]
    fn steady_sound_has_no_gap_even_with_jitter() {
        let start = Instant::now();
        let mut buffers = steady(0, 200, 0.35);
        // Late arrivals (up to 3 quanta) catching up later, as a busy thread would.
        for (i, b) in buffers.iter_mut().enumerate() {
            let late = match i % 37 {
                0 => 3.0,
                1 => 2.0,
                2 => 1.0,
                _ => (i % 5) as f64 * 0.05,
            };
            b.0 += late * q_secs();
        }
        let recs = records(start, &buffers);
        let gap = longest_gap(&recs, at(start, 10.0), at(start, 190.0), 0.01);
        assert_eq!(gap, Gap { frames: 0, buffers: 0, quantum: Q });
    }

    #[test]
    fn silent_buffers_are_a_gap_of_their_frames() {
        let start = Instant::now();
        let mut buffers = steady(0, 50, 0.35);
        buffers.extend(steady(50, 5, 0.0));
        buffers.extend(steady(55, 50, 0.35));
        buffers.extend(steady(105, 2, 0.0));
        buffers.extend(steady(107, 50, 0.35));
        let recs = records(start, &buffers);
        let gap = longest_gap(&recs, at(start, 10.0), at(start, 150.0), 0.01);
        assert_eq!(gap, Gap { frames: 5 * u64::from(Q), buffers: 5, quantum: Q });
        // A window that misses the long one sees the short one.
        let gap = longest_gap(&recs, at(start, 80.0), at(start, 150.0), 0.01);
        assert_eq!(gap.frames, 2 * u64::from(Q));
    }

    #[test]
    fn time_without_buffers_is_a_gap() {
        let start = Instant::now();
        let mut buffers = steady(0, 50, 0.35);
        // Nothing for 20 quanta, then the stream goes on where it was.
        buffers.extend(steady(70, 50, 0.35));
        let recs = records(start, &buffers);
        let gap = longest_gap(&recs, at(start, 10.0), at(start, 110.0), 0.01);
        assert_eq!(gap.buffers, 0);
        assert!(gap.frames.abs_diff(20 * u64::from(Q)) <= 1, "{gap:?}");
        assert!((gap.duration().as_secs_f64() - 20.0 * q_secs()).abs() < 1e-3);
    }

    #[test]
    fn silence_and_missing_time_add_up() {
        let start = Instant::now();
        let mut buffers = steady(0, 50, 0.35);
        buffers.extend(steady(50, 4, 0.0));
        buffers.extend(steady(64, 3, 0.0)); // 10 quanta without buffers between
        buffers.extend(steady(67, 50, 0.35));
        let recs = records(start, &buffers);
        let gap = longest_gap(&recs, at(start, 10.0), at(start, 110.0), 0.01);
        assert_eq!(gap.buffers, 7);
        assert!(gap.frames.abs_diff(17 * u64::from(Q)) <= 1, "{gap:?}");
    }

    #[test]
    fn only_the_missing_time_inside_the_window_counts() {
        let start = Instant::now();
        let mut buffers = steady(0, 50, 0.35);
        buffers.extend(steady(70, 50, 0.35));
        let recs = records(start, &buffers);
        // The window starts 5 quanta before the sound comes back.
        let gap = longest_gap(&recs, at(start, 66.0), at(start, 110.0), 0.01);
        assert!(gap.frames.abs_diff(5 * u64::from(Q)) <= 1, "{gap:?}");
        // The window ends 8 quanta into the silence: the buffer after it tells.
        let gap = longest_gap(&recs, at(start, 10.0), at(start, 58.0), 0.01);
        assert!(gap.frames.abs_diff(8 * u64::from(Q)) <= 1, "{gap:?}");
    }

    #[test]
    fn a_window_without_buffers_is_one_gap() {
        let start = Instant::now();
        let recs = records(start, &steady(0, 10, 0.35));
        let from = at(start, 20.0);
        let gap = longest_gap(&recs, from, from + Duration::from_secs(1), 0.01);
        assert_eq!(gap, Gap { frames: u64::from(RECORD_RATE), buffers: 0, quantum: 0 });
        let gap = longest_gap(&[], from, from + Duration::from_millis(500), 0.01);
        assert_eq!(gap.frames, u64::from(RECORD_RATE) / 2);
    }

    #[test]
    fn quantum_is_the_median_buffer_size() {
        let start = Instant::now();
        let buffers: Vec<_> =
            [256, 1024, 1024, 1024, 512].iter().enumerate().map(|(i, &f)| (i as f64 * 0.02 + 0.02, f, 0.3)).collect();
        let recs = records(start, &buffers);
        assert_eq!(median_frames(&recs), 1024);
        assert_eq!(recs[4].position, 256 + 3 * 1024);
    }
}
