//! [`TestBed`]: a private PipeWire + WirePlumber (+ pipewire-pulse) with virtual sinks.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::dirs::{self, BedDirs};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node};
use crate::hook;
use crate::prefix::{self, Prefix};
use crate::process::{self, GroupChild};
use crate::sinks;
use crate::stack::Stack;
use crate::tool::{self, TOOL_TIMEOUT};
use crate::wait::{self, POLL_INTERVAL};

/// How long startup may take before it is reported as failed, by default.
/// Far above the usual ~0.2 s: parallel tests on a loaded two-core machine
/// can be slow, and a failure here is a broken environment, not a bug.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// WirePlumber's program name (also its process's name in the bed).
const WIREPLUMBER: &str = "wireplumber";

/// The `application.name` of WirePlumber's connection.
const WIREPLUMBER_CLIENT: &str = "WirePlumber";

/// How many log lines error messages quote.
const LOG_TAIL_LINES: usize = 20;

/// Which WirePlumber a bed runs (see [`Stack`] for the whole combination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WirePlumber {
    /// The installed one (`wireplumber` on `PATH`), 0.5.
    #[default]
    Installed,
    /// WirePlumber 0.4.13, Debian 12's own package, unpacked into a private
    /// prefix under the Cargo target directory on first use (needs
    /// `apt-get download` to work: network and apt's package lists). The
    /// pipewire-volume-mixer hook is for 0.5; see [`TestBedBuilder::hold_hook`].
    V0_4,
}

/// Settings for a [`TestBed`]; start one with [`TestBedBuilder::start`].
#[derive(Debug, Clone)]
pub struct TestBedBuilder {
    sinks: Vec<String>,
    /// The priorities of the device sinks among `sinks`.
    device_priorities: BTreeMap<String, i32>,
    pulse: bool,
    suspend_idle_sinks: bool,
    ready_timeout: Duration,
    stack: Option<Stack>,
    wireplumber: Option<WirePlumber>,
    hold_hook: Option<bool>,
    system_hook: bool,
    hold_timeout: Option<Duration>,
}

impl Default for TestBedBuilder {
    fn default() -> Self {
        TestBedBuilder {
            sinks: Vec::new(),
            device_priorities: BTreeMap::new(),
            pulse: false,
            suspend_idle_sinks: false,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            stack: None,
            wireplumber: None,
            hold_hook: None,
            system_hook: false,
            hold_timeout: None,
        }
    }
}

impl TestBedBuilder {
    /// The virtual sinks to create, by `node.name`; the first becomes the default sink.
    /// Their `node.description` is the name capitalised ("game" → "Game").
    /// They come before the [`device_sink`](Self::device_sink)s, which this keeps.
    pub fn sinks(mut self, names: &[&str]) -> Self {
        let devices = self.sinks.into_iter().filter(|s| self.device_priorities.contains_key(s));
        self.sinks = names.iter().map(|n| (*n).to_owned()).chain(devices).collect();
        self
    }

    /// Also create a null sink standing in for a sound card, with this
    /// `priority.session` and `priority.driver` (the session manager makes
    /// the sink with the highest `priority.session` the default; the plain
    /// [`sinks`](Self::sinks) have 2000 for the first, 1000 for the others).
    /// Otherwise like the other sinks; see [`TestBed::create_device_sink`].
    /// Device sinks come after the plain sinks, in the order of these calls.
    pub fn device_sink(mut self, name: &str, priority: i32) -> Self {
        self.sinks.retain(|s| s != name);
        self.sinks.push(name.to_owned());
        self.device_priorities.insert(name.to_owned(), priority);
        self
    }

    /// Also run `pipewire-pulse`, so `pactl` works against the bed.
    pub fn pulse(mut self, pulse: bool) -> Self {
        self.pulse = pulse;
        self
    }

    /// Let PipeWire suspend sinks that no stream plays into, as it does by
    /// default (off by default: the bed's sinks keep running; PipeWire
    /// 0.3.65, [`Stack::Pw03Wp04`], suspends idle sinks either way).
    ///
    /// A suspended null sink takes `Props` changes (volume, mute) but keeps
    /// *reporting* its old `Props` until it runs again, so with this on,
    /// [`TestBed::node_volume`] of an idle sink shows stale values.
    pub fn suspend_idle_sinks(mut self, suspend: bool) -> Self {
        self.suspend_idle_sinks = suspend;
        self
    }

    /// How long to wait for the bed to become ready (default [`DEFAULT_READY_TIMEOUT`]).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Which PipeWire + WirePlumber to run. By default the one
    /// `PVM_TEST_STACK` names ([`Stack::from_env`]), or [`Stack::Pw14Wp05`]
    /// when it is unset; [`TestBedBuilder::start`] fails on a value it does
    /// not know.
    pub fn stack(mut self, stack: Stack) -> Self {
        self.stack = Some(stack);
        self
    }

    /// Which WirePlumber to run, on the stack's PipeWire:
    /// [`WirePlumber::Installed`] is [`Stack::Pw14Wp05`];
    /// [`WirePlumber::V0_4`] is [`Stack::Pw14Wp04`], or [`Stack::Pw03Wp04`]
    /// when that is the stack already.
    pub fn wireplumber(mut self, wireplumber: WirePlumber) -> Self {
        self.wireplumber = Some(wireplumber);
        self
    }

    /// The stack this builder starts: [`TestBedBuilder::stack`] or
    /// `PVM_TEST_STACK`, adjusted by [`TestBedBuilder::wireplumber`].
    pub fn resolved_stack(&self) -> Result<Stack> {
        let stack = match self.stack {
            Some(stack) => stack,
            None => Stack::from_env()?,
        };
        Ok(match (self.wireplumber, stack) {
            (None, stack) => stack,
            (Some(WirePlumber::Installed), _) => Stack::Pw14Wp05,
            (Some(WirePlumber::V0_4), Stack::Pw03Wp04) => Stack::Pw03Wp04,
            (Some(WirePlumber::V0_4), _) => Stack::Pw14Wp04,
        })
    }

    /// Install pipewire-volume-mixer's WirePlumber hook
    /// (`contrib/wireplumber/`) into the bed's WirePlumber. It holds each new
    /// playback stream while the daemon's client is connected and the
    /// `default` metadata has no decision for it; with no daemon running it
    /// changes nothing.
    ///
    /// By default it is installed for the installed WirePlumber 0.5 and not
    /// for [`WirePlumber::V0_4`], which cannot run it. `true` with 0.4 puts
    /// the files where that WirePlumber reads them, as for a user who ran
    /// `pvmctl setup wireplumber` there: it must start and link as usual.
    pub fn hold_hook(mut self, install: bool) -> Self {
        self.hold_hook = Some(install);
        self
    }

    /// Expect the hook installed system-wide (by the Debian package, in
    /// `/usr/share/wireplumber/`) instead of installing it into the bed:
    /// nothing is written into the bed's WirePlumber directories, and the bed
    /// is ready only once WirePlumber 0.5 has loaded the system's copy (it
    /// announces itself). Overrides [`TestBedBuilder::hold_hook`].
    pub fn system_hold_hook(mut self) -> Self {
        self.system_hook = true;
        self
    }

    /// The hook's time limit (its setting
    /// `pipewire-volume-mixer.hold-timeout-ms`); the shipped default (200 ms)
    /// when not called. Whole milliseconds, at most 60 s.
    pub fn hold_timeout(mut self, timeout: Duration) -> Self {
        self.hold_timeout = Some(timeout);
        self
    }

    /// Starts the bed and waits until it is ready; see [`TestBed`].
    pub fn start(self) -> Result<TestBed> {
        for (i, name) in self.sinks.iter().enumerate() {
            sinks::validate_name(name)?;
            if self.sinks[..i].contains(name) {
                return Err(Error::SinkExists(name.clone()));
            }
        }
        let stack = self.resolved_stack()?;
        let started = Instant::now();
        let dirs = BedDirs::create()?;
        let (prefix, hold_hook) = match stack {
            Stack::Pw14Wp05 if self.system_hook => (None, true),
            Stack::Pw14Wp05 => {
                let install = self.hold_hook.unwrap_or(true);
                if install {
                    hook::install(&dirs, self.hold_timeout)?;
                } else {
                    hook::mask(&dirs)?;
                }
                (None, install)
            }
            Stack::Pw14Wp04 | Stack::Pw03Wp04 => {
                let kind =
                    if stack == Stack::Pw03Wp04 { prefix::Kind::PipeWire03 } else { prefix::Kind::WirePlumber04 };
                let mut prefix = prefix::prefix(kind)?.with_pipewire_config(&dirs.root().join("pipewire-0.3"))?;
                if self.hold_hook == Some(true) {
                    prefix = prefix.with_hook_files(&dirs.root().join("wireplumber-0.4"))?;
                }
                (Some(prefix), false)
            }
        };
        let mut bed = TestBed {
            dirs,
            sinks: self.sinks,
            device_priorities: self.device_priorities,
            pulse: self.pulse,
            keep_sinks_running: !self.suspend_idle_sinks,
            ready_timeout: self.ready_timeout,
            stack,
            prefix,
            hold_hook,
            dbus: None,
            session: Vec::new(),
        };
        bed.start_dbus()?;
        bed.start_pipewire()?;
        tracing::debug!(%stack, dir = %bed.dir().display(), elapsed = ?started.elapsed(), "test bed ready");
        Ok(bed)
    }
}

/// A private, headless PipeWire session: a D-Bus session bus, `pipewire` with
/// null-audio sinks, `wireplumber` and optionally `pipewire-pulse`.
///
/// Everything lives in a fresh temporary directory ([`TestBed::dir`]) that
/// holds `XDG_RUNTIME_DIR`, `XDG_STATE_HOME`, `XDG_CONFIG_HOME` and the
/// processes' logs (`logs/<name>.log`). Every process gets exactly
/// [`TestBed::env`] as its environment and runs in its own process group, so
/// nothing reaches the user's real session, and any number of beds run side by
/// side, in one test binary or many.
///
/// WirePlumber runs without its hardware monitors (ALSA, Bluetooth, V4L2,
/// libcamera), so the bed never opens the host's sound cards; the sinks are
/// the only audio devices. The sinks are kept running even when idle (see
/// [`TestBedBuilder::suspend_idle_sinks`]).
///
/// pipewire-volume-mixer's WirePlumber hook is installed in the bed's
/// `XDG_DATA_HOME` / `XDG_CONFIG_HOME` unless the builder says otherwise
/// ([`TestBedBuilder::hold_hook`]); see [`TestBed::hold_hook`].
///
/// [`TestBed::start`] returns when PipeWire answers, every sink is in the
/// graph, WirePlumber is connected and has chosen a default sink (the first
/// one), the hook (if installed) has announced itself in the `default` metadata,
/// and pipewire-pulse (if asked for) accepts connections.
///
/// Dropping the bed terminates every process group it started (SIGTERM, then
/// SIGKILL after two seconds), reaps them and deletes the directory; this
/// also happens when a test panics. Should the test process be killed
/// outright, the kernel sends the bed's processes SIGTERM.
///
/// The graph helpers ([`TestBed::node_id`] and friends) each take a fresh
/// `pw-dump`; a `pw-dump` that fails counts as an empty graph there (and is
/// logged); use [`TestBed::dump`] to see the error.
#[derive(Debug)]
pub struct TestBed {
    dirs: BedDirs,
    sinks: Vec<String>,
    /// The priorities of the device sinks among `sinks`.
    device_priorities: BTreeMap<String, i32>,
    pulse: bool,
    keep_sinks_running: bool,
    pub(crate) ready_timeout: Duration,
    stack: Stack,
    /// The private WirePlumber 0.4 (and PipeWire 0.3.65), when the bed runs them.
    prefix: Option<Prefix>,
    hold_hook: bool,
    dbus: Option<GroupChild>,
    /// pipewire, wireplumber and pipewire-pulse, in start order.
    session: Vec<GroupChild>,
}

impl TestBed {
    /// Starts a bed with these sinks (the first is the default) and no pipewire-pulse.
    pub fn start(sinks: &[&str]) -> Result<TestBed> {
        TestBed::builder().sinks(sinks).start()
    }

    /// Settings for a bed, to start with [`TestBedBuilder::start`].
    pub fn builder() -> TestBedBuilder {
        TestBedBuilder::default()
    }

    /// The bed's temporary root directory, deleted on drop.
    pub fn dir(&self) -> &Path {
        self.dirs.root()
    }

    /// The bed's `XDG_RUNTIME_DIR`, where PipeWire's socket `pipewire-0` is.
    pub fn runtime_dir(&self) -> PathBuf {
        self.dirs.runtime_dir()
    }

    /// PipeWire's socket, `<runtime dir>/pipewire-0`: what a client of this
    /// bed connects to (e.g. a [`GraphWatcher`](crate::GraphWatcher)).
    pub fn pipewire_socket(&self) -> PathBuf {
        self.runtime_dir().join("pipewire-0")
    }

    /// The log file of one of the bed's processes (`pipewire`, `wireplumber`,
    /// `pipewire-pulse`, `dbus-daemon`, or a fake application's name).
    pub fn log_path(&self, process: &str) -> PathBuf {
        self.dirs.log(process)
    }

    /// The complete environment of the bed's processes: `PATH`, `HOME`, `LANG`,
    /// the `XDG_*` directories, the D-Bus addresses, and `RUST_LOG`,
    /// `RUST_BACKTRACE`, `PIPEWIRE_DEBUG`, `WIREPLUMBER_DEBUG` when the caller has them set.
    pub fn env(&self) -> Vec<(String, String)> {
        self.dirs.env()
    }

    /// A command for `program` whose environment is exactly [`TestBed::env`],
    /// run from [`TestBed::dir`]. Use it for `wpctl`, `pw-cli`, `pactl`, ...
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        self.dirs.command(program)
    }

    /// The names of the bed's sinks, as they will be after a restart.
    pub fn sinks(&self) -> &[String] {
        &self.sinks
    }

    /// The pids of the processes the bed is running now (each is also the id
    /// of that process's group).
    pub fn pids(&self) -> Vec<u32> {
        self.dbus.iter().chain(&self.session).map(GroupChild::pid).collect()
    }

    /// Which WirePlumber the bed runs.
    pub fn wireplumber(&self) -> WirePlumber {
        if self.stack.has_wireplumber_05() {
            WirePlumber::Installed
        } else {
            WirePlumber::V0_4
        }
    }

    /// Which PipeWire + WirePlumber the bed runs.
    pub fn stack(&self) -> Stack {
        self.stack
    }

    /// Whether pipewire-volume-mixer's WirePlumber hook is installed and
    /// (once the bed is ready) running in the bed's WirePlumber; never for
    /// [`WirePlumber::V0_4`].
    pub fn hold_hook(&self) -> bool {
        self.hold_hook
    }

    /// Whether PipeWire is running (it is, unless [`TestBed::stop_pipewire`] was called).
    pub fn is_running(&self) -> bool {
        !self.session.is_empty()
    }

    pub(crate) fn dirs(&self) -> &BedDirs {
        &self.dirs
    }

    // ---- graph -------------------------------------------------------------

    /// The whole graph, from a fresh `pw-dump`.
    pub fn dump(&self) -> Result<Graph> {
        if !self.is_running() {
            return Err(Error::NotRunning);
        }
        dump_with(&self.dirs.env())
    }

    /// Runs `body` while `loops` threads keep running `pw-dump`. Each run is
    /// a new client that binds every object, the `default` metadata included,
    /// and PipeWire holds that metadata's events back from the clients already
    /// bound while one binds it (see the daemon's `metadata_view`). The loops
    /// stop when `body` returns or panics.
    pub fn while_binding_metadata<R>(&self, loops: usize, body: impl FnOnce() -> R) -> R {
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let stop = AtomicBool::new(false);
        thread::scope(|scope| {
            for _ in 0..loops {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = self.dump();
                    }
                });
            }
            let _stop = StopOnDrop(&stop);
            body()
        })
    }

    /// The graph, or an empty one (logged) when `pw-dump` fails.
    fn graph(&self) -> Graph {
        self.dump().unwrap_or_else(|e| {
            tracing::warn!("pw-dump failed: {e}");
            Graph::default()
        })
    }

    /// The global id of the node with this `node.name`.
    pub fn node_id(&self, name: &str) -> Option<u32> {
        self.graph().node_named(name).map(|n| n.id)
    }

    /// The first node (lowest id) whose property `key` is `value`.
    pub fn node_by_props(&self, key: &str, value: &str) -> Option<Node> {
        self.graph().nodes_where(key, value).next().cloned()
    }

    /// The `node.name`s of the nodes the node `stream_node_id` is linked to
    /// (through link objects output-node → input-node), sorted.
    pub fn sink_names_linked_to(&self, stream_node_id: u32) -> Vec<String> {
        self.graph().sink_names_linked_to(stream_node_id)
    }

    /// The default sink's `node.name` as WirePlumber chose it.
    pub fn default_sink_name(&self) -> Option<String> {
        self.graph().default_sink_name()
    }

    /// The channel volumes (linear, so `wpctl set-volume 0.5` reads as 0.125)
    /// and the mute flag of the node named `name`, from its `Props` param.
    pub fn node_volume(&self, name: &str) -> Result<(Vec<f32>, bool)> {
        let graph = self.dump()?;
        let node = graph.node_named(name).ok_or_else(|| Error::NoSuchNode(name.to_owned()))?;
        node.volume().ok_or_else(|| Error::NoVolume(name.to_owned()))
    }

    /// The ids of the playback streams whose `application.name` is `app_name`, ascending.
    pub fn streams_of_app(&self, app_name: &str) -> Vec<u32> {
        self.graph().streams_of_app(app_name)
    }

    /// Polls `condition` every 20 ms until it holds; the error after `timeout` names `what`.
    pub fn wait_until(&self, timeout: Duration, what: &str, condition: impl FnMut() -> bool) -> Result<()> {
        wait::wait_until(timeout, what, condition)
    }

    // ---- sinks -------------------------------------------------------------

    /// Creates another null-audio sink and waits until it is in the graph;
    /// returns its node id. It is re-created by later restarts too.
    pub fn create_sink(&mut self, name: &str) -> Result<u32> {
        let priority = sinks::plain_priority(self.sinks.is_empty());
        self.add_sink(name, priority, false)
    }

    /// Creates a null-audio sink standing in for a sound card (an output
    /// device such as `headphones`) and waits until it is in the graph;
    /// returns its node id.
    ///
    /// It is like the bed's other sinks (`media.class = Audio/Sink`, stereo,
    /// `node.description` the name capitalised, `monitor.channel-volumes =
    /// true` so its monitor carries its volume and mute, kept running unless
    /// [`TestBedBuilder::suspend_idle_sinks`]) except that its
    /// `priority.session` and `priority.driver` are `priority`: the session
    /// manager makes the sink with the highest `priority.session` the
    /// default (the first plain sink has 2000, the others 1000). Later
    /// restarts re-create it with that priority; [`TestBed::remove_sink`]
    /// removes it.
    pub fn create_device_sink(&mut self, name: &str, priority: i32) -> Result<u32> {
        self.add_sink(name, priority, true)
    }

    fn add_sink(&mut self, name: &str, priority: i32, device: bool) -> Result<u32> {
        sinks::validate_name(name)?;
        if self.sinks.iter().any(|s| s == name) {
            return Err(Error::SinkExists(name.to_owned()));
        }
        if !self.is_running() {
            return Err(Error::NotRunning);
        }
        let properties = sinks::properties(name, priority, self.keep_sinks_running);
        let mut command = self.command("pw-cli");
        command.args(["create-node", "adapter", &format!("{{ {properties} }}")]);
        tool::run_ok(command, TOOL_TIMEOUT)?;
        self.sinks.push(name.to_owned());
        if device {
            self.device_priorities.insert(name.to_owned(), priority);
        }
        self.write_sinks_fragment()?;
        wait::wait_for(self.ready_timeout, &format!("the new sink `{name}`"), || self.node_id(name))
    }

    /// Destroys the sink `name` (`pw-cli destroy`) and waits until it is gone
    /// from the graph. Later restarts do not re-create it.
    pub fn remove_sink(&mut self, name: &str) -> Result<()> {
        let id = self.dump()?.node_named(name).map(|n| n.id).ok_or_else(|| Error::NoSuchNode(name.to_owned()))?;
        let mut command = self.command("pw-cli");
        command.args(["destroy", &id.to_string()]);
        tool::run_ok(command, TOOL_TIMEOUT)?;
        self.sinks.retain(|s| s != name);
        self.device_priorities.remove(name);
        self.write_sinks_fragment()?;
        wait::wait_until(self.ready_timeout, &format!("the sink `{name}` to disappear"), || {
            self.node_id(name).is_none()
        })
    }

    fn write_sinks_fragment(&self) -> Result<()> {
        let path = match self.prefix.as_ref().and_then(Prefix::pipewire_config) {
            Some(config) => config.join("pipewire.conf.d").join(dirs::SINKS_FRAGMENT),
            None => self.dirs.sinks_fragment(),
        };
        dirs::write(&path, &sinks::config_fragment(&self.sinks, &self.device_priorities, self.keep_sinks_running))
    }

    // ---- processes ---------------------------------------------------------

    /// Spawns `program` as a long-running process of the bed, output to its log.
    fn spawn(&self, program: &str, args: &[&str]) -> Result<GroupChild> {
        let mut command = self.command(program);
        command.args(args);
        self.spawn_command(program, command)
    }

    /// Spawns `command` as the bed's process `name`, output to `name`'s log.
    fn spawn_command(&self, name: &str, mut command: Command) -> Result<GroupChild> {
        let log = self.dirs.open_log(name)?;
        let log_err = log.try_clone().map_err(|e| Error::io("duplicating a log file handle", e))?;
        command.stdin(Stdio::null()).stdout(log).stderr(log_err);
        GroupChild::spawn(name, command)
    }

    /// Starts the bed's WirePlumber: the installed one, or the private 0.4.
    fn spawn_wireplumber(&self) -> Result<GroupChild> {
        match &self.prefix {
            None => self.spawn(WIREPLUMBER, &[]),
            Some(prefix) => {
                let mut command = self.command(prefix.wireplumber());
                command.envs(prefix.env());
                self.spawn_command(WIREPLUMBER, command)
            }
        }
    }

    /// Starts the bed's PipeWire: the installed one, or the private 0.3.65.
    fn spawn_pipewire(&self) -> Result<GroupChild> {
        match self.prefix.as_ref().and_then(|p| Some((p.pipewire()?, p))) {
            None => self.spawn("pipewire", &[]),
            Some((binary, prefix)) => {
                let mut command = self.command(binary);
                command.envs(prefix.env());
                self.spawn_command("pipewire", command)
            }
        }
    }

    fn start_dbus(&mut self) -> Result<()> {
        let config = format!("--config-file={}", self.dirs.dbus_config().display());
        let mut dbus = self.spawn("dbus-daemon", &[&config, "--nofork", "--nopidfile"])?;
        let socket = self.dirs.bus_socket();
        let result = self.wait_for_socket(&mut dbus, &socket);
        self.dbus = Some(dbus);
        result
    }

    /// Starts pipewire, wireplumber and (if configured) pipewire-pulse with
    /// the bed's current sinks, and waits until they are ready. Does nothing
    /// if they are running.
    pub fn start_pipewire(&mut self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        self.write_sinks_fragment()?;
        let mut pipewire = self.spawn_pipewire()?;
        let socket = self.dirs.pipewire_socket();
        let waited = self.wait_for_socket(&mut pipewire, &socket);
        self.session.push(pipewire);
        waited?;
        let wireplumber = self.spawn_wireplumber()?;
        self.session.push(wireplumber);
        if self.pulse {
            let pulse = self.spawn("pipewire-pulse", &[])?;
            self.session.push(pulse);
        }
        self.wait_ready()
    }

    /// Stops wireplumber, pipewire-pulse and pipewire (D-Bus stays), as a
    /// crash or an upgrade would. Clients see their connection drop.
    pub fn stop_pipewire(&mut self) {
        let mut session: Vec<GroupChild> = self.session.drain(..).rev().collect();
        process::terminate_all(&mut session, process::DEFAULT_GRACE);
    }

    /// [`TestBed::stop_pipewire`], then [`TestBed::start_pipewire`]: the same
    /// sinks come back (with new ids) in the same runtime dir.
    pub fn restart_pipewire(&mut self) -> Result<()> {
        self.stop_pipewire();
        self.start_pipewire()
    }

    /// Stops WirePlumber alone, as a crash or an upgrade of the session
    /// manager would; PipeWire keeps running. Waits until PipeWire has
    /// dropped WirePlumber's connection and the objects it owned, among them
    /// the `default` metadata. Does nothing if it is not running.
    pub fn stop_wireplumber(&mut self) -> Result<()> {
        let Some(index) = self.session.iter().position(|c| c.name() == WIREPLUMBER) else {
            return Ok(());
        };
        let mut wireplumber = self.session.remove(index);
        wireplumber.terminate(process::DEFAULT_GRACE);
        wait::wait_until(self.ready_timeout, "PipeWire to drop WirePlumber and its `default` metadata", || {
            self.dump().is_ok_and(|g| !g.has_client(WIREPLUMBER_CLIENT) && !g.has_metadata("default"))
        })
    }

    /// Starts WirePlumber again after [`TestBed::stop_wireplumber`] and waits
    /// until the bed is ready (the `default` metadata is back, with a default
    /// sink). Does nothing if it is running.
    pub fn start_wireplumber(&mut self) -> Result<()> {
        if !self.is_running() {
            return Err(Error::NotRunning);
        }
        if self.session.iter().any(|c| c.name() == WIREPLUMBER) {
            return Ok(());
        }
        let wireplumber = self.spawn_wireplumber()?;
        // Keep the start order (pipewire, wireplumber, pipewire-pulse).
        self.session.insert(1, wireplumber);
        self.wait_ready()
    }

    /// [`TestBed::stop_wireplumber`], then [`TestBed::start_wireplumber`]:
    /// the session manager goes away with the `default` metadata and comes
    /// back with a new one (new id), as after `systemctl --user restart wireplumber`.
    pub fn restart_wireplumber(&mut self) -> Result<()> {
        self.stop_wireplumber()?;
        self.start_wireplumber()
    }

    /// Waits until `socket` accepts connections, failing early if `child` exits.
    fn wait_for_socket(&self, child: &mut GroupChild, socket: &Path) -> Result<()> {
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            if UnixStream::connect(socket).is_ok() {
                return Ok(());
            }
            if let Some(status) = child.try_status() {
                return Err(Error::Exited {
                    process: child.name().to_owned(),
                    status: status.to_string(),
                    during: "during startup".into(),
                    log_tail: self.dirs.log_tail(child.name(), LOG_TAIL_LINES),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("{} to listen on {}", child.name(), socket.display()),
                    timeout: self.ready_timeout,
                    details: self.dirs.log_tail(child.name(), LOG_TAIL_LINES),
                });
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// An error if one of the session processes has exited.
    fn check_alive(&mut self) -> Result<()> {
        for child in &mut self.session {
            if let Some(status) = child.try_status() {
                return Err(Error::Exited {
                    process: child.name().to_owned(),
                    status: status.to_string(),
                    during: "during startup".into(),
                    log_tail: self.dirs.log_tail(child.name(), LOG_TAIL_LINES),
                });
            }
        }
        Ok(())
    }

    /// What the bed still waits for, or `None` when it is ready.
    fn not_ready_yet(&self) -> Option<String> {
        if self.pulse && UnixStream::connect(self.dirs.pulse_socket()).is_err() {
            return Some("pipewire-pulse to listen".into());
        }
        let graph = match self.dump() {
            Ok(graph) => graph,
            Err(e) => return Some(format!("pw-dump to succeed (last error: {e})")),
        };
        let present = graph.sink_names();
        let missing: Vec<&str> = self.sinks.iter().filter(|s| !present.contains(s)).map(String::as_str).collect();
        if !missing.is_empty() {
            return Some(format!("the sinks {missing:?} to appear"));
        }
        if !graph.has_client(WIREPLUMBER_CLIENT) {
            return Some("WirePlumber to connect".into());
        }
        if self.sinks.is_empty() {
            return None;
        }
        match graph.default_sink_name() {
            Some(default) if self.sinks.contains(&default) => None,
            other => {
                Some(format!("WirePlumber to choose one of the sinks as default (default.audio.sink is {other:?})"))
            }
        }
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            self.check_alive()?;
            let Some(missing) = self.not_ready_yet() else {
                return self.wait_for_hook(deadline);
            };
            if Instant::now() >= deadline {
                let mut details = String::new();
                for child in &self.session {
                    details.push_str(&self.dirs.log_tail(child.name(), LOG_TAIL_LINES));
                }
                return Err(Error::Timeout { what: missing, timeout: self.ready_timeout, details });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// With the hook installed: waits until it has announced itself in the
    /// `default` metadata, which proves WirePlumber loaded and runs it.
    fn wait_for_hook(&mut self, deadline: Instant) -> Result<()> {
        if !self.hold_hook {
            return Ok(());
        }
        let timeout = deadline.saturating_duration_since(Instant::now()).max(POLL_INTERVAL);
        let waited = wait::wait_for(timeout, "WirePlumber's pipewire-volume-mixer hook to announce itself", || {
            self.graph().metadata_value("default", 0, hook::HOLD_KEY).cloned()
        });
        match waited {
            Ok(announced) => {
                tracing::debug!(%announced, "hold hook running");
                Ok(())
            }
            Err(Error::Timeout { what, timeout, mut details }) => {
                self.check_alive()?;
                details.push_str(&self.dirs.log_tail("wireplumber", LOG_TAIL_LINES));
                Err(Error::Timeout { what, timeout, details })
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        let mut all: Vec<GroupChild> = self.session.drain(..).rev().collect();
        all.extend(self.dbus.take());
        process::terminate_all(&mut all, process::DEFAULT_GRACE);
    }
}

/// A fresh `pw-dump` of the PipeWire that `env` points at.
pub(crate) fn dump_with(env: &[(String, String)]) -> Result<Graph> {
    let mut command = Command::new("pw-dump");
    command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    let output = tool::run_ok(command, TOOL_TIMEOUT)?;
    Graph::parse(&String::from_utf8_lossy(&output.stdout))
}
