//! Our own metadata object, implemented in this process and exported on our
//! connection, the way a session manager exports its `default` metadata.
//!
//! - Exported, not created through the server's `metadata` factory: a factory
//!   object is implemented by its creator (the server forwards every method
//!   to it), which a pipewire-rs proxy cannot do; and an exported object
//!   disappears the moment our connection does, which is what the routing
//!   hold relies on to release held streams when the daemon dies.
//! - Read and written here, in process, never through a proxy bound to its
//!   global: a client binding a metadata object is held busy by the server
//!   until the object's exporter answers a ping, so the exporter binding its
//!   own object deadlocks its connection.
//!
//! pipewire-rs has no safe wrapper for these calls; this file is the
//! daemon's only direct FFI.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::NonNull;

use anyhow::{bail, Context as _, Result};
use pipewire as pw;
use pw::spa;
use pw::sys as pw_sys;

/// Called with `(subject, key, value)` for every change, ours included
/// (`key` `None`: every key of the subject was removed).
pub type PropertyCallback = Box<dyn Fn(u32, Option<&str>, Option<&str>)>;

/// The listener registered with the object; boxed so its address is stable.
struct Listener {
    hook: spa::sys::spa_hook,
    callback: PropertyCallback,
}

static EVENTS: pw_sys::pw_impl_metadata_events = pw_sys::pw_impl_metadata_events {
    version: pw_sys::PW_VERSION_IMPL_METADATA_EVENTS,
    destroy: None,
    free: None,
    property: Some(on_property),
};

/// # Safety
///
/// Called by libpipewire with the `data` given to
/// `pw_impl_metadata_add_listener` (a live `Listener`) and NULL or valid C
/// strings.
unsafe extern "C" fn on_property(
    data: *mut c_void,
    subject: u32,
    key: *const c_char,
    _type: *const c_char,
    value: *const c_char,
) -> c_int {
    // SAFETY: per this function's contract.
    let (listener, key, value) = unsafe { (&*(data as *const Listener), c_str(key), c_str(value)) };
    (listener.callback)(subject, key, value);
    0
}

/// # Safety
///
/// `p` is NULL or a valid NUL-terminated string that outlives the result.
unsafe fn c_str<'a>(p: *const c_char) -> Option<&'a str> {
    // SAFETY: per this function's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }).and_then(|s| s.to_str().ok())
}

/// An exported metadata object; unexported and freed on drop.
pub struct ExportedMetadata {
    proxy: NonNull<pw_sys::pw_proxy>,
    listener: Box<Listener>,
    metadata: NonNull<pw_sys::pw_impl_metadata>,
}

impl ExportedMetadata {
    /// Creates a metadata object named `name` in this process, listens to it
    /// with `callback`, and exports it on `core`. Needs
    /// `libpipewire-module-metadata` in the client context (PipeWire's
    /// default `client.conf` loads it).
    pub fn export(
        context: &pw::context::ContextRc,
        core: &pw::core::CoreRc,
        name: &str,
        callback: PropertyCallback,
    ) -> Result<Self> {
        let c_name = CString::new(name).context("metadata name contains a NUL byte")?;
        // SAFETY: the context pointer is valid while `context` lives; the
        // name is a valid C string; NULL properties and no user data are
        // allowed. The object is ours and destroyed in Drop.
        let raw = unsafe {
            pw_sys::pw_context_create_metadata(context.as_raw_ptr(), c_name.as_ptr(), std::ptr::null_mut(), 0)
        };
        let Some(metadata) = NonNull::new(raw) else {
            bail!("cannot create the metadata object {name}");
        };
        // SAFETY: an all-zero spa_hook is its documented initial state.
        let hook = unsafe { std::mem::zeroed::<spa::sys::spa_hook>() };
        let mut listener = Box::new(Listener { hook, callback });
        // SAFETY: `metadata` is live; the hook and the data pointer point
        // into the box, which is neither moved nor freed before the hook is
        // removed in Drop; EVENTS is static.
        unsafe {
            let data: *mut Listener = &mut *listener;
            pw_sys::pw_impl_metadata_add_listener(
                metadata.as_ptr(),
                &mut (*data).hook as *mut spa::sys::spa_hook as *mut _,
                &EVENTS,
                data.cast(),
            );
        }
        let props = pw::properties::properties! { "metadata.name" => name };
        let type_ = CString::new("PipeWire:Interface:Metadata").expect("no NUL");
        // SAFETY: `metadata` lives until Drop, which destroys the proxy
        // first; its implementation pointer is valid as long as it is. The
        // core pointer and the dict are valid for the call (the dict is copied).
        let raw_proxy = unsafe {
            let iface = pw_sys::pw_impl_metadata_get_implementation(metadata.as_ptr());
            pw_sys::pw_core_export(core.as_raw_ptr(), type_.as_ptr(), props.dict().as_raw_ptr().cast(), iface.cast(), 0)
        };
        let Some(proxy) = NonNull::new(raw_proxy) else {
            // SAFETY: the hook was added above and the object never exported.
            unsafe {
                spa::utils::hook::remove(listener.hook);
                pw_sys::pw_impl_metadata_destroy(metadata.as_ptr());
            }
            bail!("cannot export the metadata object {name} (is libpipewire-module-metadata loaded?)");
        };
        Ok(ExportedMetadata { proxy, listener, metadata })
    }

    /// Sets (or with `value` `None`, clears) a property. The change reaches
    /// every client through the server, and our own callback at once.
    pub fn set_property(&self, subject: u32, key: &str, type_: Option<&str>, value: Option<&str>) -> Result<()> {
        let key = CString::new(key).context("metadata key contains a NUL byte")?;
        let type_ = type_.map(CString::new).transpose().context("metadata type contains a NUL byte")?;
        let value = value.map(CString::new).transpose().context("metadata value contains a NUL byte")?;
        let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        // SAFETY: the object is live while self is; the strings are valid C
        // strings (or NULL, which the call allows for type and value).
        let res = unsafe {
            pw_sys::pw_impl_metadata_set_property(
                self.metadata.as_ptr(),
                subject,
                key.as_ptr(),
                ptr(&type_),
                ptr(&value),
            )
        };
        if res < 0 {
            bail!("setting {key:?} on our metadata: {}", std::io::Error::from_raw_os_error(-res));
        }
        Ok(())
    }
}

impl Drop for ExportedMetadata {
    fn drop(&mut self) {
        // SAFETY: every pointer was created in `export` and is released
        // exactly once, here: the proxy first (it unhooks itself from the
        // object), then our listener, then the object.
        unsafe {
            pw_sys::pw_proxy_destroy(self.proxy.as_ptr());
            spa::utils::hook::remove(self.listener.hook);
            pw_sys::pw_impl_metadata_destroy(self.metadata.as_ptr());
        }
    }
}
