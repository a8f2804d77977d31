//! `pvmctl setup wireplumber`: the two hook files, exactly, and nothing else.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

const SCRIPT: &str = include_str!("../../../contrib/wireplumber/pipewire-volume-mixer-hold.lua");
const FRAGMENT: &str = include_str!("../../../contrib/wireplumber/90-pipewire-volume-mixer.conf");
const SCRIPT_PATH: &str = "data/wireplumber/scripts/pipewire-volume-mixer-hold.lua";
const FRAGMENT_PATH: &str = "config/wireplumber/wireplumber.conf.d/90-pipewire-volume-mixer.conf";

/// A home with its own `XDG_DATA_HOME` (`data/`) and `XDG_CONFIG_HOME` (`config/`).
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// `pvmctl setup wireplumber <args>` with the XDG variables pointing here.
    fn setup(&self, args: &[&str]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_pvmctl"))
            .args(["setup", "wireplumber"])
            .args(args)
            .env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        output
    }

    /// Every file under the home: relative path to (contents, modification time).
    fn files(&self) -> BTreeMap<String, (String, SystemTime)> {
        let mut files = BTreeMap::new();
        collect(self.dir.path(), self.dir.path(), &mut files);
        files
    }
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, (String, SystemTime)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let modified = fs::metadata(&path).unwrap().modified().unwrap();
            files.insert(relative, (fs::read_to_string(&path).unwrap(), modified));
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn installs_exactly_the_two_shipped_files_and_says_to_restart_wireplumber() {
    let home = Home::new();
    let output = home.setup(&[]);
    let files = home.files();
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, [FRAGMENT_PATH, SCRIPT_PATH]);
    assert_eq!(files[SCRIPT_PATH].0, SCRIPT);
    assert_eq!(files[FRAGMENT_PATH].0, FRAGMENT);
    let text = stdout(&output);
    assert!(text.contains(&format!("installed: {}", home.path(SCRIPT_PATH).display())), "{text}");
    assert!(text.contains(&format!("installed: {}", home.path(FRAGMENT_PATH).display())), "{text}");
    assert!(text.contains("systemctl --user restart wireplumber"), "{text}");
}

#[test]
fn a_second_run_changes_nothing() {
    let home = Home::new();
    home.setup(&[]);
    let before = home.files();
    let output = home.setup(&[]);
    assert_eq!(home.files(), before, "contents and modification times stay");
    let text = stdout(&output);
    assert!(text.contains("up to date") && text.contains("nothing changed"), "{text}");
}

#[test]
fn an_outdated_file_is_replaced() {
    let home = Home::new();
    home.setup(&[]);
    fs::write(home.path(SCRIPT_PATH), "-- an older version\n").unwrap();
    let text = stdout(&home.setup(&[]));
    assert!(text.contains(&format!("updated: {}", home.path(SCRIPT_PATH).display())), "{text}");
    assert_eq!(fs::read_to_string(home.path(SCRIPT_PATH)).unwrap(), SCRIPT);
}

#[test]
fn uninstall_removes_exactly_the_two_files() {
    let home = Home::new();
    home.setup(&[]);
    // Files of the user's own, next to ours.
    let mine = ["data/wireplumber/scripts/mine.lua", "config/wireplumber/wireplumber.conf.d/50-mine.conf"];
    for path in mine {
        fs::write(home.path(path), "mine\n").unwrap();
    }
    let output = home.setup(&["--uninstall"]);
    let files = home.files();
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, [mine[1], mine[0]]);
    assert!(files.values().all(|(text, _)| text == "mine\n"));
    let text = stdout(&output);
    assert!(text.contains(&format!("removed: {}", home.path(SCRIPT_PATH).display())), "{text}");
    assert!(text.contains("systemctl --user restart wireplumber"), "{text}");

    // Again: nothing left to remove, nothing else touched.
    let text = stdout(&home.setup(&["--uninstall"]));
    assert!(text.contains("not installed") && text.contains("nothing changed"), "{text}");
    assert_eq!(home.files(), files);
}

#[test]
fn without_xdg_variables_the_files_go_under_home() {
    let home = Home::new();
    let output = Command::new(env!("CARGO_BIN_EXE_pvmctl"))
        .args(["setup", "wireplumber"])
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home.path("home"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let names: Vec<String> = home.files().into_keys().collect();
    assert_eq!(
        names,
        [
            "home/.config/wireplumber/wireplumber.conf.d/90-pipewire-volume-mixer.conf",
            "home/.local/share/wireplumber/scripts/pipewire-volume-mixer-hold.lua"
        ]
    );
}
