//! systemd readiness notification (`Type=notify`).

/// Sends `READY=1` to `$NOTIFY_SOCKET`, if systemd (or a test) gave us one.
pub fn ready() {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    match sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        Ok(()) => tracing::debug!("notified READY=1"),
        Err(e) => tracing::warn!("cannot notify readiness: {e}"),
    }
}
