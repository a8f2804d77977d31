//! `--remove-channels`: removes every channel an earlier run made (their
//! links go with them) and returns their names. Channels linger in PipeWire
//! after the daemon exits; this is how they are taken away for good.

use std::cell::RefCell;
use std::rc::Rc;

use anyhow::{bail, Context as _, Result};
use pipewire as pw;
use pw::types::ObjectType;

use crate::channels::MARKER_KEY;

/// Connects, finds every node marked as our channel, destroys it, and waits
/// until PipeWire has processed that.
pub fn remove_channels() -> Result<Vec<String>> {
    let main_loop = pw::main_loop::MainLoopRc::new(None).context("creating a main loop")?;
    let context = pw::context::ContextRc::new(&main_loop, None).context("creating a PipeWire context")?;
    let core = context.connect_rc(None).context("connecting to PipeWire")?;
    let registry = core.get_registry_rc().context("getting the registry")?;

    let found: Rc<RefCell<Vec<(u32, String)>>> = Rc::default();
    let failure: Rc<RefCell<Option<String>>> = Rc::default();
    let _registry_listener = {
        let found = found.clone();
        registry
            .add_listener_local()
            .global(move |global| {
                let Some(props) = global.props else { return };
                if global.type_ == ObjectType::Node && props.get(MARKER_KEY) == Some("true") {
                    let name = props.get("node.name").unwrap_or("").to_owned();
                    found.borrow_mut().push((global.id, name));
                }
            })
            .register()
    };

    // Round trip 1: every global is announced. Round trip 2: the destroys
    // are processed.
    let pending = Rc::new(RefCell::new(core.sync(0).context("PipeWire sync")?));
    let destroyed = Rc::new(RefCell::new(false));
    let _core_listener = {
        let (main_loop, core2, registry, found, pending, destroyed, failure2) = (
            main_loop.clone(),
            core.clone(),
            registry.clone(),
            found.clone(),
            pending.clone(),
            destroyed.clone(),
            failure.clone(),
        );
        let main_loop_err = main_loop.clone();
        let failure = failure.clone();
        core.add_listener_local()
            .done(move |id, seq| {
                if id != pw::core::PW_ID_CORE || seq != *pending.borrow() {
                    return;
                }
                if *destroyed.borrow() {
                    main_loop.quit();
                    return;
                }
                for (id, _) in found.borrow().iter() {
                    let _ = registry.destroy_global(*id);
                }
                *destroyed.borrow_mut() = true;
                match core2.sync(0) {
                    Ok(next) => *pending.borrow_mut() = next,
                    Err(e) => {
                        *failure2.borrow_mut() = Some(format!("PipeWire sync: {e}"));
                        main_loop.quit();
                    }
                }
            })
            .error(move |_id, _seq, res, message| {
                *failure.borrow_mut() = Some(format!("PipeWire error {res}: {message}"));
                main_loop_err.quit();
            })
            .register()
    };
    main_loop.run();
    if let Some(why) = failure.borrow_mut().take() {
        bail!(why);
    }
    let names = found.borrow().iter().map(|(_, name)| name.clone()).collect();
    Ok(names)
}
