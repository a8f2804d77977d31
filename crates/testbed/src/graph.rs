//! The PipeWire graph as printed by `pw-dump`, with the questions tests ask of it.

use serde_json::{Map, Value};

use crate::error::Result;

/// `media.class` of an application's playback stream.
pub const STREAM_OUTPUT_AUDIO: &str = "Stream/Output/Audio";
/// `media.class` of a sink.
pub const AUDIO_SINK: &str = "Audio/Sink";

/// A node of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The node's global id.
    pub id: u32,
    /// Its properties (`info.props`), values as `pw-dump` typed them.
    pub props: Map<String, Value>,
    /// Its params (`info.params`): param name to list of values.
    pub params: Map<String, Value>,
    /// Its state (`info.state`): `"suspended"`, `"idle"`, `"running"`, ...
    pub state: String,
}

impl Node {
    /// A property as a string: strings as they are, numbers and booleans
    /// printed (`object.serial` is a number in `pw-dump`).
    pub fn prop(&self, key: &str) -> Option<String> {
        match self.props.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// `node.name`.
    pub fn name(&self) -> Option<String> {
        self.prop("node.name")
    }

    /// `media.class`.
    pub fn media_class(&self) -> Option<String> {
        self.prop("media.class")
    }

    /// The channel volumes (linear) and the mute flag of the node's `Props` param.
    pub fn volume(&self) -> Option<(Vec<f32>, bool)> {
        let props = self.params.get("Props")?.as_array()?;
        let with_volumes = props.iter().find(|p| p.get("channelVolumes").is_some())?;
        let volumes = with_volumes
            .get("channelVolumes")?
            .as_array()?
            .iter()
            .map(|v| v.as_f64().map(|v| v as f32))
            .collect::<Option<Vec<f32>>>()?;
        let mute = with_volumes.get("mute").and_then(Value::as_bool).unwrap_or(false);
        Some((volumes, mute))
    }
}

/// A link between two nodes (port-level links are reported once per port pair).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The link's global id.
    pub id: u32,
    /// The node the data comes from.
    pub output_node: u32,
    /// The node the data goes to.
    pub input_node: u32,
    /// The link state (`"active"`, `"paused"`, `"init"`, `"error"`, ...).
    pub state: String,
}

/// One entry of a metadata object.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataEntry {
    /// The object the entry is about (0 for global settings).
    pub subject: u32,
    /// The key, e.g. `target.object`.
    pub key: String,
    /// The type, e.g. `Spa:Id` or `Spa:String:JSON`; may be empty.
    pub type_: String,
    /// The value; JSON-typed values appear parsed, as `pw-dump` prints them.
    pub value: Value,
}

/// A client connected to PipeWire.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// The client's global id.
    pub id: u32,
    /// Its properties.
    pub props: Map<String, Value>,
}

impl Client {
    /// `application.name`.
    pub fn application_name(&self) -> Option<&str> {
        self.props.get("application.name").and_then(Value::as_str)
    }
}

/// A snapshot of the whole graph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Every object exactly as `pw-dump` printed it.
    pub objects: Vec<Value>,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The links.
    pub links: Vec<Link>,
    /// The clients.
    pub clients: Vec<Client>,
    /// Metadata objects: `metadata.name` and entries.
    pub metadata: Vec<(String, Vec<MetadataEntry>)>,
}

const NODE: &str = "PipeWire:Interface:Node";
const LINK: &str = "PipeWire:Interface:Link";
const CLIENT: &str = "PipeWire:Interface:Client";
const METADATA: &str = "PipeWire:Interface:Metadata";

fn id_of(object: &Value, key: &str) -> Option<u32> {
    object.get(key)?.as_u64().and_then(|id| u32::try_from(id).ok())
}

fn object_map(object: &Value, path: &[&str]) -> Map<String, Value> {
    path.iter().try_fold(object, |v, key| v.get(key)).and_then(Value::as_object).cloned().unwrap_or_default()
}

impl Graph {
    /// Parses the output of `pw-dump` (a JSON array of objects).
    pub fn parse(json: &str) -> Result<Graph> {
        let objects: Vec<Value> = serde_json::from_str(json)?;
        let mut graph = Graph::default();
        for object in &objects {
            let Some(id) = id_of(object, "id") else {
                continue;
            };
            match object.get("type").and_then(Value::as_str) {
                Some(NODE) => graph.nodes.push(Node {
                    id,
                    props: object_map(object, &["info", "props"]),
                    params: object_map(object, &["info", "params"]),
                    state: object.pointer("/info/state").and_then(Value::as_str).unwrap_or_default().to_owned(),
                }),
                Some(LINK) => {
                    let info = object.get("info").unwrap_or(&Value::Null);
                    if let (Some(output_node), Some(input_node)) =
                        (id_of(info, "output-node-id"), id_of(info, "input-node-id"))
                    {
                        graph.links.push(Link {
                            id,
                            output_node,
                            input_node,
                            state: info.get("state").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        });
                    }
                }
                Some(CLIENT) => graph.clients.push(Client { id, props: object_map(object, &["info", "props"]) }),
                Some(METADATA) => {
                    let props = object_map(object, &["props"]);
                    let name = props.get("metadata.name").and_then(Value::as_str).unwrap_or_default().to_owned();
                    let entries = object
                        .get("metadata")
                        .and_then(Value::as_array)
                        .map(|entries| entries.iter().filter_map(metadata_entry).collect())
                        .unwrap_or_default();
                    graph.metadata.push((name, entries));
                }
                _ => {}
            }
        }
        graph.objects = objects;
        Ok(graph)
    }

    /// The node with this global id.
    pub fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The node with this `node.name`.
    pub fn node_named(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.prop("node.name").as_deref() == Some(name))
    }

    /// Nodes whose property `key` equals `value` (compared as [`Node::prop`] prints it).
    pub fn nodes_where<'a>(&'a self, key: &'a str, value: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes.iter().filter(move |n| n.prop(key).as_deref() == Some(value))
    }

    /// The `node.name`s of all sinks (`media.class = Audio/Sink`), in id order.
    pub fn sink_names(&self) -> Vec<String> {
        self.nodes_where("media.class", AUDIO_SINK).filter_map(Node::name).collect()
    }

    /// The playback stream node ids whose `application.name` is `app_name`, ascending.
    pub fn streams_of_app(&self, app_name: &str) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .nodes_where("application.name", app_name)
            .filter(|n| n.media_class().as_deref() == Some(STREAM_OUTPUT_AUDIO))
            .map(|n| n.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The `node.name`s of the nodes that `node_id`'s output is linked to, sorted, without repeats.
    pub fn sink_names_linked_to(&self, node_id: u32) -> Vec<String> {
        let mut names: Vec<String> = self
            .links
            .iter()
            .filter(|l| l.output_node == node_id)
            .filter_map(|l| self.node(l.input_node)?.name())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The entries of the metadata object named `name` (e.g. `"default"`).
    pub fn metadata(&self, name: &str) -> &[MetadataEntry] {
        self.metadata.iter().find(|(n, _)| n == name).map(|(_, entries)| entries.as_slice()).unwrap_or_default()
    }

    /// Whether a metadata object named `name` (e.g. `"default"`) exists.
    pub fn has_metadata(&self, name: &str) -> bool {
        self.metadata.iter().any(|(n, _)| n == name)
    }

    /// The value of `key` for `subject` in the metadata object `name`.
    pub fn metadata_value(&self, name: &str, subject: u32, key: &str) -> Option<&Value> {
        self.metadata(name).iter().find(|e| e.subject == subject && e.key == key).map(|e| &e.value)
    }

    /// The default sink's `node.name`, as the session manager chose it
    /// (`default.audio.sink` in the `default` metadata).
    pub fn default_sink_name(&self) -> Option<String> {
        let value = self.metadata_value("default", 0, "default.audio.sink")?;
        // Normally parsed JSON ({"name": ...}); older tools print it as a string.
        let parsed;
        let object = match value {
            Value::String(s) => {
                parsed = serde_json::from_str::<Value>(s).ok()?;
                &parsed
            }
            other => other,
        };
        object.get("name")?.as_str().map(str::to_owned)
    }

    /// Whether a client with this `application.name` is connected.
    pub fn has_client(&self, application_name: &str) -> bool {
        self.clients.iter().any(|c| c.application_name() == Some(application_name))
    }
}

fn metadata_entry(entry: &Value) -> Option<MetadataEntry> {
    Some(MetadataEntry {
        subject: id_of(entry, "subject")?,
        key: entry.get("key")?.as_str()?.to_owned(),
        type_: entry.get("type").and_then(Value::as_str).unwrap_or_default().to_owned(),
        value: entry.get("value").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = r#"[
      { "id": 32, "type": "PipeWire:Interface:Node",
        "info": { "state": "running", "props": { "node.name": "speakers", "media.class": "Audio/Sink", "object.serial": 32 },
                  "params": { "Props": [ { "volume": 1.0, "mute": true, "channelVolumes": [ 0.125, 0.25 ] }, { "params": [] } ] } } },
      { "id": 60, "type": "PipeWire:Interface:Node",
        "info": { "props": { "application.name": "Firefox", "media.class": "Stream/Output/Audio" }, "params": {} } },
      { "id": 61, "type": "PipeWire:Interface:Node",
        "info": { "props": { "application.name": "Firefox", "media.class": "Stream/Input/Audio" } } },
      { "id": 70, "type": "PipeWire:Interface:Link",
        "info": { "output-node-id": 60, "output-port-id": 1, "input-node-id": 32, "input-port-id": 2, "state": "active" } },
      { "id": 71, "type": "PipeWire:Interface:Link",
        "info": { "output-node-id": 60, "output-port-id": 3, "input-node-id": 32, "input-port-id": 4, "state": "active" } },
      { "id": 35, "type": "PipeWire:Interface:Client", "info": { "props": { "application.name": "WirePlumber" } } },
      { "id": 40, "type": "PipeWire:Interface:Metadata", "props": { "metadata.name": "default" },
        "metadata": [ { "subject": 0, "key": "default.audio.sink", "type": "Spa:String:JSON", "value": { "name": "speakers" } },
                      { "subject": 60, "key": "target.object", "type": "Spa:Id", "value": "32" } ] }
    ]"#;

    #[test]
    fn parses_nodes_links_clients_and_metadata() {
        let graph = Graph::parse(DUMP).unwrap();
        assert_eq!(graph.sink_names(), ["speakers"]);
        assert_eq!(graph.node_named("speakers").unwrap().id, 32);
        assert_eq!(graph.node_named("speakers").unwrap().state, "running");
        assert_eq!(graph.node(32).unwrap().prop("object.serial").as_deref(), Some("32"));
        assert_eq!(graph.streams_of_app("Firefox"), [60]);
        assert_eq!(graph.sink_names_linked_to(60), ["speakers"]);
        assert!(graph.sink_names_linked_to(32).is_empty());
        assert!(graph.has_client("WirePlumber"));
        assert!(!graph.has_client("pipewire-volume-mixer"));
        assert_eq!(graph.default_sink_name().as_deref(), Some("speakers"));
        assert_eq!(graph.metadata_value("default", 60, "target.object"), Some(&Value::from("32")));
    }

    #[test]
    fn reads_volume_and_mute_from_props_param() {
        let graph = Graph::parse(DUMP).unwrap();
        assert_eq!(graph.node(32).unwrap().volume(), Some((vec![0.125, 0.25], true)));
        assert_eq!(graph.node(60).unwrap().volume(), None);
    }

    #[test]
    fn default_sink_given_as_json_string_is_understood() {
        let dump = r#"[{ "id": 1, "type": "PipeWire:Interface:Metadata", "props": { "metadata.name": "default" },
            "metadata": [ { "subject": 0, "key": "default.audio.sink", "type": "Spa:String:JSON", "value": "{\"name\":\"game\"}" } ] }]"#;
        assert_eq!(Graph::parse(dump).unwrap().default_sink_name().as_deref(), Some("game"));
    }

    #[test]
    fn rejects_output_that_is_not_a_dump() {
        assert!(Graph::parse("Error: failed to connect").is_err());
    }
}
