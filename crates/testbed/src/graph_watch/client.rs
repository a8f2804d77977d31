//! The watcher's PipeWire client: its own main loop on its own thread,
//! connected to the bed's socket by path. Everything it hears goes into the
//! shared [`WatchLog`](super::WatchLog).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use pipewire as pw;
use pw::metadata::{Metadata, MetadataListener};
use pw::node::{Node, NodeListener};
use pw::spa::param::ParamType;
use pw::spa::pod::Pod;
use pw::types::ObjectType;

use super::record::{LinkSeen, NodeSeen, VolumeSeen};
use super::{Command, Shared, WatchOptions};
use crate::graph::{AUDIO_SINK, STREAM_OUTPUT_AUDIO};

// Fields drop in declaration order: each listener is declared before the
// proxy it listens to, so it is unhooked while the proxy is still alive.

/// A sink bound for its `Props`.
struct BoundSink {
    _listener: NodeListener,
    proxy: Node,
}

/// The `default` metadata, bound for its properties.
struct BoundMetadata {
    _listener: MetadataListener,
    _proxy: Metadata,
}

/// What the callbacks bind, kept on the watcher thread.
#[derive(Default)]
struct Bound {
    sinks: HashMap<u32, BoundSink>,
    metadata: Vec<BoundMetadata>,
    /// Sinks removed inside a registry callback, freed from the command
    /// callback or at exit, never inside a PipeWire callback.
    graveyard: Vec<BoundSink>,
}

/// Sends PipeWire a message at once, so it knows this client has received
/// the globals announced so far.
///
/// PipeWire forwards a metadata property about an object only to clients that
/// have acknowledged the object's global (a client acknowledges with its next
/// message); a client that only listens would miss a write about a stream
/// that has just appeared. (The answer is not counted as a
/// [`GraphWatcher::sync`](super::GraphWatcher::sync).)
fn acknowledge_globals(core: &pw::core::CoreRc) {
    if let Err(e) = core.sync(0) {
        tracing::warn!("graph watcher: cannot reach PipeWire: {e}");
    }
}

/// The watcher thread: connects, records, runs until [`Command::Stop`] or
/// until the [`GraphWatcher`](super::GraphWatcher) is dropped. `ready` gets
/// `Ok` once the graph that existed at connection time is recorded (and,
/// with sink volumes, their current `Props`), or the reason it failed.
pub(super) fn run(
    socket: &str,
    options: WatchOptions,
    shared: &Arc<Shared>,
    commands: pw::channel::Receiver<Command>,
    ready: &mpsc::Sender<Result<(), String>>,
) {
    pw::init();
    // SAFETY: gettid has no preconditions and cannot fail.
    let thread_id = unsafe { libc::gettid() } as u32;
    shared.update(|log| log.thread_id = thread_id);
    let connected = (|| -> Result<_, pw::Error> {
        let main_loop = pw::main_loop::MainLoopRc::new(None)?;
        let context = pw::context::ContextRc::new(&main_loop, None)?;
        let core = context.connect_rc(Some(pw::properties::properties! { *pw::keys::REMOTE_NAME => socket }))?;
        let registry = core.get_registry_rc()?;
        Ok((main_loop, context, core, registry))
    })();
    let (main_loop, _context, core, registry) = match connected {
        Ok(parts) => parts,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot connect to {socket}: {e}")));
            return;
        }
    };
    let bound: Rc<RefCell<Bound>> = Rc::default();

    let on_global = Arc::clone(shared);
    let on_remove = Arc::clone(shared);
    let weak_registry = registry.downgrade();
    let bind = Rc::clone(&bound);
    let unbind = Rc::clone(&bound);
    let acknowledging_core = core.clone();
    let _registry_listener = registry
        .add_listener_local()
        .global(move |global| {
            let now = Instant::now();
            let Some(props) = global.props else { return };
            match global.type_ {
                ObjectType::Node => {
                    let media_class = props.get("media.class").unwrap_or_default().to_owned();
                    if options.metadata && media_class == STREAM_OUTPUT_AUDIO {
                        acknowledge_globals(&acknowledging_core);
                    }
                    let is_sink = media_class == AUDIO_SINK;
                    let seen = NodeSeen {
                        id: global.id,
                        name: props.get("node.name").unwrap_or_default().to_owned(),
                        app_name: props.get("application.name").map(str::to_owned),
                        media_class,
                        serial: props.get("object.serial").map(str::to_owned),
                        appeared: now,
                        removed: None,
                    };
                    on_global.update(|log| log.node_added(seen));
                    if let (true, Some(parse), Some(registry)) = (is_sink, options.sink_volume, weak_registry.upgrade())
                    {
                        match bind_sink(&registry, global, parse, &on_global) {
                            Ok(sink) => {
                                bind.borrow_mut().sinks.insert(global.id, sink);
                            }
                            Err(e) => tracing::warn!("graph watcher: cannot bind sink {}: {e}", global.id),
                        }
                    }
                }
                ObjectType::Link => {
                    let node = |key| props.get(key).and_then(|v| v.parse::<u32>().ok());
                    let (Some(output_node), Some(input_node)) = (node("link.output.node"), node("link.input.node"))
                    else {
                        return;
                    };
                    let seen = LinkSeen { id: global.id, output_node, input_node, appeared: now, removed: None };
                    on_global.update(|log| log.link_added(seen));
                }
                ObjectType::Metadata if options.metadata && props.get("metadata.name") == Some("default") => {
                    let Some(registry) = weak_registry.upgrade() else { return };
                    match bind_metadata(&registry, global, &on_global) {
                        Ok(metadata) => bind.borrow_mut().metadata.push(metadata),
                        Err(e) => tracing::warn!("graph watcher: cannot bind the default metadata: {e}"),
                    }
                }
                _ => {}
            }
        })
        .global_remove(move |id| {
            let now = Instant::now();
            let mut bound = unbind.borrow_mut();
            if let Some(sink) = bound.sinks.remove(&id) {
                bound.graveyard.push(sink);
            }
            on_remove.update(|log| log.global_removed(id, now));
        })
        .register();

    // Two round trips before "ready": the first brings the globals, the
    // second what binding them asked for (the sinks' Props).
    let asked: Rc<RefCell<Vec<pw::spa::utils::result::AsyncSeq>>> = Rc::default();
    let answered = Rc::clone(&asked);
    let on_done = Arc::clone(shared);
    let first = match core.sync(0) {
        Ok(seq) => seq,
        Err(e) => {
            let _ = ready.send(Err(format!("sync failed: {e}")));
            return;
        }
    };
    let second: Rc<RefCell<Option<pw::spa::utils::result::AsyncSeq>>> = Rc::default();
    let second_set = Rc::clone(&second);
    let ready_once = ready.clone();
    let done_core = core.clone();
    let _core_listener = core
        .add_listener_local()
        .done(move |id, seq| {
            if id != pw::core::PW_ID_CORE {
                return;
            }
            if seq == first {
                match done_core.sync(0) {
                    Ok(next) => *second_set.borrow_mut() = Some(next),
                    Err(e) => {
                        let _ = ready_once.send(Err(format!("sync failed: {e}")));
                    }
                }
                return;
            }
            if Some(seq) == *second_set.borrow() {
                let _ = ready_once.send(Ok(()));
                return;
            }
            let mut asked = answered.borrow_mut();
            if let Some(i) = asked.iter().position(|s| *s == seq) {
                asked.remove(i);
                on_done.update(|log| log.syncs_done += 1);
            }
        })
        .register();

    let quit = main_loop.clone();
    let command_core = core.clone();
    let command_bound = Rc::clone(&bound);
    let on_command = Arc::clone(shared);
    let _commands = commands.attach(main_loop.loop_(), move |command| {
        // Not a PipeWire callback: sinks removed earlier can go now.
        let dead = std::mem::take(&mut command_bound.borrow_mut().graveyard);
        drop(dead);
        match command {
            Command::SetProps { node, pod } => {
                let bound = command_bound.borrow();
                let sent = Instant::now();
                match (bound.sinks.get(&node), Pod::from_bytes(&pod)) {
                    (Some(sink), Some(pod)) => sink.proxy.set_param(ParamType::Props, 0, pod),
                    (None, _) => tracing::warn!("graph watcher: no bound sink {node} to set Props on"),
                    (_, None) => tracing::warn!("graph watcher: not a pod ({} bytes)", pod.len()),
                }
                on_command.update(|log| log.sent.push(sent));
            }
            Command::Sync => match command_core.sync(0) {
                Ok(seq) => asked.borrow_mut().push(seq),
                Err(e) => tracing::warn!("graph watcher: sync failed: {e}"),
            },
            Command::Stop => quit.quit(),
        }
    });
    main_loop.run();
    // Outside the loop: every proxy goes, each listener before its proxy.
    let everything = std::mem::take(&mut *bound.borrow_mut());
    drop(everything);
}

/// Binds sink node `global`, subscribes to its `Props` and records the first
/// channel's volume of each one that `parse` understands.
fn bind_sink(
    registry: &pw::registry::RegistryRc,
    global: &pw::registry::GlobalObject<&pw::spa::utils::dict::DictRef>,
    parse: fn(&Pod) -> Option<f32>,
    shared: &Arc<Shared>,
) -> Result<BoundSink, pw::Error> {
    let proxy: Node = registry.bind(global)?;
    let id = global.id;
    let on_param = Arc::clone(shared);
    let listener = proxy
        .add_listener_local()
        .param(move |_seq, kind, _index, _next, pod: Option<&Pod>| {
            let at = Instant::now();
            if kind != ParamType::Props {
                return;
            }
            if let Some(linear) = pod.and_then(parse) {
                on_param.update(|log| log.volumes.push(VolumeSeen { node: id, linear, at }));
            }
        })
        .register();
    proxy.subscribe_params(&[ParamType::Props]);
    Ok(BoundSink { _listener: listener, proxy })
}

/// Binds the `default` metadata `global` and records each property event
/// about a playback stream.
fn bind_metadata(
    registry: &pw::registry::RegistryRc,
    global: &pw::registry::GlobalObject<&pw::spa::utils::dict::DictRef>,
    shared: &Arc<Shared>,
) -> Result<BoundMetadata, pw::Error> {
    let proxy: Metadata = registry.bind(global)?;
    let on_property = Arc::clone(shared);
    let listener = proxy
        .add_listener_local()
        .property(move |subject, key, _type, value| {
            let at = Instant::now();
            if let Some(key) = key {
                let (key, value) = (key.to_owned(), value.map(str::to_owned));
                on_property.update(|log| log.metadata_changed(subject, key, value, at));
            }
            0
        })
        .register();
    Ok(BoundMetadata { _listener: listener, _proxy: proxy })
}
