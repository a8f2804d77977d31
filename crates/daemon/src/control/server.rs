//! The control socket, served without blocking from the daemon's one loop.
//!
//! The listener and every connection live in an epoll set of their own; only
//! that epoll fd is registered with the PipeWire loop, so connections come
//! and go without touching the loop. Every buffer is bounded:
//!
//! * a request line longer than [`MAX_LINE`] bytes gets `ERROR line too long`
//!   and the connection is closed;
//! * while a client has more than [`READ_PAUSE`] bytes of unread responses we
//!   stop reading its requests, and past [`OUT_LIMIT`] (a subscriber that
//!   does not read) it is disconnected;
//! * at most [`MAX_CLIENTS`] connections; more are told so and closed.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use pvm_ipc::protocol::{parse_request, Request, Response, MAX_LINE};
use rustix::event::epoll;

use super::socket_path;

/// Connections served at once.
pub const MAX_CLIENTS: usize = 1024;
/// Unsent output above which we stop reading a client's requests.
pub const READ_PAUSE: usize = 64 * 1024;
/// Unsent output above which a client is disconnected.
pub const OUT_LIMIT: usize = 1024 * 1024;

const LISTENER: u64 = u64::MAX;

/// How a request is answered.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// With this response, now.
    Now(Response),
    /// Later, through [`ControlServer::complete`]; the client's further
    /// requests wait (answers stay in order).
    Later,
}

/// Identifies a connection, for [`Reply::Later`] answers.
pub type Token = u64;

/// What a connection's deferred answer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaited {
    /// A response line.
    Response,
    /// The first status line after `SUBSCRIBE` (sent bare, without `OK `).
    FirstStatus,
}

struct Conn {
    stream: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    /// Bytes of `out` already sent.
    sent: usize,
    subscribed: bool,
    /// The newest status line for a subscriber whose socket is full: sent
    /// (instead of every line in between) once it drains.
    latest: Option<String>,
    /// A request of this client is being answered later.
    waiting: Option<Awaited>,
    /// Close once `out` is flushed.
    closing: bool,
    /// Interest currently registered with epoll.
    interest: epoll::EventFlags,
}

impl Conn {
    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    fn push_line(&mut self, line: &str) {
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        }
        self.out.extend_from_slice(line.as_bytes());
        self.out.push(b'\n');
    }

    /// Whether to read more of the client's requests: not while it has
    /// complete requests still to answer (one waiting for PipeWire, or left
    /// over from a pause), so its input buffer never holds more than one
    /// line and one read.
    fn wants_input(&self) -> bool {
        !self.closing && self.pending() <= READ_PAUSE && self.waiting.is_none() && !self.inbuf.contains(&b'\n')
    }

    fn wanted_interest(&self) -> epoll::EventFlags {
        let mut f = epoll::EventFlags::empty();
        if self.wants_input() {
            f |= epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
        }
        if self.pending() > 0 {
            f |= epoll::EventFlags::OUT;
        }
        f
    }
}

/// The control socket server.
pub struct ControlServer {
    epoll: OwnedFd,
    listener: UnixListener,
    path: PathBuf,
    uid: u32,
    clients: HashMap<u64, Conn>,
    next_token: u64,
    events: Vec<MaybeUninit<epoll::Event>>,
    readbuf: Box<[u8; 4096]>,
    /// Clients with complete request lines left over after a pause.
    resume: Vec<u64>,
    /// An fd kept open to be closed when `accept` runs out of fds.
    spare_fd: Option<OwnedFd>,
    /// Whether the listener is in the epoll set's interest.
    listening: bool,
    fd_warning_given: bool,
}

fn open_spare_fd() -> Option<OwnedFd> {
    std::fs::File::open("/dev/null").ok().map(OwnedFd::from)
}

impl ControlServer {
    /// Binds the socket at `path` (see [`socket_path::bind`] for the safety
    /// checks) and prepares the epoll set.
    pub fn bind(path: &Path) -> Result<ControlServer, socket_path::SocketError> {
        let listener = socket_path::bind(path)?;
        let io = |e: std::io::Error| socket_path::SocketError::Io { path: path.to_owned(), source: e };
        listener.set_nonblocking(true).map_err(io)?;
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| io(e.into()))?;
        epoll::add(&epoll, &listener, epoll::EventData::new_u64(LISTENER), epoll::EventFlags::IN)
            .map_err(|e| io(e.into()))?;
        Ok(ControlServer {
            epoll,
            listener,
            path: path.to_owned(),
            uid: rustix::process::geteuid().as_raw(),
            clients: HashMap::new(),
            next_token: 0,
            events: vec![MaybeUninit::uninit(); 64],
            readbuf: Box::new([0; 4096]),
            resume: Vec::new(),
            spare_fd: open_spare_fd(),
            listening: true,
            fd_warning_given: false,
        })
    }

    /// The fd to watch for readability on the main loop.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    /// The raw epoll fd.
    pub fn raw_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    /// Connections currently open.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Whether any connection is subscribed to changes.
    pub fn has_subscribers(&self) -> bool {
        self.clients.values().any(|c| c.subscribed)
    }

    /// Serves whatever is ready, answering requests with `handler`.
    pub fn dispatch(&mut self, handler: &mut dyn FnMut(Token, Request) -> Reply) {
        // Bounded rounds so one busy client cannot hold the loop.
        for _ in 0..4 {
            let mut events = std::mem::take(&mut self.events);
            let ready: Vec<(u64, epoll::EventFlags)> =
                match epoll::wait(&self.epoll, &mut events[..], Some(&rustix::event::Timespec::default())) {
                    Ok((ready, _)) => ready.iter().map(|e| (e.data.u64(), e.flags)).collect(),
                    Err(e) => {
                        tracing::warn!("control socket epoll: {e}");
                        Vec::new()
                    }
                };
            self.events = events;
            if ready.is_empty() && self.resume.is_empty() {
                return;
            }
            for (token, flags) in ready {
                if token == LISTENER {
                    self.accept_all();
                } else {
                    self.serve(token, flags, handler);
                }
            }
            for token in std::mem::take(&mut self.resume) {
                self.process_lines(token, handler);
            }
        }
        // Requests left over from a pause must not wait for an event that may
        // never come (their client may have sent everything and read every
        // answer). Ends: nothing new is read here, and every pass answers at
        // least one leftover request or leaves its client paused.
        while !self.resume.is_empty() {
            for token in std::mem::take(&mut self.resume) {
                self.process_lines(token, handler);
            }
        }
    }

    /// Answers a request that was answered [`Reply::Later`], then lets the
    /// client's next requests through (on the next [`ControlServer::dispatch`]).
    pub fn complete(&mut self, token: Token, response: &Response) {
        let Some(conn) = self.clients.get_mut(&token) else { return };
        let line = match (response, conn.waiting.take()) {
            (Response::Ok(Some(json)), Some(Awaited::FirstStatus)) => json.clone(),
            _ => response.to_line(),
        };
        conn.push_line(&line);
        if conn.inbuf.contains(&b'\n') && !self.resume.contains(&token) {
            self.resume.push(token);
        }
        self.flush(token);
    }

    /// Sends a status line to every subscriber. A subscriber whose socket is
    /// full gets only the newest line once it drains: a status bar needs the
    /// current state, not every state in between, and its buffer stays
    /// bounded however long it pauses.
    pub fn broadcast(&mut self, line: &str) {
        let tokens: Vec<u64> = self.clients.iter().filter(|(_, c)| c.subscribed).map(|(&t, _)| t).collect();
        for t in tokens {
            if let Some(c) = self.clients.get_mut(&t) {
                if c.pending() > 0 || c.waiting.is_some() {
                    c.latest = Some(line.to_owned());
                    continue;
                }
                c.push_line(line);
            }
            self.flush(t);
        }
    }

    fn accept_all(&mut self) {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.out_of_fds(&e);
                    return;
                }
            };
            let refuse = |mut s: UnixStream, why: &str| {
                let _ = s.set_nonblocking(true);
                let _ = s.write_all(format!("ERROR {why}\n").as_bytes());
            };
            match rustix::net::sockopt::socket_peercred(&stream) {
                Ok(cred) if cred.uid.as_raw() == self.uid => {}
                Ok(cred) => {
                    tracing::warn!(uid = cred.uid.as_raw(), "refused a control connection from another user");
                    refuse(stream, "permission denied: the daemon serves only its own user");
                    continue;
                }
                Err(e) => {
                    refuse(stream, &format!("permission denied: cannot check the peer ({e})"));
                    continue;
                }
            }
            if self.clients.len() >= MAX_CLIENTS {
                refuse(stream, "too many connections");
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let token = self.next_token;
            self.next_token += 1;
            let interest = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
            if epoll::add(&self.epoll, &stream, epoll::EventData::new_u64(token), interest).is_err() {
                continue;
            }
            self.clients.insert(
                token,
                Conn {
                    stream,
                    inbuf: Vec::new(),
                    out: Vec::new(),
                    sent: 0,
                    subscribed: false,
                    latest: None,
                    waiting: None,
                    closing: false,
                    interest,
                },
            );
        }
    }

    /// `accept` failed (EMFILE, ENFILE, ENOBUFS...). The listener is
    /// level-triggered: left as it is, the loop would spin on the waiting
    /// connection. Free the spare fd to take that connection and tell it so,
    /// then re-open the spare; if that is not possible, stop listening until
    /// a client leaves.
    fn out_of_fds(&mut self, e: &std::io::Error) {
        if self.spare_fd.take().is_some() {
            if let Ok((mut s, _)) = self.listener.accept() {
                let _ = s.set_nonblocking(true);
                let _ = s.write_all(b"ERROR too many open files\n");
            }
            self.spare_fd = open_spare_fd();
            if self.spare_fd.is_some() {
                if !self.fd_warning_given {
                    tracing::warn!("accepting a control connection: {e}; refusing connections until fds are free");
                    self.fd_warning_given = true;
                }
                return;
            }
        }
        tracing::warn!("accepting a control connection: {e}; not listening until a client leaves");
        self.set_listening(false);
    }

    fn set_listening(&mut self, on: bool) {
        if self.listening == on {
            return;
        }
        self.listening = on;
        let flags = if on { epoll::EventFlags::IN } else { epoll::EventFlags::empty() };
        let _ = epoll::modify(&self.epoll, &self.listener, epoll::EventData::new_u64(LISTENER), flags);
    }

    fn serve(&mut self, token: u64, flags: epoll::EventFlags, handler: &mut dyn FnMut(Token, Request) -> Reply) {
        if flags.contains(epoll::EventFlags::OUT) {
            self.flush(token);
        }
        // Hung up both ways while we are not reading it (EPOLLHUP is reported
        // whatever the interest, so it would wake us again and again): nobody
        // is left to answer.
        if flags.contains(epoll::EventFlags::HUP) && self.clients.get(&token).is_some_and(|c| !c.wants_input()) {
            self.close(token);
            return;
        }
        if flags.intersects(epoll::EventFlags::IN | epoll::EventFlags::HUP | epoll::EventFlags::RDHUP) {
            self.read(token, handler);
        }
    }

    fn read(&mut self, token: u64, handler: &mut dyn FnMut(Token, Request) -> Reply) {
        let Some(conn) = self.clients.get_mut(&token) else { return };
        if !conn.wants_input() {
            // Its complete requests come first (see Conn::wants_input).
            self.process_lines(token, handler);
            return;
        }
        // One read per wake-up: fair to other clients, and the buffer never
        // holds more than one line plus one read.
        match conn.stream.read(&mut self.readbuf[..]) {
            // The peer is gone (or half-closed): answer what was complete, then close.
            Ok(0) => conn.closing = true,
            Ok(n) => conn.inbuf.extend_from_slice(&self.readbuf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
            Err(_) => conn.closing = true,
        }
        self.process_lines(token, handler);
    }

    fn process_lines(&mut self, token: u64, handler: &mut dyn FnMut(Token, Request) -> Reply) {
        let Some(conn) = self.clients.get_mut(&token) else { return };
        let mut start = 0;
        let mut paused = false;
        while let Some(pos) = conn.inbuf[start..].iter().position(|&b| b == b'\n') {
            if conn.pending() > READ_PAUSE || conn.waiting.is_some() {
                paused = true;
                break;
            }
            let line = &conn.inbuf[start..start + pos];
            start += pos + 1;
            // A complete line that is too long: the same answer and the same
            // end as one still growing past the limit (below).
            if line.strip_suffix(b"\r").unwrap_or(line).len() > MAX_LINE {
                conn.push_line("ERROR line too long");
                conn.closing = true;
                start = conn.inbuf.len();
                break;
            }
            let response = match parse_request(line) {
                Ok(Request::Subscribe) => {
                    conn.subscribed = true;
                    conn.push_line("OK");
                    match handler(token, Request::Status) {
                        Reply::Now(Response::Ok(Some(json))) => json,
                        Reply::Now(other) => other.to_line(),
                        Reply::Later => {
                            conn.waiting = Some(Awaited::FirstStatus);
                            continue;
                        }
                    }
                }
                Ok(request) => match handler(token, request) {
                    Reply::Now(r) => r.to_line(),
                    Reply::Later => {
                        conn.waiting = Some(Awaited::Response);
                        continue;
                    }
                },
                Err(e) => Response::Error(e.to_string()).to_line(),
            };
            conn.push_line(&response);
        }
        conn.inbuf.drain(..start);
        // One more byte than MAX_LINE: the "\r" of a CRLF line whose "\n" is still to come.
        if !paused && conn.inbuf.len() > MAX_LINE + 1 {
            conn.push_line("ERROR line too long");
            conn.inbuf = Vec::new();
            conn.closing = true;
        }
        if conn.inbuf.capacity() > 2 * MAX_LINE && conn.inbuf.len() <= MAX_LINE {
            conn.inbuf.shrink_to(MAX_LINE);
        }
        self.flush(token);
    }

    fn flush(&mut self, token: u64) {
        let Some(conn) = self.clients.get_mut(&token) else { return };
        loop {
            while conn.pending() > 0 {
                match conn.stream.write(&conn.out[conn.sent..]) {
                    Ok(0) => break,
                    Ok(n) => conn.sent += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.close(token);
                        return;
                    }
                }
            }
            // Drained: the newest status held back while the socket was full.
            match conn.latest.take() {
                Some(latest) if conn.pending() == 0 && conn.waiting.is_none() => conn.push_line(&latest),
                other => {
                    conn.latest = other;
                    break;
                }
            }
        }
        if conn.pending() <= READ_PAUSE
            && conn.waiting.is_none()
            && conn.inbuf.contains(&b'\n')
            && !self.resume.contains(&token)
        {
            self.resume.push(token);
        }
        if conn.pending() == 0 {
            conn.out.clear();
            conn.sent = 0;
            if conn.out.capacity() > READ_PAUSE {
                conn.out.shrink_to(4096);
            }
            if conn.closing {
                self.close(token);
                return;
            }
        }
        if conn.pending() > OUT_LIMIT {
            tracing::info!("dropping a control client that does not read its responses");
            self.close(token);
            return;
        }
        let wanted = conn.wanted_interest();
        if wanted != conn.interest {
            conn.interest = wanted;
            let _ = epoll::modify(&self.epoll, &conn.stream, epoll::EventData::new_u64(token), wanted);
        }
    }

    fn close(&mut self, token: u64) {
        if let Some(conn) = self.clients.remove(&token) {
            let _ = epoll::delete(&self.epoll, &conn.stream);
            drop(conn);
            // An fd is free again.
            if self.spare_fd.is_none() {
                self.spare_fd = open_spare_fd();
            }
            self.fd_warning_given = false;
            self.set_listening(true);
        }
    }

    /// Removes the socket file (on shutdown).
    pub fn remove_socket(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
