//! The line protocol of the control socket (`docs/protocol.md` is the
//! reference).
//!
//! A client sends one request per line and reads one response line:
//!
//! ```text
//! ROUTE "Google Chrome" game      ->  OK
//! SET_VOLUME game 0.5             ->  OK
//! SET_VOLUME game 1.5             ->  ERROR volume must be a number from 0.0 to 1.0, got 1.5; usage: SET_VOLUME <sink> <0.0-1.0>
//! ```
//!
//! * Words are separated by runs of spaces and tabs; leading and trailing
//!   blanks are ignored, and so is a `\r` before the `\n` (CRLF).
//! * The command word and keywords (`CREATE_PENDING`, `true`, `toggle`, ...)
//!   are case-insensitive; names are not.
//! * An argument is a bare word or a double-quoted string in which `\"` and
//!   `\\` are the only escapes. A quote inside a bare word is an error.
//! * A line holds valid UTF-8, no NUL byte, no control character other than
//!   tab, and at most [`MAX_LINE`] bytes before its line end.
//!
//! [`ProtocolError`]'s `Display` is the message the daemon sends after
//! `ERROR `.

use std::fmt;

/// Version of this protocol, reported by `VERSION`. Version 2 added `OUTPUT`.
pub const PROTOCOL_VERSION: u32 = 2;

/// Longest accepted request line in bytes, not counting the `\n` or `\r\n`.
pub const MAX_LINE: usize = 4096;

/// Longest piece of a client's input quoted back in an error message.
const ECHO_LIMIT: usize = 40;

/// Why a request line (or a response line) was rejected.
///
/// `Display` is the message sent after `ERROR `: short, lower-case, one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The line has more than [`MAX_LINE`] bytes.
    #[error("line too long")]
    LineTooLong,
    /// The line is not UTF-8.
    #[error("request is not valid UTF-8")]
    InvalidUtf8,
    /// The line holds a NUL byte.
    #[error("request contains a NUL byte")]
    NulByte,
    /// The line holds a control character other than tab.
    #[error("request contains a control character")]
    ControlCharacter,
    /// The line holds nothing but blanks.
    #[error("empty request")]
    Empty,
    /// A quoted string has no closing quote.
    #[error("unterminated quote")]
    UnterminatedQuote,
    /// A backslash in a quoted string is followed by something other than `"` or `\`.
    #[error("invalid escape \\{0} in quoted string (only \\\" and \\\\ are allowed)")]
    InvalidEscape(char),
    /// A quote appears inside a bare word, or a word follows a closing quote directly.
    #[error("quote in the middle of a word")]
    QuoteInWord,
    /// The command word is not one of the protocol's.
    #[error("unknown command {0} (commands: {commands})", commands = command_list())]
    UnknownCommand(String),
    /// The arguments do not fit the command.
    #[error("{problem}; usage: {usage}")]
    Usage {
        /// What is wrong.
        problem: String,
        /// The command's usage line.
        usage: &'static str,
    },
    /// A response line is neither `OK ...` nor `ERROR ...`.
    #[error("malformed response {0}")]
    MalformedResponse(String),
}

/// What `MUTE` and `MUTE_APP` do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MuteAction {
    /// Mute.
    On,
    /// Unmute.
    Off,
    /// Flip the current state.
    Toggle,
}

impl MuteAction {
    /// Parses `true|false|toggle`, also `on/off`, `1/0`, `yes/no`, any case.
    pub fn parse(word: &str) -> Option<MuteAction> {
        match word.to_ascii_lowercase().as_str() {
            "true" | "on" | "1" | "yes" => Some(MuteAction::On),
            "false" | "off" | "0" | "no" => Some(MuteAction::Off),
            "toggle" => Some(MuteAction::Toggle),
            _ => None,
        }
    }

    /// The word sent on the wire: `true`, `false` or `toggle`.
    pub fn as_word(self) -> &'static str {
        match self {
            MuteAction::On => "true",
            MuteAction::Off => "false",
            MuteAction::Toggle => "toggle",
        }
    }
}

/// Where a channel sends its audio: the `<output>` of `OUTPUT` and the
/// `output` of a `[[channel]]` in the config.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OutputChoice {
    /// `default`: the default output device, followed as it changes.
    Default,
    /// `none`: nowhere (the channel is silent).
    None,
    /// A sink's `node.name`; while it is missing, the default output device.
    Sink(String),
}

impl OutputChoice {
    /// `default`, `none`, or a sink name (exactly these lower-case words are
    /// keywords; any other word is a sink's `node.name`).
    pub fn parse(word: &str) -> OutputChoice {
        match word {
            "default" => OutputChoice::Default,
            "none" => OutputChoice::None,
            sink => OutputChoice::Sink(sink.to_owned()),
        }
    }

    /// The word as written in the protocol and the config.
    pub fn as_word(&self) -> &str {
        match self {
            OutputChoice::Default => "default",
            OutputChoice::None => "none",
            OutputChoice::Sink(name) => name,
        }
    }
}

impl fmt::Display for OutputChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_word())
    }
}

/// One request to the daemon.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// `PING`: answers `OK PONG`.
    Ping,
    /// `VERSION`: the daemon, protocol and layout versions.
    Version,
    /// `STATUS`: the [`Status`](crate::status::Status) JSON on one line.
    Status,
    /// `SUBSCRIBE`: after `OK`, one status JSON line per change.
    Subscribe,
    /// `RELOAD_CONFIG`: re-read the config file.
    ReloadConfig,
    /// `TRACE`: the recent-events ring buffer as JSON.
    Trace,
    /// `ROUTE <app> <sink> [CREATE_PENDING]`: send an app to a sink, persistently.
    Route {
        /// App name.
        app: String,
        /// Sink `node.name`.
        sink: String,
        /// Accept a sink that does not exist yet; the route applies when it appears.
        create_pending: bool,
    },
    /// `UNROUTE <app>`: forget an app's route.
    Unroute {
        /// App name.
        app: String,
    },
    /// `SET_VOLUME <sink> <0.0-1.0>`: a sink's volume, cubic scale.
    SetVolume {
        /// Sink `node.name`.
        sink: String,
        /// Volume, `0.0..=1.0`.
        volume: f32,
    },
    /// `MUTE <sink> <true|false|toggle>`.
    Mute {
        /// Sink `node.name`.
        sink: String,
        /// What to do.
        mute: MuteAction,
    },
    /// `SET_APP_VOLUME <app> <0.0-1.0>`: the volume of all of an app's streams.
    SetAppVolume {
        /// App name.
        app: String,
        /// Volume, `0.0..=1.0`.
        volume: f32,
    },
    /// `MUTE_APP <app> <true|false|toggle>`.
    MuteApp {
        /// App name.
        app: String,
        /// What to do.
        mute: MuteAction,
    },
    /// `SET_DEFAULT <sink>`: make a sink the default sink.
    SetDefault {
        /// Sink `node.name`.
        sink: String,
    },
    /// `OUTPUT <channel> <sink|default|none>`: where a channel's audio goes,
    /// persistently.
    Output {
        /// The channel's `node.name`.
        channel: String,
        /// Its new output.
        output: OutputChoice,
    },
}

/// Every command word with its usage line, in documentation order.
pub const COMMANDS: &[(&str, &str)] = &[
    ("PING", "PING"),
    ("VERSION", "VERSION"),
    ("STATUS", "STATUS"),
    ("SUBSCRIBE", "SUBSCRIBE"),
    ("RELOAD_CONFIG", "RELOAD_CONFIG"),
    ("TRACE", "TRACE"),
    ("ROUTE", "ROUTE <app> <sink> [CREATE_PENDING]"),
    ("UNROUTE", "UNROUTE <app>"),
    ("SET_VOLUME", "SET_VOLUME <sink> <0.0-1.0>"),
    ("MUTE", "MUTE <sink> <true|false|toggle>"),
    ("SET_APP_VOLUME", "SET_APP_VOLUME <app> <0.0-1.0>"),
    ("MUTE_APP", "MUTE_APP <app> <true|false|toggle>"),
    ("SET_DEFAULT", "SET_DEFAULT <sink>"),
    ("OUTPUT", "OUTPUT <channel> <sink|default|none>"),
];

fn command_list() -> String {
    COMMANDS.iter().map(|(word, _)| *word).collect::<Vec<_>>().join(" ")
}

fn usage_of(command: &str) -> &'static str {
    COMMANDS.iter().find(|(word, _)| *word == command).map(|(_, usage)| *usage).expect("every command has a usage line")
}

impl Request {
    /// The command word, upper-case.
    pub fn command(&self) -> &'static str {
        match self {
            Request::Ping => "PING",
            Request::Version => "VERSION",
            Request::Status => "STATUS",
            Request::Subscribe => "SUBSCRIBE",
            Request::ReloadConfig => "RELOAD_CONFIG",
            Request::Trace => "TRACE",
            Request::Route { .. } => "ROUTE",
            Request::Unroute { .. } => "UNROUTE",
            Request::SetVolume { .. } => "SET_VOLUME",
            Request::Mute { .. } => "MUTE",
            Request::SetAppVolume { .. } => "SET_APP_VOLUME",
            Request::MuteApp { .. } => "MUTE_APP",
            Request::SetDefault { .. } => "SET_DEFAULT",
            Request::Output { .. } => "OUTPUT",
        }
    }

    /// The command's usage line, e.g. `SET_VOLUME <sink> <0.0-1.0>`.
    pub fn usage(&self) -> &'static str {
        usage_of(self.command())
    }

    /// The request as a line, without the final `\n`; arguments are quoted
    /// when needed, so `parse_request(r.to_line())` gives `r` back.
    ///
    /// Names holding control characters other than tab, and volumes outside
    /// `0.0..=1.0`, cannot be expressed: the line is produced but the parser
    /// (and so the daemon) rejects it.
    pub fn to_line(&self) -> String {
        let mut line = String::from(self.command());
        let mut push = |arg: &str| {
            line.push(' ');
            line.push_str(arg);
        };
        match self {
            Request::Ping
            | Request::Version
            | Request::Status
            | Request::Subscribe
            | Request::ReloadConfig
            | Request::Trace => {}
            Request::Route { app, sink, create_pending } => {
                push(&quote(app));
                push(&quote(sink));
                if *create_pending {
                    push("CREATE_PENDING");
                }
            }
            Request::Unroute { app } => push(&quote(app)),
            Request::SetVolume { sink, volume } => {
                push(&quote(sink));
                push(&format_volume(*volume));
            }
            Request::Mute { sink, mute } => {
                push(&quote(sink));
                push(mute.as_word());
            }
            Request::SetAppVolume { app, volume } => {
                push(&quote(app));
                push(&format_volume(*volume));
            }
            Request::MuteApp { app, mute } => {
                push(&quote(app));
                push(mute.as_word());
            }
            Request::SetDefault { sink } => push(&quote(sink)),
            Request::Output { channel, output } => {
                push(&quote(channel));
                push(&quote(output.as_word()));
            }
        }
        line
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_line())
    }
}

/// Writes a volume so that it parses back to the same `f32`: Rust prints the
/// shortest round-tripping decimal, never an exponent. `-0.0` becomes `0`.
fn format_volume(volume: f32) -> String {
    if volume == 0.0 {
        "0".to_owned()
    } else {
        volume.to_string()
    }
}

/// `s` as one protocol argument: unchanged if it is a non-empty bare word,
/// else in double quotes with `"` and `\` escaped.
pub fn quote(s: &str) -> String {
    let bare = !s.is_empty() && !s.chars().any(|c| is_blank(c) || c == '"' || c.is_control());
    if bare {
        return s.to_owned();
    }
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Parses one request line. A final `\n` or `\r\n` may be included.
pub fn parse_request(line: &[u8]) -> Result<Request, ProtocolError> {
    let text = check_line(line)?;
    let mut words = split_words(text)?.into_iter();
    let word = words.next().ok_or(ProtocolError::Empty)?;
    let Some(&(command, usage)) = COMMANDS.iter().find(|(known, _)| known.eq_ignore_ascii_case(&word)) else {
        return Err(ProtocolError::UnknownCommand(echo(&word)));
    };
    let mut args = Args { words, usage };
    let request = match command {
        "PING" => Request::Ping,
        "VERSION" => Request::Version,
        "STATUS" => Request::Status,
        "SUBSCRIBE" => Request::Subscribe,
        "RELOAD_CONFIG" => Request::ReloadConfig,
        "TRACE" => Request::Trace,
        "ROUTE" => Request::Route {
            app: args.name("<app>")?,
            sink: args.name("<sink>")?,
            create_pending: args.flag("CREATE_PENDING")?,
        },
        "UNROUTE" => Request::Unroute { app: args.name("<app>")? },
        "SET_VOLUME" => Request::SetVolume { sink: args.name("<sink>")?, volume: args.volume()? },
        "MUTE" => Request::Mute { sink: args.name("<sink>")?, mute: args.mute()? },
        "SET_APP_VOLUME" => Request::SetAppVolume { app: args.name("<app>")?, volume: args.volume()? },
        "MUTE_APP" => Request::MuteApp { app: args.name("<app>")?, mute: args.mute()? },
        "SET_DEFAULT" => Request::SetDefault { sink: args.name("<sink>")? },
        "OUTPUT" => Request::Output {
            channel: args.name("<channel>")?,
            output: OutputChoice::parse(&args.name("<sink|default|none>")?),
        },
        _ => unreachable!("COMMANDS and this match list the same words"),
    };
    args.finish()?;
    Ok(request)
}

/// Strips the line end and checks length, NUL, UTF-8 and control characters.
fn check_line(line: &[u8]) -> Result<&str, ProtocolError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE {
        return Err(ProtocolError::LineTooLong);
    }
    if line.contains(&0) {
        return Err(ProtocolError::NulByte);
    }
    let text = std::str::from_utf8(line).map_err(|_| ProtocolError::InvalidUtf8)?;
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ProtocolError::ControlCharacter);
    }
    Ok(text)
}

/// Splits a line into bare and quoted words.
fn split_words(text: &str) -> Result<Vec<String>, ProtocolError> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|&c| is_blank(c)).is_some() {}
        let Some(first) = chars.next() else {
            return Ok(words);
        };
        let mut word = String::new();
        if first == '"' {
            loop {
                match chars.next() {
                    None => return Err(ProtocolError::UnterminatedQuote),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\')) => word.push(c),
                        Some(c) => return Err(ProtocolError::InvalidEscape(c)),
                        None => return Err(ProtocolError::UnterminatedQuote),
                    },
                    Some(c) => word.push(c),
                }
            }
            if chars.peek().is_some_and(|&c| !is_blank(c)) {
                return Err(ProtocolError::QuoteInWord);
            }
        } else {
            word.push(first);
            while let Some(c) = chars.next_if(|&c| !is_blank(c)) {
                if c == '"' {
                    return Err(ProtocolError::QuoteInWord);
                }
                word.push(c);
            }
        }
        words.push(word);
    }
}

/// The arguments after the command word, consumed in order.
struct Args {
    words: std::vec::IntoIter<String>,
    usage: &'static str,
}

impl Args {
    fn usage_error(&self, problem: String) -> ProtocolError {
        ProtocolError::Usage { problem, usage: self.usage }
    }

    /// A required, non-empty name.
    fn name(&mut self, what: &str) -> Result<String, ProtocolError> {
        match self.words.next() {
            None => Err(self.usage_error(format!("missing {what}"))),
            Some(name) if name.is_empty() => Err(self.usage_error(format!("{what} must not be empty"))),
            Some(name) => Ok(name),
        }
    }

    /// An optional keyword; anything else in its place is an error.
    fn flag(&mut self, keyword: &str) -> Result<bool, ProtocolError> {
        match self.words.next() {
            None => Ok(false),
            Some(word) if word.eq_ignore_ascii_case(keyword) => Ok(true),
            Some(word) => Err(self.usage_error(format!("expected {keyword}, got {}", echo(&word)))),
        }
    }

    fn volume(&mut self) -> Result<f32, ProtocolError> {
        let word = self.words.next().ok_or_else(|| self.usage_error("missing volume".to_owned()))?;
        parse_volume(&word)
            .ok_or_else(|| self.usage_error(format!("volume must be a number from 0.0 to 1.0, got {}", echo(&word))))
    }

    fn mute(&mut self) -> Result<MuteAction, ProtocolError> {
        let word = self.words.next().ok_or_else(|| self.usage_error("missing mute state".to_owned()))?;
        MuteAction::parse(&word)
            .ok_or_else(|| self.usage_error(format!("mute must be true, false or toggle, got {}", echo(&word))))
    }

    fn finish(mut self) -> Result<(), ProtocolError> {
        match self.words.next() {
            None => Ok(()),
            Some(_) => Err(self.usage_error("too many arguments".to_owned())),
        }
    }
}

/// Parses the strict volume grammar: `digits [ "." digits ] | "." digits`,
/// with a value in `0.0..=1.0`. No sign, no exponent, no `NaN` or `inf`.
pub fn parse_volume(word: &str) -> Option<f32> {
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = match word.split_once('.') {
        None => !word.is_empty() && all_digits(word),
        Some((int, frac)) => !frac.is_empty() && all_digits(int) && all_digits(frac),
    };
    if !well_formed {
        return None;
    }
    // Check the range on the exact decimal's f64 value, so "1.00000001" is
    // refused even though it rounds to 1.0 as an f32.
    let wide: f64 = word.parse().ok()?;
    if !(0.0..=1.0).contains(&wide) {
        return None;
    }
    word.parse().ok()
}

/// A client's word, quoted and shortened, for an error message.
fn echo(word: &str) -> String {
    match word.char_indices().nth(ECHO_LIMIT) {
        Some((cut, _)) => format!("{}...", quote(&word[..cut])),
        None => quote(word),
    }
}

/// One response line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// `OK` or `OK <payload>`.
    Ok(Option<String>),
    /// `ERROR <message>`.
    Error(String),
}

impl Response {
    /// The response as a line, without the final `\n`. Line breaks in the
    /// payload or message become spaces (which keeps JSON valid); an empty
    /// payload is sent as a plain `OK`.
    pub fn to_line(&self) -> String {
        let one_line = |s: &str| s.replace(['\r', '\n'], " ");
        match self {
            Response::Ok(None) => "OK".to_owned(),
            Response::Ok(Some(payload)) if payload.is_empty() => "OK".to_owned(),
            Response::Ok(Some(payload)) => format!("OK {}", one_line(payload)),
            Response::Error(message) if message.is_empty() => "ERROR".to_owned(),
            Response::Error(message) => format!("ERROR {}", one_line(message)),
        }
    }

    /// `Ok(payload)` or `Err(message)`.
    pub fn into_result(self) -> Result<Option<String>, String> {
        match self {
            Response::Ok(payload) => Ok(payload),
            Response::Error(message) => Err(message),
        }
    }
}

impl From<ProtocolError> for Response {
    fn from(e: ProtocolError) -> Self {
        Response::Error(e.to_string())
    }
}

/// Parses one response line. A final `\n` or `\r\n` may be included.
pub fn parse_response(line: &str) -> Result<Response, ProtocolError> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    if line == "OK" {
        Ok(Response::Ok(None))
    } else if let Some(payload) = line.strip_prefix("OK ") {
        Ok(Response::Ok(non_empty(payload)))
    } else if line == "ERROR" {
        Ok(Response::Error(String::new()))
    } else if let Some(message) = line.strip_prefix("ERROR ") {
        Ok(Response::Error(message.to_owned()))
    } else {
        Err(ProtocolError::MalformedResponse(echo(line)))
    }
}
