//! `--remove-channels`: removes every channel an earlier run made (their
//! links go with them) and returns their names. Channels linger in PipeWire
//! after the daemon exits; this is how they are taken away for good.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use anyhow::{bail, Context as _, Result};
use pipewire as pw;
use pw::node::{Node, NodeListener};
use pw::types::ObjectType;

use crate::channels::MARKER_KEY;

/// A sink bound to read its full properties (the registry's global carries
/// only well-known keys, not our marker). Listener before proxy: it is
/// unhooked while the proxy is alive.
struct Candidate {
    _listener: NodeListener,
    _proxy: Node,
}

/// Connects, finds every sink marked as our channel, destroys it, and waits
/// until PipeWire has processed that.
pub fn remove_channels() -> Result<Vec<String>> {
    let main_loop = pw::main_loop::MainLoopRc::new(None).context("creating a main loop")?;
    let context = pw::context::ContextRc::new(&main_loop, None).context("creating a PipeWire context")?;
    let core = context.connect_rc(None).context("connecting to PipeWire")?;
    let registry = core.get_registry_rc().context("getting the registry")?;

    let found: Rc<RefCell<Vec<(u32, String)>>> = Rc::default();
    let candidates: Rc<RefCell<Vec<Candidate>>> = Rc::default();
    let failure: Rc<RefCell<Option<String>>> = Rc::default();
    let _registry_listener = {
        let (found, candidates, registry2) = (found.clone(), candidates.clone(), registry.downgrade());
        registry
            .add_listener_local()
            .global(move |global| {
                let Some(props) = global.props else { return };
                if global.type_ != ObjectType::Node || props.get("media.class") != Some("Audio/Sink") {
                    return;
                }
                let Some(registry) = registry2.upgrade() else { return };
                let Ok(proxy) = registry.bind::<Node, _>(global) else { return };
                let (id, found) = (global.id, found.clone());
                let listener = proxy
                    .add_listener_local()
                    .info(move |info| {
                        let Some(props) = info.props() else { return };
                        let mut found = found.borrow_mut();
                        if props.get(MARKER_KEY) == Some("true") && !found.iter().any(|(f, _)| *f == id) {
                            found.push((id, props.get("node.name").unwrap_or("").to_owned()));
                        }
                    })
                    .register();
                candidates.borrow_mut().push(Candidate { _listener: listener, _proxy: proxy });
            })
            .register()
    };

    // Round trip 1: every global is announced (and bound). Round trip 2:
    // the bound nodes' info has arrived. Round trip 3: the destroys are done.
    let round = Rc::new(Cell::new(1u8));
    let pending = Rc::new(Cell::new(core.sync(0).context("PipeWire sync")?.seq()));
    let _core_listener = {
        let (main_loop, core2, registry, found, round, pending, failure2) = (
            main_loop.clone(),
            core.clone(),
            registry.clone(),
            found.clone(),
            round.clone(),
            pending.clone(),
            failure.clone(),
        );
        let main_loop_err = main_loop.clone();
        let failure = failure.clone();
        core.add_listener_local()
            .done(move |id, seq| {
                if id != pw::core::PW_ID_CORE || seq.seq() != pending.get() {
                    return;
                }
                match round.get() {
                    1 => {}
                    2 => {
                        for (id, _) in found.borrow().iter() {
                            let _ = registry.destroy_global(*id);
                        }
                    }
                    _ => {
                        main_loop.quit();
                        return;
                    }
                }
                round.set(round.get() + 1);
                match core2.sync(0) {
                    Ok(next) => pending.set(next.seq()),
                    Err(e) => {
                        *failure2.borrow_mut() = Some(format!("PipeWire sync: {e}"));
                        main_loop.quit();
                    }
                }
            })
            .error(move |id, _seq, res, message| {
                // Errors about the nodes we only read do not matter.
                if id == pw::core::PW_ID_CORE {
                    *failure.borrow_mut() = Some(format!("PipeWire error {res}: {message}"));
                    main_loop_err.quit();
                }
            })
            .register()
    };
    main_loop.run();
    drop(candidates);
    if let Some(why) = failure.borrow_mut().take() {
        bail!(why);
    }
    let names = found.borrow().iter().map(|(_, name)| name.clone()).collect();
    Ok(names)
}
