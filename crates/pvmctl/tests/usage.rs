//! Exit codes of bad usage and of a missing daemon; completions, man page
//! and stats.

mod common;

use common::{code, stderr, stdout, Place};

#[test]
fn no_daemon_exits_3_and_says_how_to_start_it() {
    let place = Place::new();
    for args in [
        &["ping"][..],
        &["route", "a", "b"][..],
        &["volume", "game", "0.5"][..],
        &["mute", "game", "on"][..],
        &["default", "game"][..],
        &["reload"][..],
        &["trace"][..],
    ] {
        let output = place.run(args);
        assert_eq!(code(&output), 3, "{args:?}");
        let err = stderr(&output);
        assert!(err.starts_with("pvmctl: the daemon is not running (no one listens on "), "{err}");
        assert!(err.contains(&place.socket().display().to_string()), "{err}");
        assert!(
            err.contains("systemctl --user start pipewire-volume-mixer` or run `pipewire-volume-mixer-daemon`"),
            "{err}"
        );
    }
}

#[test]
fn stale_socket_file_also_means_not_running() {
    let place = Place::new();
    drop(std::os::unix::net::UnixListener::bind(place.socket()).unwrap());
    assert_eq!(code(&place.run(&["ping"])), 3);
}

#[test]
fn bad_usage_exits_2() {
    let place = Place::new();
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["volume"][..],
        &["volume", "game", "150%"][..],
        &["volume", "game", "loud"][..],
        &["volume", "game", "1e0"][..],
        &["mute", "game", "maybe"][..],
        &["route", "only-app"][..],
        &["ping", "extra"][..],
        &["status", "--yaml"][..],
        &["completions", "tcsh"][..],
        &["complete-names", "cards"][..],
    ] {
        let output = place.run(args);
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
        assert!(!stderr(&output).is_empty(), "{args:?}");
    }
}

#[test]
fn help_and_version_exit_0() {
    let place = Place::new();
    let help = place.run(&["--help"]);
    assert_eq!(code(&help), 0);
    assert!(stdout(&help).contains("Exit status"), "{}", stdout(&help));
    let version = place.run(&["--version"]);
    assert_eq!(code(&version), 0);
    assert!(stdout(&version).starts_with("pvmctl "));
}

#[test]
fn completions_for_each_shell() {
    let place = Place::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = place.run(&["completions", shell]);
        assert_eq!(code(&output), 0, "{shell}");
        let script = stdout(&output);
        assert!(script.contains("pvmctl") && script.contains("app-volume"), "{shell}");
    }
}

#[test]
fn man_page_is_roff() {
    let output = Place::new().run(&["man"]);
    assert_eq!(code(&output), 0);
    let page = stdout(&output);
    assert!(page.starts_with(".ie") || page.contains(".TH pvmctl"), "{page}");
    assert!(page.contains("app\\-volume"), "{page}");
}

#[test]
fn stats_are_printed_without_comments() {
    let place = Place::new();
    std::fs::write(
        place.stats(),
        "# HELP pvm_publishes_total Snapshots published.\n\
         # TYPE pvm_publishes_total counter\n\
         pvm_publishes_total 15\n\
         pvm_events_total{kind=\"node_added\"} 3\n",
    )
    .unwrap();
    let output = place.run(&["stats"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "pvm_publishes_total                  15\npvm_events_total{kind=\"node_added\"}  3\n");
}

#[test]
fn missing_stats_file_exits_3() {
    let place = Place::new();
    let output = place.run(&["stats"]);
    assert_eq!(code(&output), 3);
    assert!(stderr(&output).contains("no stats file at"), "{}", stderr(&output));
}
