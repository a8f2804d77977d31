//! Reading and building the `Props` and `Route` params that carry volume and
//! mute.
//!
//! Reading walks the pod in place (no intermediate `Value` tree): volume
//! events are the hottest path of the daemon.

use pipewire::spa::param::ParamType;
use pipewire::spa::pod::serialize::PodSerializer;
use pipewire::spa::pod::{Object, Pod, Property, PropertyFlags, Value, ValueArray};
use pipewire::spa::sys as spa_sys;
use pipewire::spa::utils::Id;

use crate::model::Channels;

/// Volume and mute found in a `Props` object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VolumeProps {
    /// `channelVolumes`, linear.
    pub channels: Option<Channels>,
    /// `mute`.
    pub muted: Option<bool>,
}

/// The fields of a `Route` param we use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteInfo {
    /// `index`.
    pub index: i32,
    /// `device`.
    pub device: i32,
    /// Output route (`direction` = Output).
    pub output: bool,
    /// Volume and mute from the route's `props`.
    pub volume: VolumeProps,
}

/// Parses a node's `Props` param.
pub fn parse_props(pod: &Pod) -> Option<VolumeProps> {
    let obj = pod.as_object().ok()?;
    let channels = obj.find_prop(Id(spa_sys::SPA_PROP_channelVolumes)).and_then(|p| float_array(p.value().as_bytes()));
    let muted = obj.find_prop(Id(spa_sys::SPA_PROP_mute)).and_then(|p| p.value().get_bool().ok());
    Some(VolumeProps { channels, muted })
}

/// Parses a device's `Route` param.
pub fn parse_route(pod: &Pod) -> Option<RouteInfo> {
    let obj = pod.as_object().ok()?;
    let int = |key| obj.find_prop(Id(key)).and_then(|p| p.value().get_int().ok());
    let index = int(spa_sys::SPA_PARAM_ROUTE_index)?;
    let device = int(spa_sys::SPA_PARAM_ROUTE_device)?;
    let output = obj
        .find_prop(Id(spa_sys::SPA_PARAM_ROUTE_direction))
        .and_then(|p| p.value().get_id().ok())
        .is_some_and(|id| id.0 == spa_sys::SPA_DIRECTION_OUTPUT);
    let volume =
        obj.find_prop(Id(spa_sys::SPA_PARAM_ROUTE_props)).and_then(|p| parse_props(p.value())).unwrap_or_default();
    Some(RouteInfo { index, device, output, volume })
}

/// Reads a pod of type Array of Float from its bytes (header included).
fn float_array(bytes: &[u8]) -> Option<Channels> {
    let u32_at = |off: usize| -> Option<u32> { Some(u32::from_ne_bytes(bytes.get(off..off + 4)?.try_into().ok()?)) };
    let size = u32_at(0)? as usize;
    if u32_at(4)? != spa_sys::SPA_TYPE_Array {
        return None;
    }
    let child_size = u32_at(8)? as usize;
    if u32_at(12)? != spa_sys::SPA_TYPE_Float || child_size != 4 {
        return None;
    }
    // The body is the 8-byte child header followed by the values.
    let n = size.checked_sub(8)? / child_size;
    let values = bytes.get(16..16 + n * 4)?;
    Some(values.chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn props_object(channels: Option<&[f32]>, muted: Option<bool>) -> Object {
    let mut properties = Vec::with_capacity(2);
    if let Some(c) = channels {
        properties
            .push(Property::new(spa_sys::SPA_PROP_channelVolumes, Value::ValueArray(ValueArray::Float(c.to_vec()))));
    }
    if let Some(m) = muted {
        properties.push(Property::new(spa_sys::SPA_PROP_mute, Value::Bool(m)));
    }
    Object { type_: spa_sys::SPA_TYPE_OBJECT_Props, id: ParamType::Props.as_raw(), properties }
}

fn serialize(obj: Object) -> Vec<u8> {
    PodSerializer::serialize(std::io::Cursor::new(Vec::new()), &Value::Object(obj))
        .map(|(c, _)| c.into_inner())
        .expect("serializing a Props object into memory cannot fail")
}

/// A `Props` param setting the given channel volumes and/or mute.
pub fn build_props(channels: Option<&[f32]>, muted: Option<bool>) -> Vec<u8> {
    serialize(props_object(channels, muted))
}

/// A `Route` param for `route` changing its volume and/or mute, saved by the
/// session manager (`save: true`).
pub fn build_route(index: i32, device: i32, channels: Option<&[f32]>, muted: Option<bool>) -> Vec<u8> {
    let properties = vec![
        Property::new(spa_sys::SPA_PARAM_ROUTE_index, Value::Int(index)),
        Property::new(spa_sys::SPA_PARAM_ROUTE_device, Value::Int(device)),
        Property::new(spa_sys::SPA_PARAM_ROUTE_props, Value::Object(props_object(channels, muted))),
        Property { key: spa_sys::SPA_PARAM_ROUTE_save, flags: PropertyFlags::empty(), value: Value::Bool(true) },
    ];
    serialize(Object { type_: spa_sys::SPA_TYPE_OBJECT_ParamRoute, id: ParamType::Route.as_raw(), properties })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_round_trip() {
        let bytes = build_props(Some(&[0.125, 0.25]), Some(true));
        let pod = Pod::from_bytes(&bytes).unwrap();
        let v = parse_props(pod).unwrap();
        assert_eq!(v.channels.as_deref(), Some(&[0.125, 0.25][..]));
        assert_eq!(v.muted, Some(true));
    }

    #[test]
    fn props_with_only_mute() {
        let bytes = build_props(None, Some(false));
        let v = parse_props(Pod::from_bytes(&bytes).unwrap()).unwrap();
        assert_eq!(v, VolumeProps { channels: None, muted: Some(false) });
    }

    #[test]
    fn route_round_trip() {
        let bytes = build_route(2, 5, Some(&[0.5, 0.5]), Some(false));
        let r = parse_route(Pod::from_bytes(&bytes).unwrap()).unwrap();
        assert_eq!(r.index, 2);
        assert_eq!(r.device, 5);
        assert_eq!(r.volume.channels.as_deref(), Some(&[0.5, 0.5][..]));
        assert_eq!(r.volume.muted, Some(false));
    }

    #[test]
    fn garbage_is_not_a_volume() {
        assert_eq!(float_array(&[1, 2, 3]), None);
        let not_obj =
            PodSerializer::serialize(std::io::Cursor::new(Vec::new()), &Value::Int(3)).unwrap().0.into_inner();
        assert!(parse_props(Pod::from_bytes(&not_obj).unwrap()).is_none());
    }
}
