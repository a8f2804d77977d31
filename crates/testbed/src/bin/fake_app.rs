//! `pvm-fake-app`: a stand-in for a desktop application that plays audio.
//!
//! Connects to PipeWire (`$XDG_RUNTIME_DIR/pipewire-0`), opens one or more
//! playback streams (`Stream/Output/Audio`, F32LE stereo 48 kHz, autoconnected
//! by the session manager) and plays silence on them until it is killed, or,
//! with `--sine HZ`, a continuous sine of that frequency (the same on both
//! channels, amplitude `--amplitude`, 0.5 by default).
//! The streams carry `application.name`, `application.process.binary`,
//! `application.process.id`, `media.role`, `media.name` and any `--prop`.
//!
//! Exits with status 1 if it cannot connect or the connection is lost.

use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use clap::Parser;
use pipewire as pw;
use pw::properties::PropertiesBox;
use pw::spa;
use pw::stream::{StreamBox, StreamFlags, StreamListener};

/// Frames per second of every stream.
const RATE: u32 = 48_000;
/// Channels of every stream (front left, front right).
const CHANNELS: u32 = 2;
/// Bytes per frame: F32 samples.
const FRAME_BYTES: usize = CHANNELS as usize * std::mem::size_of::<f32>();

/// Plays silence on PipeWire playback streams, looking like a desktop application.
#[derive(Debug, Parser)]
#[command(name = "pvm-fake-app", version)]
struct Args {
    /// application.name of the streams (with --distinct, the prefix).
    #[arg(long)]
    name: String,
    /// application.process.binary of the streams.
    #[arg(long)]
    binary: Option<String>,
    /// media.role of the streams (Music, Game, Communication, ...).
    #[arg(long)]
    role: Option<String>,
    /// media.name of the streams.
    #[arg(long, default_value = "Playback")]
    media_name: String,
    /// Number of streams, all with the same application.name.
    #[arg(long, default_value_t = 1, conflicts_with = "distinct")]
    streams: usize,
    /// Number of streams, each its own application: stream i (from 1) is named "NAME i".
    #[arg(long, value_name = "N")]
    distinct: Option<usize>,
    /// An extra stream property, e.g. node.dont-move=true (repeatable).
    #[arg(long = "prop", value_name = "KEY=VALUE", value_parser = parse_prop)]
    props: Vec<(String, String)>,
    /// Play a sine of this frequency (Hz) instead of silence.
    #[arg(long, value_name = "HZ", value_parser = parse_frequency)]
    sine: Option<f32>,
    /// Peak amplitude of the sine (0..=1).
    #[arg(long, value_name = "A", default_value_t = 0.5, requires = "sine", value_parser = parse_amplitude)]
    amplitude: f32,
}

fn parse_frequency(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(hz) if hz > 0.0 && hz < RATE as f32 / 2.0 => Ok(hz),
        _ => Err(format!("expected a frequency between 0 and {} Hz, got {text:?}", RATE / 2)),
    }
}

fn parse_amplitude(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(a) if (0.0..=1.0).contains(&a) => Ok(a),
        _ => Err(format!("expected an amplitude between 0 and 1, got {text:?}")),
    }
}

fn parse_prop(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

impl Args {
    /// The application.name of each stream to open.
    fn stream_app_names(&self) -> Vec<String> {
        match self.distinct {
            Some(count) => (1..=count).map(|i| format!("{} {i}", self.name)).collect(),
            None => vec![self.name.clone(); self.streams],
        }
    }

    /// The properties of a stream whose application is called `app_name`.
    fn stream_properties(&self, app_name: &str) -> PropertiesBox {
        let mut props = PropertiesBox::new();
        props.insert(*pw::keys::MEDIA_TYPE, "Audio");
        props.insert(*pw::keys::MEDIA_CATEGORY, "Playback");
        props.insert(*pw::keys::MEDIA_NAME, self.media_name.as_str());
        props.insert(*pw::keys::APP_NAME, app_name);
        props.insert(*pw::keys::APP_PROCESS_ID, std::process::id().to_string().as_str());
        if let Some(binary) = &self.binary {
            props.insert(*pw::keys::APP_PROCESS_BINARY, binary.as_str());
        }
        if let Some(role) = &self.role {
            props.insert(*pw::keys::MEDIA_ROLE, role.as_str());
        }
        for (key, value) in &self.props {
            props.insert(key.as_str(), value.as_str());
        }
        props
    }

    /// What each stream plays, from the start.
    fn signal(&self) -> Signal {
        match self.sine {
            Some(hz) => Signal::Sine { hz, amplitude: self.amplitude, phase: 0.0 },
            None => Signal::Silence,
        }
    }

    /// The properties of the connection itself (the PipeWire client object).
    fn client_properties(&self) -> PropertiesBox {
        let mut props = PropertiesBox::new();
        props.insert(*pw::keys::APP_NAME, self.name.as_str());
        if let Some(binary) = &self.binary {
            props.insert(*pw::keys::APP_PROCESS_BINARY, binary.as_str());
        }
        props
    }
}

/// The one format the streams offer: F32LE, stereo FL/FR, 48 kHz.
fn format_param() -> anyhow::Result<Vec<u8>> {
    let mut info = spa::param::audio::AudioInfoRaw::new();
    info.set_format(spa::param::audio::AudioFormat::F32LE);
    info.set_rate(RATE);
    info.set_channels(CHANNELS);
    let mut position = [0; spa::param::audio::MAX_CHANNELS];
    position[0] = spa::sys::SPA_AUDIO_CHANNEL_FL;
    position[1] = spa::sys::SPA_AUDIO_CHANNEL_FR;
    info.set_position(position);
    let object = spa::pod::Value::Object(spa::pod::Object {
        type_: spa::utils::SpaTypes::ObjectParamFormat.as_raw(),
        id: spa::param::ParamType::EnumFormat.as_raw(),
        properties: info.into(),
    });
    let (cursor, _) = spa::pod::serialize::PodSerializer::serialize(std::io::Cursor::new(Vec::new()), &object)
        .map_err(|e| anyhow!("serialising the stream format: {e:?}"))?;
    Ok(cursor.into_inner())
}

/// What a stream plays.
#[derive(Debug, Clone, Copy)]
enum Signal {
    Silence,
    /// A sine; `phase` (in cycles, 0..1) carries over from one buffer to the next.
    Sine {
        hz: f32,
        amplitude: f32,
        phase: f64,
    },
}

impl Signal {
    /// How a stream playing this connects: a sine's buffers are filled on
    /// PipeWire's data thread, silence's on the main loop.
    fn flags(&self) -> StreamFlags {
        let flags = StreamFlags::AUTOCONNECT | StreamFlags::MAP_BUFFERS;
        match self {
            Signal::Silence => flags,
            Signal::Sine { .. } => flags | StreamFlags::RT_PROCESS,
        }
    }

    /// The next sample (the same for every channel of a frame); advances the phase.
    fn next_sample(&mut self) -> f32 {
        match self {
            Signal::Silence => 0.0,
            Signal::Sine { hz, amplitude, phase } => {
                let value = (f64::from(*amplitude) * (std::f64::consts::TAU * *phase).sin()) as f32;
                *phase = (*phase + f64::from(*hz) / f64::from(RATE)).fract();
                value
            }
        }
    }

    /// Fills `bytes` (whole interleaved F32LE frames) and advances the phase.
    fn fill(&mut self, bytes: &mut [u8]) {
        if let Signal::Silence = self {
            bytes.fill(0);
            return;
        }
        for frame in bytes.chunks_exact_mut(FRAME_BYTES) {
            let sample = self.next_sample().to_le_bytes();
            for out in frame.chunks_exact_mut(sample.len()) {
                out.copy_from_slice(&sample);
            }
        }
    }
}

/// Fills the next buffer of `stream`, if one is free, with the next piece of
/// `signal`. Silence fills the whole buffer (fewer wake-ups); a sine only as
/// many frames as the stream asks for (a quantum), so what it plays is heard
/// at once, and runs on the data thread ([`Signal::flags`]) so a busy
/// machine does not starve it.
fn play(stream: &pw::stream::Stream, signal: &mut Signal) {
    let Some(mut buffer) = stream.dequeue_buffer() else {
        return;
    };
    let requested = buffer.requested() as usize;
    let Some(data) = buffer.datas_mut().first_mut() else {
        return;
    };
    let frames = match data.data() {
        Some(bytes) => {
            let mut frames = bytes.len() / FRAME_BYTES;
            if requested > 0 && !matches!(signal, Signal::Silence) {
                frames = frames.min(requested);
            }
            signal.fill(&mut bytes[..frames * FRAME_BYTES]);
            frames
        }
        None => 0,
    };
    let chunk = data.chunk_mut();
    *chunk.offset_mut() = 0;
    *chunk.stride_mut() = FRAME_BYTES as i32;
    *chunk.size_mut() = (frames * FRAME_BYTES) as u32;
}

fn run(args: &Args) -> anyhow::Result<()> {
    pw::init();
    let main_loop = pw::main_loop::MainLoopRc::new(None).context("creating the main loop")?;
    let context = pw::context::ContextRc::new(&main_loop, Some(args.client_properties()))
        .context("creating the PipeWire context")?;
    let core =
        context.connect_rc(None).context("connecting to PipeWire (is XDG_RUNTIME_DIR set and PipeWire running?)")?;

    let quit_loop = main_loop.clone();
    let _core_listener = core
        .add_listener_local()
        .error(move |id, _seq, res, message| {
            if id == pw::core::PW_ID_CORE {
                eprintln!("pvm-fake-app: PipeWire error {res}: {message}");
                quit_loop.quit();
            }
        })
        .register();

    let format = format_param()?;
    let mut streams: Vec<(StreamBox<'_>, StreamListener<Signal>)> = Vec::new();
    for app_name in args.stream_app_names() {
        let stream = StreamBox::new(&core, &args.media_name, args.stream_properties(&app_name))
            .with_context(|| format!("creating a stream for {app_name:?}"))?;
        let listener = stream
            .add_local_listener_with_user_data(args.signal())
            .process(play)
            .register()
            .context("listening to a stream")?;
        let pod = spa::pod::Pod::from_bytes(&format).ok_or_else(|| anyhow!("the serialised format is not a pod"))?;
        stream
            .connect(spa::utils::Direction::Output, None, args.signal().flags(), &mut [pod])
            .with_context(|| format!("connecting the stream of {app_name:?}"))?;
        streams.push((stream, listener));
    }

    main_loop.run();
    Err(anyhow!("the connection to PipeWire was lost"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pvm-fake-app: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_is_continuous_across_buffers_and_the_same_on_both_channels() {
        let mut split = Signal::Sine { hz: 440.0, amplitude: 0.5, phase: 0.0 };
        let mut whole = split;
        let mut first = vec![0; FRAME_BYTES * 100];
        let mut second = vec![0; FRAME_BYTES * 156];
        split.fill(&mut first);
        split.fill(&mut second);
        let mut all = vec![0; FRAME_BYTES * 256];
        whole.fill(&mut all);
        first.extend(second);
        let samples = |bytes: &[u8]| -> Vec<f32> {
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        };
        let (first, all) = (samples(&first), samples(&all));
        for (a, b) in first.iter().zip(&all) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert!(all.chunks_exact(2).all(|f| f[0] == f[1]));
        let peak = all.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.49 && peak <= 0.5, "{peak}");
    }

    #[test]
    fn silence_is_zero() {
        let mut bytes = vec![1; FRAME_BYTES * 4];
        Signal::Silence.fill(&mut bytes);
        assert!(bytes.iter().all(|&b| b == 0));
    }
}
