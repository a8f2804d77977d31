//! Fake applications: processes that play silence (or a sine) on PipeWire
//! playback streams with the properties a real desktop application would set.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::bed::{dump_with, TestBed};
use crate::dirs::tail_of;
use crate::error::{Error, Result};
use crate::graph::STREAM_OUTPUT_AUDIO;
use crate::locate::{self, FAKE_APP};
use crate::process::{GroupChild, DEFAULT_GRACE};
use crate::wait::POLL_INTERVAL;

/// What a fake application looks like to PipeWire.
///
/// ```
/// use testbed::AppSpec;
/// let spec = AppSpec::new("Music Player").binary("music-player").role("Music").streams(2);
/// assert_eq!(spec.streams, 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec {
    /// `application.name` of every stream (with `distinct_names`, a prefix).
    pub name: String,
    /// `application.process.binary`; libpipewire's own value
    /// (`pvm-fake-app`) when `None`.
    pub binary: Option<String>,
    /// `media.role`, e.g. `Music`, `Game`, `Communication`.
    pub role: Option<String>,
    /// `media.name`; `"Playback"` when `None`.
    pub media_name: Option<String>,
    /// How many playback streams the process opens.
    pub streams: usize,
    /// Give stream *i* (from 1) the `application.name` "`name` *i*", so one
    /// process stands in for `streams` different applications.
    pub distinct_names: bool,
    /// More stream properties, e.g. `("node.dont-move", "true")`.
    pub extra_props: Vec<(String, String)>,
    /// Play a sine of this frequency (Hz) on every stream instead of
    /// silence: the same on both channels, continuous across buffers.
    pub sine: Option<f32>,
    /// The sine's peak amplitude; the fake app's default (0.5) when `None`.
    pub amplitude: Option<f32>,
}

impl AppSpec {
    /// An application called `name` with one stream and nothing else set.
    pub fn new(name: &str) -> AppSpec {
        AppSpec {
            name: name.to_owned(),
            binary: None,
            role: None,
            media_name: None,
            streams: 1,
            distinct_names: false,
            extra_props: Vec::new(),
            sine: None,
            amplitude: None,
        }
    }

    /// Sets `application.process.binary`.
    pub fn binary(mut self, binary: &str) -> AppSpec {
        self.binary = Some(binary.to_owned());
        self
    }

    /// Sets `media.role`.
    pub fn role(mut self, role: &str) -> AppSpec {
        self.role = Some(role.to_owned());
        self
    }

    /// Sets `media.name`.
    pub fn media_name(mut self, media_name: &str) -> AppSpec {
        self.media_name = Some(media_name.to_owned());
        self
    }

    /// Opens `count` streams, all with the same `application.name`.
    pub fn streams(mut self, count: usize) -> AppSpec {
        self.streams = count;
        self
    }

    /// Opens `count` streams named "`name` 1" ... "`name` `count`": `count` apps in one process.
    pub fn distinct(mut self, count: usize) -> AppSpec {
        self.streams = count;
        self.distinct_names = true;
        self
    }

    /// Adds a stream property.
    pub fn prop(mut self, key: &str, value: &str) -> AppSpec {
        self.extra_props.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Plays a sine of `hz` Hz (amplitude 0.5 unless [`amplitude`](Self::amplitude) says otherwise)
    /// instead of silence.
    pub fn sine(mut self, hz: f32) -> AppSpec {
        self.sine = Some(hz);
        self
    }

    /// Sets the sine's peak amplitude (0..=1); only with [`sine`](Self::sine).
    pub fn amplitude(mut self, a: f32) -> AppSpec {
        self.amplitude = Some(a);
        self
    }

    /// The `application.name`s the streams will carry, one per stream.
    pub fn app_names(&self) -> Vec<String> {
        (1..=self.streams)
            .map(|i| if self.distinct_names { format!("{} {i}", self.name) } else { self.name.clone() })
            .collect()
    }

    /// The command-line arguments of `pvm-fake-app` for this spec.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["--name".to_owned(), self.name.clone()];
        let mut option = |flag: &str, value: &Option<String>| {
            if let Some(value) = value {
                args.push(flag.to_owned());
                args.push(value.clone());
            }
        };
        option("--binary", &self.binary);
        option("--role", &self.role);
        option("--media-name", &self.media_name);
        if self.distinct_names {
            args.extend(["--distinct".to_owned(), self.streams.to_string()]);
        } else {
            args.extend(["--streams".to_owned(), self.streams.to_string()]);
        }
        for (key, value) in &self.extra_props {
            args.extend(["--prop".to_owned(), format!("{key}={value}")]);
        }
        if let Some(hz) = self.sine {
            args.extend(["--sine".to_owned(), hz.to_string()]);
            if let Some(a) = self.amplitude {
                args.extend(["--amplitude".to_owned(), a.to_string()]);
            }
        }
        args
    }

    /// A file-name-safe form of the name, for the log file.
    fn log_name(&self) -> String {
        let safe: String = self.name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        format!("app-{safe}")
    }
}

/// A running `pvm-fake-app` process; killed (its whole process group) and reaped on drop.
#[derive(Debug)]
pub struct FakeApp {
    child: GroupChild,
    spec: AppSpec,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl TestBed {
    /// Starts a fake application (the `pvm-fake-app` binary, found next to
    /// the running executable or at `$PVM_FAKE_APP`) connected to this bed.
    ///
    /// Returns at once; use [`FakeApp::wait_for_streams`] to wait for its streams.
    pub fn spawn_app(&self, spec: &AppSpec) -> Result<FakeApp> {
        let binary = locate::workspace_binary(FAKE_APP.0, FAKE_APP.1)?;
        let log_name = spec.log_name();
        let log = self.dirs().open_log(&log_name)?;
        let log_err = log.try_clone().map_err(|e| Error::io("duplicating a log file handle", e))?;
        let mut command = self.command(&binary);
        command.args(spec.args()).stdin(Stdio::null()).stdout(log).stderr(log_err);
        let child = GroupChild::spawn(FAKE_APP.0, command)?;
        Ok(FakeApp { child, spec: spec.clone(), env: self.env(), log: self.dirs().log(&log_name) })
    }
}

impl FakeApp {
    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// What the application was started as.
    pub fn spec(&self) -> &AppSpec {
        &self.spec
    }

    /// The file its output goes to.
    pub fn log_path(&self) -> &PathBuf {
        &self.log
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_status().is_none()
    }

    /// Terminates the process group (SIGTERM, SIGKILL after 2 s) and reaps it.
    pub fn stop(&mut self) -> ExitStatus {
        self.child.terminate(DEFAULT_GRACE)
    }

    /// The ids of this process's playback streams now in the graph, ascending.
    pub fn stream_ids(&self) -> Result<Vec<u32>> {
        let graph = dump_with(&self.env)?;
        let pid = self.pid().to_string();
        let mut ids: Vec<u32> = graph
            .nodes_where("application.process.id", &pid)
            .filter(|n| n.media_class().as_deref() == Some(STREAM_OUTPUT_AUDIO))
            .map(|n| n.id)
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Waits until all of the application's streams are in the graph and
    /// returns their node ids, ascending. Fails early if the process exits.
    pub fn wait_for_streams(&mut self, timeout: Duration) -> Result<Vec<u32>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_status() {
                return Err(Error::Exited {
                    process: format!("{} ({:?})", FAKE_APP.0, self.spec.name),
                    status: status.to_string(),
                    during: "before its streams appeared".into(),
                    log_tail: self.log_tail(),
                });
            }
            let ids = self.stream_ids()?;
            if ids.len() >= self.spec.streams {
                return Ok(ids);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "{} streams of {:?} (pid {}); {} appeared",
                        self.spec.streams,
                        self.spec.name,
                        self.pid(),
                        ids.len()
                    ),
                    timeout,
                    details: self.log_tail(),
                });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn log_tail(&self) -> String {
        tail_of(&self.log, 20)
            .map(|t| format!("\n--- last lines of {} ---\n{t}", self.log.display()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_carry_every_setting() {
        let spec = AppSpec::new("Music Player")
            .binary("music-player")
            .role("Music")
            .media_name("Song")
            .streams(2)
            .prop("node.dont-move", "true");
        assert_eq!(
            spec.args(),
            [
                "--name",
                "Music Player",
                "--binary",
                "music-player",
                "--role",
                "Music",
                "--media-name",
                "Song",
                "--streams",
                "2",
                "--prop",
                "node.dont-move=true"
            ]
        );
    }

    #[test]
    fn sine_args_come_last_and_silence_is_the_default() {
        assert!(!AppSpec::new("Quiet").args().iter().any(|a| a == "--sine"));
        let args = AppSpec::new("Tone").sine(440.0).amplitude(0.25).args();
        assert_eq!(args[args.len() - 4..], ["--sine", "440", "--amplitude", "0.25"]);
        let args = AppSpec::new("Tone").sine(1000.5).args();
        assert_eq!(args[args.len() - 2..], ["--sine", "1000.5"]);
    }

    #[test]
    fn distinct_names_are_numbered_from_one() {
        let spec = AppSpec::new("App").distinct(3);
        assert_eq!(spec.app_names(), ["App 1", "App 2", "App 3"]);
        assert!(spec.args().windows(2).any(|w| w == ["--distinct", "3"]));
        assert_eq!(AppSpec::new("Solo").streams(2).app_names(), ["Solo", "Solo"]);
    }

    #[test]
    fn log_name_is_file_name_safe() {
        assert_eq!(AppSpec::new("Game Of Life/2").log_name(), "app-Game-Of-Life-2");
    }
}
