//! The WirePlumber hook as the Debian package installs it, system-wide in
//! `/usr/share/wireplumber/`: WirePlumber 0.5 loads it from there, the
//! daemon sees the hold, and a user's file of the same name replaces it.
//!
//! These need the package installed, so they are `#[ignore]`d in the normal
//! run; scripts/package-test.sh runs them (`--ignored`) between installing
//! and purging the package, with `PVM_DAEMON_BIN` pointing at the packaged
//! daemon.

use std::path::Path;
use std::time::Duration;

use testbed::hook::{HOLD_FRAGMENT, HOLD_KEY, HOLD_SCRIPT};
use testbed::{Stack, TestBed};

const TIMEOUT: Duration = Duration::from_secs(15);
const SCRIPT: &str = "/usr/share/wireplumber/scripts/pipewire-volume-mixer-hold.lua";
const FRAGMENT: &str = "/usr/share/wireplumber/wireplumber.conf.d/90-pipewire-volume-mixer.conf";
const SINKS: [&str; 2] = ["speakers", "game"];

/// Fails unless the package's two files are installed, as shipped.
fn require_package() {
    for (path, shipped) in [(SCRIPT, HOLD_SCRIPT), (FRAGMENT, HOLD_FRAGMENT)] {
        let installed = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e} (install the package first: scripts/package-test.sh)"));
        assert_eq!(installed, shipped, "{path} is the shipped file");
    }
}

fn announced(bed: &TestBed) -> bool {
    bed.dump().is_ok_and(|g| g.metadata_value("default", 0, HOLD_KEY).is_some())
}

#[test]
#[ignore = "needs the Debian package installed; scripts/package-test.sh runs it"]
fn wireplumber_05_loads_the_packaged_hook_and_the_daemon_sees_the_hold() {
    require_package();
    // Ready only once the hook has announced itself; the bed wrote no hook files.
    let bed = TestBed::builder().stack(Stack::Pw14Wp05).sinks(&SINKS).system_hold_hook().start().unwrap();
    assert!(bed.hold_hook() && announced(&bed));
    let user_files = ["xdg-data/wireplumber/scripts", "xdg-config/wireplumber/wireplumber.conf.d"]
        .map(|dir| bed.dir().join(dir))
        .into_iter()
        .filter(|dir| dir.is_dir())
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("pipewire-volume-mixer"))
        .collect::<Vec<_>>();
    assert!(user_files.is_empty(), "the bed installed {user_files:?} itself");
    let (daemon, reader) = bed.spawn_daemon_in_sync(&[]).unwrap();
    testbed::wait_status(&reader, TIMEOUT, "the daemon to see the hold", |s| s.hold_active)
        .unwrap_or_else(|e| panic!("{e}\n{}", daemon.log_tail(30)));
    eprintln!("daemon: {}", daemon_binary());
}

#[test]
#[ignore = "needs the Debian package installed; scripts/package-test.sh runs it"]
fn a_users_file_of_the_same_name_replaces_the_packaged_one() {
    require_package();
    // `pvmctl setup wireplumber` writes the same two file names per user: the
    // hook runs (once: the user's fragment replaces the system one).
    let with_user_copy = TestBed::builder().stack(Stack::Pw14Wp05).sinks(&SINKS).hold_hook(true).start().unwrap();
    assert!(announced(&with_user_copy));
    // An empty file of that name turns the packaged hook off for the user.
    let masked = TestBed::builder().stack(Stack::Pw14Wp05).sinks(&SINKS).hold_hook(false).start().unwrap();
    let (daemon, reader) = masked.spawn_daemon_in_sync(&[]).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(!announced(&masked), "the packaged hook ran despite the user's empty fragment");
    let status = testbed::wait_status(&reader, TIMEOUT, "in sync", |s| s.connected).unwrap();
    assert!(!status.hold_active, "{}", daemon.log_tail(30));
}

fn daemon_binary() -> String {
    std::env::var("PVM_DAEMON_BIN").unwrap_or_else(|_| "(the workspace's)".into())
}

#[test]
fn the_packaged_paths_are_where_wireplumber_05_looks_system_wide() {
    // The package puts the files under WirePlumber's data dir; the names are
    // the ones `pvmctl setup wireplumber` uses per user, so a user's copy
    // replaces the packaged one.
    assert_eq!(Path::new(SCRIPT).file_name(), Some(testbed::hook::HOLD_SCRIPT_NAME.as_ref()));
    assert_eq!(Path::new(FRAGMENT).file_name(), Some(testbed::hook::HOLD_FRAGMENT_NAME.as_ref()));
    let package = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/package.sh")).unwrap();
    assert!(package.contains(SCRIPT) && package.contains(FRAGMENT), "scripts/package.sh installs both");
}
