//! A small blocking client for the control socket.
//!
//! ```no_run
//! use pvm_ipc::client::Client;
//! use pvm_ipc::protocol::{Request, Response};
//!
//! let mut client = Client::connect(&pvm_ipc::paths::socket_path())?;
//! let response = client.request(&Request::Ping)?;
//! assert_eq!(response, Response::Ok(Some("PONG".into())));
//! # Ok::<(), pvm_ipc::client::ClientError>(())
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::protocol::{parse_response, ProtocolError, Request, Response};

/// How long [`Client::request`] waits for the daemon by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest response line accepted (a full status is about 60 KiB).
pub const MAX_RESPONSE: usize = 1 << 20;

/// What can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens on the socket: it does not exist or refuses connections.
    #[error("the daemon is not running (no one listens on {})", path.display())]
    NotRunning {
        /// The socket path.
        path: PathBuf,
        /// The error of `connect`.
        #[source]
        source: io::Error,
    },
    /// `connect` failed for another reason (permissions, not a socket, ...).
    #[error("cannot connect to {}: {source}", path.display())]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The error of `connect`.
        #[source]
        source: io::Error,
    },
    /// The daemon did not answer in time.
    #[error("the daemon did not answer in time")]
    Timeout,
    /// The daemon closed the connection before answering.
    #[error("the daemon closed the connection")]
    Closed,
    /// A response line longer than [`MAX_RESPONSE`].
    #[error("response longer than {MAX_RESPONSE} bytes")]
    ResponseTooLong,
    /// Reading or writing the socket failed.
    #[error("talking to the daemon: {0}")]
    Io(io::Error),
    /// The daemon answered `ERROR <message>` where only `OK` makes sense
    /// (see [`Client::subscribe`]).
    #[error("{0}")]
    Refused(String),
    /// The daemon's answer is not a response line.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout,
            _ => ClientError::Io(e),
        }
    }
}

/// A connection to the daemon's control socket.
pub struct Client {
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the socket at `path`, with [`DEFAULT_TIMEOUT`] for reads
    /// and writes.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| {
            let path = path.to_owned();
            match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning { path, source },
                _ => ClientError::Connect { path, source },
            }
        })?;
        let mut client = Client { reader: BufReader::new(stream) };
        client.set_timeout(Some(DEFAULT_TIMEOUT))?;
        Ok(client)
    }

    /// Sets the read and write timeout; `None` waits forever.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        let stream = self.reader.get_ref();
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        Ok(())
    }

    /// Sends one request and reads its response.
    pub fn request(&mut self, request: &Request) -> Result<Response, ClientError> {
        self.send_line(&request.to_line())?;
        let line = self.read_line()?.ok_or(ClientError::Closed)?;
        Ok(parse_response(&line)?)
    }

    /// Sends `SUBSCRIBE` and, once the daemon answered `OK`, returns the
    /// stream of status lines (JSON, one per change). Reads then wait without
    /// a timeout. An `ERROR` answer is [`ClientError::Refused`].
    pub fn subscribe(mut self) -> Result<Subscription, ClientError> {
        match self.request(&Request::Subscribe)? {
            Response::Ok(_) => {
                self.reader.get_ref().set_read_timeout(None)?;
                Ok(Subscription { reader: self.reader })
            }
            Response::Error(message) => Err(ClientError::Refused(message)),
        }
    }

    fn send_line(&mut self, line: &str) -> Result<(), ClientError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.reader.get_mut().write_all(&bytes)?;
        Ok(())
    }

    fn read_line(&mut self) -> Result<Option<String>, ClientError> {
        read_bounded_line(&mut self.reader)
    }
}

/// The lines the daemon sends to a subscriber; ends when it closes the
/// connection.
pub struct Subscription {
    reader: BufReader<UnixStream>,
}

impl Iterator for Subscription {
    type Item = Result<String, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        read_bounded_line(&mut self.reader).transpose()
    }
}

/// Reads one line without its line end; `None` at end of stream.
fn read_bounded_line(reader: &mut impl BufRead) -> Result<Option<String>, ClientError> {
    let mut bytes = Vec::new();
    let read = reader.by_ref().take(MAX_RESPONSE as u64 + 1).read_until(b'\n', &mut bytes)?;
    if read == 0 {
        return Ok(None);
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    } else if bytes.len() > MAX_RESPONSE {
        return Err(ClientError::ResponseTooLong);
    } else {
        // The daemon closed the connection in the middle of a line.
        return Err(ClientError::Closed);
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| ClientError::Io(io::Error::new(io::ErrorKind::InvalidData, "response is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::thread;

    /// A one-connection server: records the request lines and answers each
    /// with the next canned line.
    fn serve(answers: &'static [&'static str]) -> (tempfile::TempDir, thread::JoinHandle<Vec<String>>) {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("socket")).unwrap();
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            let mut seen = Vec::new();
            for answer in answers {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                seen.push(line);
                writer.write_all(answer.as_bytes()).unwrap();
            }
            seen
        });
        (dir, handle)
    }

    #[test]
    fn request_sends_one_line_and_parses_the_answer() {
        let (dir, server) = serve(&["OK PONG\n", "ERROR unknown sink nope\r\n"]);
        let mut client = Client::connect(&dir.path().join("socket")).unwrap();
        assert_eq!(client.request(&Request::Ping).unwrap(), Response::Ok(Some("PONG".into())));
        let mute = Request::Mute { sink: "my sink".into(), mute: crate::protocol::MuteAction::Toggle };
        assert_eq!(client.request(&mute).unwrap(), Response::Error("unknown sink nope".into()));
        drop(client);
        assert_eq!(server.join().unwrap(), ["PING\n", "MUTE \"my sink\" toggle\n"]);
    }

    #[test]
    fn missing_socket_means_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let err = Client::connect(&dir.path().join("socket")).err().unwrap();
        assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
    }

    #[test]
    fn stale_socket_means_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        drop(UnixListener::bind(&path).unwrap());
        let err = Client::connect(&path).err().unwrap();
        assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
    }

    #[test]
    fn a_path_through_a_file_is_another_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        // ENOTDIR: a broken setup, not a stopped daemon.
        let err = Client::connect(&file.join("socket")).err().unwrap();
        assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    }

    #[test]
    fn closed_connection_and_garbage_are_errors() {
        let (dir, server) = serve(&["HELLO\n"]);
        let mut client = Client::connect(&dir.path().join("socket")).unwrap();
        let err = client.request(&Request::Status).unwrap_err();
        assert!(matches!(err, ClientError::Protocol(ProtocolError::MalformedResponse(_))), "{err:?}");
        server.join().unwrap();
        let err = client.request(&Request::Status).unwrap_err();
        assert!(matches!(err, ClientError::Closed | ClientError::Io(_)), "{err:?}");
    }

    #[test]
    fn silent_daemon_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("socket")).unwrap();
        let mut client = Client::connect(&dir.path().join("socket")).unwrap();
        client.set_timeout(Some(Duration::from_millis(50))).unwrap();
        let err = client.request(&Request::Ping).unwrap_err();
        assert!(matches!(err, ClientError::Timeout), "{err:?}");
        drop(listener);
    }

    #[test]
    fn subscription_yields_lines_until_close() {
        let (dir, server) = serve(&["OK\n{\"generation\":2}\n{\"generation\":4}\n"]);
        let client = Client::connect(&dir.path().join("socket")).unwrap();
        let lines: Vec<String> = client.subscribe().unwrap().map(Result::unwrap).collect();
        assert_eq!(lines, ["{\"generation\":2}", "{\"generation\":4}"]);
        assert_eq!(server.join().unwrap(), ["SUBSCRIBE\n"]);
    }

    #[test]
    fn refused_subscription_returns_the_message() {
        let (dir, _server) = serve(&["ERROR too many subscribers\n"]);
        let client = Client::connect(&dir.path().join("socket")).unwrap();
        match client.subscribe() {
            Err(ClientError::Refused(message)) => assert_eq!(message, "too many subscribers"),
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(_) => panic!("subscription accepted"),
        }
    }

    #[test]
    fn over_long_response_is_refused() {
        let mut input = io::Cursor::new(vec![b'x'; MAX_RESPONSE + 10]);
        assert!(matches!(read_bounded_line(&mut input), Err(ClientError::ResponseTooLong)));
        let mut cut = io::Cursor::new(b"OK partial".to_vec());
        assert!(matches!(read_bounded_line(&mut cut), Err(ClientError::Closed)));
        let mut empty = io::Cursor::new(Vec::new());
        assert!(read_bounded_line(&mut empty).unwrap().is_none());
    }
}
