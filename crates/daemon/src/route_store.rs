//! Persisted `ROUTE` and `OUTPUT` decisions: application name to sink
//! `node.name`, and channel to output.
//!
//! They live in a small TOML file (by default
//! `$XDG_STATE_HOME/pipewire-volume-mixer/routes.toml`) and take precedence
//! over the config rules:
//!
//! ```toml
//! # Written by pipewire-volume-mixer-daemon; ROUTE, UNROUTE and OUTPUT change it.
//! [routes]
//! "Music Player" = "chat"
//!
//! [outputs]
//! game = "alsa_output.usb-headset.analog-stereo"
//! ```
//!
//! The file is replaced atomically on every save, so a crash leaves either
//! the old or the new version, never a mix.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::atomic_file;
use crate::config::Position;

/// The first line of every routes file we write.
pub const HEADER: &str = "# Written by pipewire-volume-mixer-daemon; ROUTE, UNROUTE and OUTPUT change it.\n";

/// Why the routes file could not be read or written.
#[derive(Debug, Error)]
pub enum RouteStoreError {
    /// The file exists but cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The routes file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file's content is not a routes file.
    #[error("{}", located(file, *position, message))]
    Corrupt {
        /// The routes file.
        file: PathBuf,
        /// Where in the file, when known.
        position: Option<Position>,
        /// What is wrong.
        message: String,
    },
    /// The file (or its directory) cannot be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The routes file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

fn located(file: &Path, position: Option<Position>, message: &str) -> String {
    match position {
        Some(position) => format!("{}:{position}: {message}", file.display()),
        None => format!("{}: {message}", file.display()),
    }
}

/// The file as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    #[serde(default)]
    routes: BTreeMap<String, String>,
    #[serde(default)]
    outputs: BTreeMap<String, String>,
}

/// The file as written.
#[derive(Serialize)]
struct RoutesFileRef<'a> {
    routes: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    outputs: &'a BTreeMap<String, String>,
}

/// Routes chosen with `ROUTE`, backed by a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteStore {
    path: PathBuf,
    routes: BTreeMap<String, String>,
    /// Channel name to output word (`default`, `none` or a sink name).
    outputs: BTreeMap<String, String>,
}

impl RouteStore {
    /// An empty store that will save to `path`. Nothing is read or written.
    pub fn empty(path: impl Into<PathBuf>) -> Self {
        RouteStore { path: path.into(), routes: BTreeMap::new(), outputs: BTreeMap::new() }
    }

    /// Reads the store from `path`; a missing file is an empty store.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, RouteStoreError> {
        let path = path.into();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(RouteStore::empty(path)),
            Err(source) => return Err(RouteStoreError::Read { path, source }),
        };
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(e) => {
                let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
                let position = Some(Position::at(valid, valid.len()));
                return Err(RouteStoreError::Corrupt { file: path, position, message: "not valid UTF-8".into() });
            }
        };
        match toml::from_str::<RoutesFile>(text) {
            Ok(file) => Ok(RouteStore { path, routes: file.routes, outputs: file.outputs }),
            Err(e) => {
                let (position, message) = Position::of_toml_error(text, &e);
                Err(RouteStoreError::Corrupt { file: path, position, message })
            }
        }
    }

    /// The sink an application is routed to.
    pub fn get(&self, app: &str) -> Option<&str> {
        self.routes.get(app).map(String::as_str)
    }

    /// Routes `app` to `sink`; returns whether anything changed.
    pub fn set(&mut self, app: String, sink: String) -> bool {
        if self.routes.get(&app) == Some(&sink) {
            return false;
        }
        self.routes.insert(app, sink);
        true
    }

    /// Forgets the route of `app`; returns whether it had one.
    pub fn remove(&mut self, app: &str) -> bool {
        self.routes.remove(app).is_some()
    }

    /// The output chosen for a channel with `OUTPUT`.
    pub fn output(&self, channel: &str) -> Option<pvm_ipc::protocol::OutputChoice> {
        self.outputs.get(channel).map(|o| pvm_ipc::protocol::OutputChoice::parse(o))
    }

    /// Chooses a channel's output (`None`: forget the choice, so the config
    /// decides); returns whether anything changed.
    pub fn set_output(&mut self, channel: &str, output: Option<&pvm_ipc::protocol::OutputChoice>) -> bool {
        match output {
            Some(o) => self.outputs.insert(channel.to_owned(), o.as_word().to_owned()).as_deref() != Some(o.as_word()),
            None => self.outputs.remove(channel).is_some(),
        }
    }

    /// `(app, sink)` pairs, sorted by application name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.routes.iter().map(|(app, sink)| (app.as_str(), sink.as_str()))
    }

    /// Writes the store to its file atomically (temporary file in the same
    /// directory, fsync, rename over the old file, fsync the directory).
    /// The directory is created with mode 0700 if missing.
    pub fn save(&self) -> Result<(), RouteStoreError> {
        let write = || {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
            }
            atomic_file::write_with(&self.path, self.to_toml().as_bytes(), 0o600, true)
        };
        write().map_err(|source| RouteStoreError::Write { path: self.path.clone(), source })
    }

    /// The file content: the header comment, then the `[routes]` table.
    fn to_toml(&self) -> String {
        let body = toml::to_string(&RoutesFileRef { routes: &self.routes, outputs: &self.outputs })
            .expect("a map of strings always serializes to TOML");
        let body = if body.trim().is_empty() { "[routes]\n".to_owned() } else { body };
        format!("{HEADER}{body}")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use proptest::prelude::*;

    use super::*;

    const ODD_NAMES: [&str; 7] =
        ["Music Player", "Müsik «Player»", "Say \"hi\"", r"back\slash", "it's", "tab\tand\nnewline", ""];

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn missing_file_is_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = RouteStore::load(dir.path().join("routes.toml")).unwrap();
        assert_eq!(store, RouteStore::empty(dir.path().join("routes.toml")));
        assert!(entries(dir.path()).is_empty(), "loading must not create the file");
    }

    #[test]
    fn set_get_remove() {
        let mut store = RouteStore::empty("/nonexistent/routes.toml");
        assert!(store.set("Firefox".into(), "music".into()));
        assert!(!store.set("Firefox".into(), "music".into()), "same route again changes nothing");
        assert!(store.set("Firefox".to_owned(), "chat".to_owned()));
        assert_eq!(store.get("Firefox"), Some("chat"));
        assert_eq!(store.get("firefox"), None);
        assert!(store.set("Discord".into(), "chat".into()));
        assert_eq!(store.iter().collect::<Vec<_>>(), [("Discord", "chat"), ("Firefox", "chat")]);
        assert!(store.remove("Firefox"));
        assert!(!store.remove("Firefox"));
        assert_eq!(store.get("Firefox"), None);
    }

    #[test]
    fn save_writes_the_documented_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        let mut store = RouteStore::empty(&path);
        store.set("Music Player".into(), "chat".into());
        store.save().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{HEADER}[routes]\n\"Music Player\" = \"chat\"\n"));
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn empty_store_saves_an_empty_routes_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        RouteStore::empty(&path).save().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(HEADER));
        assert!(text.contains("[routes]"), "{text}");
        assert_eq!(RouteStore::load(&path).unwrap().iter().count(), 0);
    }

    #[test]
    fn odd_names_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        let mut store = RouteStore::empty(&path);
        for (i, name) in ODD_NAMES.iter().enumerate() {
            store.set(name.to_string(), format!("sink «{i}» \"{name}\""));
        }
        store.save().unwrap();
        let loaded = RouteStore::load(&path).unwrap();
        assert_eq!(loaded, store);
        assert_eq!(loaded.get("Say \"hi\""), Some("sink «2» \"Say \"hi\"\""));
    }

    #[test]
    fn save_creates_a_private_directory() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state").join("pipewire-volume-mixer");
        let mut store = RouteStore::empty(state_dir.join("routes.toml"));
        store.set("a".into(), "b".into());
        store.save().unwrap();
        assert_eq!(fs::metadata(&state_dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(RouteStore::load(state_dir.join("routes.toml")).unwrap().get("a"), Some("b"));
    }

    #[test]
    fn save_replaces_an_existing_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        fs::write(&path, "old content that is much longer than the new one ".repeat(100)).unwrap();
        let mut store = RouteStore::empty(&path);
        store.set("Firefox".into(), "music".into());
        store.save().unwrap();
        assert_eq!(entries(dir.path()), ["routes.toml"]);
        assert_eq!(RouteStore::load(&path).unwrap(), store);

        store.remove("Firefox");
        store.set("Discord".into(), "chat".into());
        store.save().unwrap();
        assert_eq!(entries(dir.path()), ["routes.toml"]);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("Firefox"), "{text}");
        assert_eq!(RouteStore::load(&path).unwrap().iter().collect::<Vec<_>>(), [("Discord", "chat")]);
    }

    #[test]
    fn save_replaces_a_stale_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        let stale = dir.path().join(format!(".routes.toml.tmp.{}", std::process::id()));
        fs::write(&stale, "garbage").unwrap();
        let mut store = RouteStore::empty(&path);
        store.set("a".into(), "b".into());
        store.save().unwrap();
        assert_eq!(entries(dir.path()), ["routes.toml"]);
        assert_eq!(RouteStore::load(&path).unwrap(), store);
    }

    #[test]
    fn failed_save_reports_the_path_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        let mut store = RouteStore::empty(&path);
        store.set("a".into(), "b".into());
        store.save().unwrap();
        // A directory where the temporary file should go makes the save fail.
        fs::create_dir(dir.path().join(format!(".routes.toml.tmp.{}", std::process::id()))).unwrap();
        store.set("a".into(), "c".into());
        let err = store.save().unwrap_err();
        assert!(matches!(err, RouteStoreError::Write { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&format!("{}: cannot write: ", path.display())), "{err}");
        assert_eq!(RouteStore::load(&path).unwrap().get("a"), Some("b"));
    }

    fn corrupt(text: &[u8]) -> (Option<Position>, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        fs::write(&path, text).unwrap();
        match RouteStore::load(&path).unwrap_err() {
            err @ RouteStoreError::Corrupt { .. } => {
                let display = err.to_string();
                let RouteStoreError::Corrupt { file, position, message } = err else { unreachable!() };
                assert_eq!(file, path);
                let rest = display.strip_prefix(&format!("{}:", path.display())).unwrap().to_owned();
                (position, message, rest)
            }
            other => panic!("expected a corrupt-file error, got {other:?}"),
        }
    }

    #[test]
    fn corrupt_file_is_an_error_with_its_position() {
        let (position, _, display) = corrupt(b"[routes]\n\"Firefox\" = \"music\"\n\"Discord\" = \n");
        assert_eq!(position, Some(Position { line: 3, col: 13 }));
        assert!(display.starts_with("3:13: "), "{display}");

        let (position, message, _) = corrupt(b"[routes]\n\"Firefox\" = 3\n");
        assert_eq!(position, Some(Position { line: 2, col: 13 }));
        assert!(message.contains("invalid type"), "{message}");

        let (position, message, _) = corrupt(b"# comment\nroute = {}\n");
        assert_eq!(position, Some(Position { line: 2, col: 1 }));
        assert!(message.contains("unknown field `route`"), "{message}");

        let (position, message, _) = corrupt(b"[routes]\n\"M\xfcsik\" = \"x\"\n");
        assert_eq!(position, Some(Position { line: 2, col: 3 }));
        assert_eq!(message, "not valid UTF-8");
    }

    #[test]
    fn unreadable_file_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be read as a file, even by root.
        let err = RouteStore::load(dir.path()).unwrap_err();
        assert!(matches!(err, RouteStoreError::Read { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&format!("{}: cannot read: ", dir.path().display())), "{err}");
    }

    proptest! {
        #[test]
        fn any_route_round_trips(routes in proptest::collection::btree_map(any::<String>(), any::<String>(), 0..8)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("routes.toml");
            let mut store = RouteStore::empty(&path);
            for (app, sink) in &routes {
                store.set(app.clone(), sink.clone());
            }
            store.save().unwrap();
            let loaded = RouteStore::load(&path).unwrap();
            prop_assert_eq!(loaded.iter().collect::<Vec<_>>(), routes.iter().map(|(a, s)| (a.as_str(), s.as_str())).collect::<Vec<_>>());
        }
    }
}
