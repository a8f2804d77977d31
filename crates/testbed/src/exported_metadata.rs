//! A metadata object that this process implements and exports to PipeWire,
//! as the daemon exports `pipewire-volume-mixer`.
//!
//! `Core::create_object("metadata", ..)` is not the way to do that: the
//! server then treats the creating client as the object's implementation,
//! which a pw-rs proxy cannot be. Its own `set_property` is refused ("invalid
//! method id:2 op:1") and other clients' writes never reach it. Instead, like
//! WirePlumber's `ImplMetadata`, a local `pw_impl_metadata` is created and
//! exported with `pw_core_export` (the export type comes from
//! `libpipewire-module-metadata`, which `client.conf` loads into every
//! client's context). pw-rs 0.10 has no safe API for either, so this is the
//! one place in the test bed with PipeWire FFI.
//!
//! Other clients' writes (WirePlumber's hook announcing itself) are stored in
//! the local object and forwarded by PipeWire like any metadata change; read
//! them by binding the global, or with `pw-dump`.

use std::ffi::CString;
use std::ptr::{self, NonNull};

use pipewire as pw;
use pw::sys as pw_sys;

use crate::error::{Error, Result};

/// The interface type passed to `pw_core_export`.
const METADATA_TYPE: &std::ffi::CStr = c"PipeWire:Interface:Metadata";

/// A metadata object exported on a core's connection; removed from PipeWire
/// when dropped (or when the connection goes away).
///
/// Use it on the thread of the loop that runs the core. It keeps the core
/// (and with it the context) alive until it is dropped.
#[derive(Debug)]
pub struct ExportedMetadata {
    metadata: NonNull<pw_sys::pw_impl_metadata>,
    proxy: NonNull<pw_sys::pw_proxy>,
    /// Dropped after `drop` has destroyed the proxy and the metadata.
    _core: pw::core::CoreRc,
}

impl ExportedMetadata {
    /// Creates a metadata object called `name` (its `metadata.name`) in the
    /// core's context and exports it on the core's connection.
    pub fn new(core: &pw::core::CoreRc, name: &str) -> Result<Self> {
        let c_name = CString::new(name).map_err(|_| invalid("metadata name", name))?;
        let props = pw::properties::properties! { "metadata.name" => name };
        // SAFETY: `core` is a live core, so its context is live too (the
        // CoreRc holds it); the name is a valid C string for the duration of
        // the call; the properties are handed over (the function takes
        // ownership, also on failure).
        let metadata = unsafe {
            let context = pw_sys::pw_core_get_context(core.as_raw_ptr());
            pw_sys::pw_context_create_metadata(context, c_name.as_ptr(), props.into_raw(), 0)
        };
        let metadata = NonNull::new(metadata).ok_or_else(|| failed("pw_context_create_metadata"))?;
        let export_props = pw::properties::properties! { "metadata.name" => name };
        // SAFETY: `core` is a live core; the type
        // is a valid C string; `export_props` outlives the call (the function
        // copies the dictionary); the implementation pointer belongs to
        // `metadata`, which lives until after the proxy is destroyed (Drop).
        let proxy = unsafe {
            pw_sys::pw_core_export(
                core.as_raw_ptr(),
                METADATA_TYPE.as_ptr(),
                export_props.dict().as_raw_ptr(),
                pw_sys::pw_impl_metadata_get_implementation(metadata.as_ptr()).cast(),
                0,
            )
        };
        let Some(proxy) = NonNull::new(proxy) else {
            // SAFETY: `metadata` was created above and is not used after this.
            unsafe { pw_sys::pw_impl_metadata_destroy(metadata.as_ptr()) };
            return Err(failed("pw_core_export"));
        };
        Ok(ExportedMetadata { metadata, proxy, _core: core.clone() })
    }

    /// Sets (`value` is `Some`) or removes (`None`) the entry `key` of
    /// `subject`, with the type `type_` (e.g. `Spa:Int`, `Spa:Id`).
    pub fn set(&self, subject: u32, key: &str, type_: Option<&str>, value: Option<&str>) -> Result<()> {
        let key = CString::new(key).map_err(|_| invalid("metadata key", key))?;
        let type_ = type_.map(|t| CString::new(t).map_err(|_| invalid("metadata type", t))).transpose()?;
        let value = value.map(|v| CString::new(v).map_err(|_| invalid("metadata value", v))).transpose()?;
        // SAFETY: `self.metadata` is alive until Drop; the strings are valid C
        // strings (or null) for the duration of the call, which copies them.
        let res = unsafe {
            pw_sys::pw_impl_metadata_set_property(
                self.metadata.as_ptr(),
                subject,
                key.as_ptr(),
                type_.as_deref().map_or(ptr::null(), |t| t.as_ptr()),
                value.as_deref().map_or(ptr::null(), |v| v.as_ptr()),
            )
        };
        if res < 0 {
            return Err(failed("pw_impl_metadata_set_property"));
        }
        Ok(())
    }
}

impl Drop for ExportedMetadata {
    fn drop(&mut self) {
        // SAFETY: both pointers were created in `new` and are destroyed only
        // here, the proxy first because it points at the metadata's
        // implementation. The core is still alive (we hold a reference), so
        // the proxy has not been freed by a disconnect.
        unsafe {
            pw_sys::pw_proxy_destroy(self.proxy.as_ptr());
            pw_sys::pw_impl_metadata_destroy(self.metadata.as_ptr());
        }
    }
}

fn invalid(what: &str, text: &str) -> Error {
    Error::io(format!("{what} {text:?}"), std::io::Error::from(std::io::ErrorKind::InvalidInput))
}

fn failed(call: &str) -> Error {
    Error::io(format!("exporting a metadata object: {call}"), std::io::Error::last_os_error())
}
