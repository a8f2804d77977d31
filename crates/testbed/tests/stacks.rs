//! Each [`Stack`] runs the PipeWire and WirePlumber it names: the binaries
//! the processes run and the libpipewire / libwireplumber they have loaded
//! (a 1.4 client does not see a 0.3 server's core version in `pw-dump`).

use std::time::Duration;

use testbed::{AppSpec, Stack, TestBed, WirePlumber};

const TIMEOUT: Duration = Duration::from_secs(15);

/// The paths of the shared objects process `pid` has mapped.
fn mapped(pid: u32) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut found: Vec<String> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.contains(".so"))
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The one `libNAME.so*` among `paths`.
fn library<'a>(paths: &'a [String], name: &str) -> &'a str {
    let prefix = format!("{name}.so");
    let found: Vec<&String> =
        paths.iter().filter(|p| p.rsplit('/').next().is_some_and(|f| f.starts_with(&prefix))).collect();
    assert_eq!(found.len(), 1, "one {name} in {paths:#?}");
    found[0]
}

/// PipeWire's and WirePlumber's own shared objects (libraries, modules, SPA plugins).
fn stack_objects(paths: &[String]) -> impl Iterator<Item = &String> {
    paths.iter().filter(|p| ["libpipewire", "spa-0.2/", "libwireplumber"].iter().any(|w| p.contains(w)))
}

fn exe_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe")).unwrap().to_string_lossy().into_owned()
}

#[test]
fn each_stack_runs_the_pipewire_and_wireplumber_it_names_and_links_an_app() {
    for stack in Stack::ALL {
        let bed = TestBed::builder().stack(stack).sinks(&["speakers", "game"]).start().unwrap();
        assert_eq!(bed.stack(), stack);
        // pids: dbus-daemon, pipewire, wireplumber.
        let (pipewire, wireplumber) = (exe_of(bed.pids()[1]), exe_of(bed.pids()[2]));
        let (pw_maps, wp_maps) = (mapped(bed.pids()[1]), mapped(bed.pids()[2]));
        let libpipewire = [library(&pw_maps, "libpipewire-0.3"), library(&wp_maps, "libpipewire-0.3")];
        let libwireplumber = if stack.has_wireplumber_05() { "libwireplumber-0.5" } else { "libwireplumber-0.4" };
        let libwireplumber = library(&wp_maps, libwireplumber);
        eprintln!(
            "{stack}: {pipewire} with {}, {wireplumber} with {} and {libwireplumber}",
            libpipewire[0], libpipewire[1]
        );
        // Both servers of a stack run the same libpipewire.
        let want = if stack.has_pipewire_14() { "/usr/lib/" } else { "pipewire-0.3/usr/lib/" };
        for lib in libpipewire {
            assert!(lib.contains(want), "{stack}: {lib}");
            assert!(lib.ends_with(if stack.has_pipewire_14() { ".so.0.1402.0" } else { ".so.0.365.0" }), "{lib}");
        }
        if !stack.has_wireplumber_05() {
            assert!(libwireplumber.ends_with("libwireplumber-0.4.so.0.4.13"), "{libwireplumber}");
        }
        if stack == Stack::Pw03Wp04 {
            // Nothing of the installed PipeWire in either process: mixing crashes WirePlumber.
            for object in stack_objects(&pw_maps).chain(stack_objects(&wp_maps)) {
                assert!(object.contains("/pipewire-0.3/usr/lib/"), "{stack}: {object} is not from the prefix");
            }
        }
        match stack {
            Stack::Pw14Wp05 | Stack::Pw14Wp04 => assert_eq!(pipewire, "/usr/bin/pipewire"),
            Stack::Pw03Wp04 => assert!(pipewire.ends_with("pipewire-0.3/usr/bin/pipewire"), "{stack}: {pipewire}"),
        }
        match stack {
            Stack::Pw14Wp05 => {
                assert_eq!(wireplumber, "/usr/bin/wireplumber");
                assert_eq!(bed.wireplumber(), WirePlumber::Installed);
                assert!(bed.hold_hook());
            }
            Stack::Pw14Wp04 => assert!(wireplumber.ends_with("wireplumber-0.4/usr/bin/wireplumber"), "{wireplumber}"),
            Stack::Pw03Wp04 => assert!(wireplumber.ends_with("pipewire-0.3/usr/bin/wireplumber"), "{wireplumber}"),
        }
        if !stack.has_wireplumber_05() {
            assert_eq!(bed.wireplumber(), WirePlumber::V0_4);
            assert!(!bed.hold_hook(), "{stack}: no hook on WirePlumber 0.4");
        }
        let mut app = bed.spawn_app(&AppSpec::new("Stack Check")).unwrap();
        let streams = app.wait_for_streams(TIMEOUT).unwrap();
        bed.wait_until(TIMEOUT, &format!("{stack}: the stream linked to the default sink"), || {
            bed.sink_names_linked_to(streams[0]) == ["speakers"]
        })
        .unwrap();
    }
}

#[test]
fn the_builders_wireplumber_choice_maps_onto_the_stacks() {
    let v04 = |stack| TestBed::builder().stack(stack).wireplumber(WirePlumber::V0_4).resolved_stack().unwrap();
    assert_eq!(v04(Stack::Pw14Wp05), Stack::Pw14Wp04);
    assert_eq!(v04(Stack::Pw03Wp04), Stack::Pw03Wp04);
    let installed = TestBed::builder().stack(Stack::Pw03Wp04).wireplumber(WirePlumber::Installed);
    assert_eq!(installed.resolved_stack().unwrap(), Stack::Pw14Wp05);
}
