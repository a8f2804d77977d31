//! Carries out the daemon's [`Action`]s on a [`Session`].

use anyhow::Result;

use super::params;
use super::session::Session;
use crate::channels::ChannelAction;
use crate::daemon::Action;
use crate::metadata_view::CONFIGURED_SINK_KEY;
use crate::router::RouteAction;

/// Key of the `default` metadata that releases a held stream: subject = the
/// stream's node id, value = its `object.serial` (see contrib/wireplumber/
/// and docs/architecture.md).
pub const DECISION_KEY: &str = "pvm.decision";
/// Key of the `default` metadata naming the sink we pinned a stream to (its
/// `object.serial`): the hold also waits until `target.object` says the
/// same, so a remembered target restored by the session manager cannot slip
/// through.
pub const TARGET_KEY: &str = "pvm.target";
/// Key (subject 0 of the `default` metadata) by which the routing hold
/// announces itself.
pub const HOLD_KEY: &str = "pvm.hold";

/// Performs one action; returns the ids of the proxies it wrote through.
pub fn perform(session: &Session, action: &Action) -> Result<Vec<u32>> {
    Ok(match action {
        Action::Route(RouteAction::Pin { stream, sink_serial, sink_id }) => {
            let serial = sink_serial.to_string();
            vec![
                session.set_metadata(*stream, "target.object", Some("Spa:Id"), Some(&serial))?,
                session.set_metadata(*stream, "target.node", Some("Spa:Id"), Some(&sink_id.to_string()))?,
                session.set_metadata(*stream, TARGET_KEY, Some("Spa:Id"), Some(&serial))?,
            ]
        }
        Action::Route(RouteAction::Unpin { stream }) => vec![
            session.set_metadata(*stream, "target.object", None, None)?,
            session.set_metadata(*stream, "target.node", None, None)?,
            session.set_metadata(*stream, TARGET_KEY, None, None)?,
        ],
        Action::Route(RouteAction::Decide { stream, serial }) => {
            vec![session.set_metadata(*stream, DECISION_KEY, Some("Spa:Int"), Some(&serial.to_string()))?]
        }
        Action::NodeVolume { node, channels, muted } => {
            vec![session.set_node_props(*node, &params::build_props(channels.as_deref(), *muted))?]
        }
        Action::RouteVolume { device, index, route_device, channels, muted } => vec![session
            .set_device_route(*device, &params::build_route(*index, *route_device, channels.as_deref(), *muted))?],
        Action::DefaultSink { name } => {
            let value = serde_json::json!({ "name": name }).to_string();
            vec![session.set_metadata(0, CONFIGURED_SINK_KEY, Some("Spa:String:JSON"), Some(&value))?]
        }
        Action::Channel(ChannelAction::Create { name, description }) => {
            vec![session.create_channel(name, description)?]
        }
        Action::Channel(ChannelAction::Link { output_node, output_port, input_node, input_port }) => {
            vec![session.create_link(*output_node, *output_port, *input_node, *input_port)?]
        }
        Action::Channel(ChannelAction::Destroy { id, .. }) => {
            session.destroy(*id)?;
            Vec::new()
        }
    })
}
