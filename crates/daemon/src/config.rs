//! The config file: routing rules, read from TOML.
//!
//! ```toml
//! [[rule]]
//! match = { "application.name" = "Game*" }
//! sink = "game"
//! ```
//!
//! The file is deserialized into raw structs that refuse unknown keys, then
//! validated into a [`Config`]. Every error carries the file, line and column
//! of the offending text (see `docs/config.md`).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

use pvm_ipc::protocol::OutputChoice;

use crate::channels::ChannelSpec;
use crate::rules::{MatchKey, Matcher, Rule, RuleError, RuleSet};

/// The daemon's configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Routing rules, first match wins.
    pub rules: RuleSet,
    /// The channels the daemon makes, in file order.
    pub channels: Vec<ChannelSpec>,
}

/// A 1-based line and column (in characters) in a text file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Line, counting from 1.
    pub line: usize,
    /// Column in characters, counting from 1.
    pub col: usize,
}

impl Position {
    /// The position of the byte `offset` in `text` (clamped to the text).
    pub fn at(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position { line: before.matches('\n').count() + 1, col: before[line_start..].chars().count() + 1 }
    }

    /// Where a TOML error points, and its message on one line (control
    /// replies are one line), without the source excerpt that `toml` adds to
    /// its `Display`.
    pub(crate) fn of_toml_error(text: &str, err: &toml::de::Error) -> (Option<Position>, String) {
        let message = err.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(": ");
        (err.span().map(|span| Position::at(text, span.start)), explain(message))
    }
}

/// Replaces the one `toml` message that makes no sense to a user: a string
/// value with a span was expected, and a table written with dotted keys was
/// found. That happens when a property name is not quoted
/// (`match = { media.role = "Music" }`).
fn explain(message: String) -> String {
    if message.contains("expected a borrowed string") {
        "expected a string, found a dotted key; property names contain dots and must be quoted, \
         e.g. \"media.role\" = \"Music\""
            .to_owned()
    } else {
        message
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Why a config file was rejected. Displayed as `<file>:<line>:<col>: <why>`,
/// or `<file>: <why>` when the error has no position (the file could not be
/// read).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// Where in the file, if the error is about its content.
    pub position: Option<Position>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(position) => write!(f, "{}:{position}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// The file as written: unknown keys are refused here.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    channel: Vec<Spanned<RawChannel>>,
}

/// One `[[channel]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    output: Option<Spanned<String>>,
}

/// One `[[rule]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    // Not `Spanned`: `toml` cannot give the span of a table written with
    // dotted keys (`match."media.role" = "Music"`), which is valid here.
    conditions: Option<RawMatch>,
    sink: Option<Spanned<String>>,
}

/// A `match` table as written: property name to glob pattern.
type RawMatch = BTreeMap<Spanned<String>, Spanned<String>>;

/// Reads the config file. A missing file is an empty config (no rules).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::debug!(path = %path.display(), "no config file; no rules");
            return Ok(Config::default());
        }
        Err(e) => {
            return Err(ConfigError { file: path.to_owned(), position: None, message: format!("cannot read: {e}") })
        }
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
        ConfigError {
            file: path.to_owned(),
            position: Some(Position::at(valid, valid.len())),
            message: "not valid UTF-8".into(),
        }
    })?;
    parse(text, path)
}

/// Parses config text; `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let (position, message) = Position::of_toml_error(text, &e);
        ConfigError { file: path.to_owned(), position, message }
    })?;
    let located = |Invalid { span, message }| ConfigError {
        file: path.to_owned(),
        position: Some(Position::at(text, span.start)),
        message,
    };
    let rules = raw
        .rule
        .into_iter()
        .enumerate()
        .map(|(index, raw_rule)| validate_rule(index + 1, raw_rule))
        .collect::<Result<Vec<_>, _>>()
        .map_err(located)?;
    let channels = validate_channels(raw.channel).map_err(located)?;
    Ok(Config { rules: RuleSet::new(rules), channels })
}

/// Longest channel name: a `node.name` that fits the snapshot's sink slot.
const MAX_CHANNEL_NAME: usize = pvm_ipc::layout::SINK_NAME_LEN;

/// Turns the `[[channel]]` tables into specs: each has a name, names are
/// unique, and no channel is another channel's output.
fn validate_channels(raw: Vec<Spanned<RawChannel>>) -> Result<Vec<ChannelSpec>, Invalid> {
    let mut specs: Vec<ChannelSpec> = Vec::with_capacity(raw.len());
    let mut outputs = Vec::with_capacity(raw.len());
    for (index, raw) in raw.into_iter().enumerate() {
        let number = index + 1;
        let span = raw.span();
        let RawChannel { name, description, output } = raw.into_inner();
        let name = name.ok_or_else(|| Invalid::new(span.clone(), format!("channel {number} has no `name`")))?;
        let name_span = name.span();
        let name = name.into_inner();
        if name.is_empty() {
            return Err(Invalid::new(name_span, format!("channel {number} has an empty `name`")));
        }
        if name.len() > MAX_CHANNEL_NAME || name.chars().any(char::is_control) {
            return Err(Invalid::new(
                name_span,
                format!("channel {number}: `name` must be at most {MAX_CHANNEL_NAME} bytes without control characters"),
            ));
        }
        if matches!(name.as_str(), "default" | "none") {
            return Err(Invalid::new(name_span, format!("channel {number}: `{name}` is a keyword of `output`")));
        }
        if specs.iter().any(|s| s.name == name) {
            return Err(Invalid::new(name_span, format!("channel {number}: another channel is named \"{name}\"")));
        }
        let description =
            description.map(Spanned::into_inner).filter(|d| !d.is_empty()).unwrap_or_else(|| name.clone());
        let (output, output_span) = match output {
            Some(o) => {
                let span = o.span();
                (OutputChoice::parse(o.get_ref()), span)
            }
            None => (OutputChoice::Default, span),
        };
        if output == OutputChoice::Sink(String::new()) {
            return Err(Invalid::new(output_span, format!("channel {number} has an empty `output`")));
        }
        outputs.push((number, output_span));
        specs.push(ChannelSpec { name, description, output });
    }
    for (spec, (number, span)) in specs.iter().zip(outputs) {
        if let OutputChoice::Sink(output) = &spec.output {
            if specs.iter().any(|s| &s.name == output) {
                return Err(Invalid::new(
                    span,
                    format!(
                        "channel {number}: `output` is the channel \"{output}\"; a channel's output must be a device"
                    ),
                ));
            }
        }
    }
    Ok(specs)
}

/// A validation error at a byte range of the text.
struct Invalid {
    span: Range<usize>,
    message: String,
}

impl Invalid {
    fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Invalid { span, message: message.into() }
    }
}

/// Turns rule number `number` (1-based) into a [`Rule`].
fn validate_rule(number: usize, raw: Spanned<RawRule>) -> Result<Rule, Invalid> {
    let rule_span = raw.span();
    let RawRule { conditions, sink } = raw.into_inner();
    let conditions =
        conditions.ok_or_else(|| Invalid::new(rule_span.clone(), format!("rule {number} has no `match` table")))?;
    let matchers = validate_match(conditions)?;
    let sink = sink.ok_or_else(|| Invalid::new(rule_span.clone(), format!("rule {number} has no `sink`")))?;
    let sink_span = sink.span();
    Rule::new(matchers, sink.into_inner()).map_err(|e| match e {
        RuleError::EmptyMatch => Invalid::new(rule_span, format!("rule {number} has an empty `match` table")),
        RuleError::EmptySink => Invalid::new(sink_span, format!("rule {number} has an empty `sink`")),
    })
}

/// Validates a `match` table: known keys and good globs, kept in file order.
fn validate_match(table: RawMatch) -> Result<Vec<Matcher>, Invalid> {
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by_key(|(name, _)| name.span().start);
    entries
        .into_iter()
        .map(|(name, pattern)| {
            let key = name.as_ref().parse::<MatchKey>().map_err(|e| Invalid::new(name.span(), e.to_string()))?;
            let pattern_span = pattern.span();
            Matcher::new(key, pattern.into_inner()).map_err(|e| Invalid::new(pattern_span, e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::rules::{AppProps, RuleMatch};

    const SPEC_EXAMPLE: &str = r#"
[[rule]]
match = { "application.name" = "Game*" }
sink = "game"

[[rule]]
match = { "application.process.binary" = "discord", "media.role" = "Communication" }
sink = "chat"
"#;

    fn ok(text: &str) -> Config {
        parse(text, Path::new("config.toml")).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Parses `text`, expecting an error; returns `(line, col, message)` and
    /// checks the `Display` form.
    fn err(text: &str) -> (usize, usize, String) {
        let e = parse(text, Path::new("/home/u/.config/pvm/config.toml")).expect_err("config should be rejected");
        let Position { line, col } = e.position.expect("a content error has a position");
        assert_eq!(e.to_string(), format!("/home/u/.config/pvm/config.toml:{line}:{col}: {}", e.message));
        assert!(!e.message.contains('\n'), "one-line message: {:?}", e.message);
        (line, col, e.message)
    }

    fn props(pairs: &[(MatchKey, &str)]) -> HashMap<MatchKey, String> {
        pairs.iter().map(|&(k, v)| (k, v.to_owned())).collect()
    }

    fn sink_for<'a>(config: &'a Config, props: &impl AppProps) -> Option<&'a str> {
        config.rules.target_for(props).map(|m| m.sink)
    }

    #[test]
    fn spec_example_parses() {
        let config = ok(SPEC_EXAMPLE);
        assert_eq!(config.rules.len(), 2);
        let rules: Vec<_> = config.rules.iter().collect();
        assert_eq!(rules[0].keys().collect::<Vec<_>>(), [MatchKey::ApplicationName]);
        assert_eq!(rules[0].matchers()[0].pattern(), "Game*");
        assert_eq!(rules[0].sink(), "game");
        assert_eq!(rules[1].keys().collect::<Vec<_>>(), [MatchKey::ProcessBinary, MatchKey::MediaRole]);
        assert_eq!(rules[1].sink(), "chat");

        let game = props(&[(MatchKey::ApplicationName, "Game of Life")]);
        assert_eq!(config.rules.target_for(&game), Some(RuleMatch { index: 0, sink: "game" }));
        let discord_call = props(&[(MatchKey::ProcessBinary, "discord"), (MatchKey::MediaRole, "Communication")]);
        assert_eq!(config.rules.target_for(&discord_call), Some(RuleMatch { index: 1, sink: "chat" }));
        let discord_sound = props(&[(MatchKey::ProcessBinary, "discord"), (MatchKey::MediaRole, "Notification")]);
        assert_eq!(sink_for(&config, &discord_sound), None, "AND: both keys must match");
        let firefox = props(&[(MatchKey::ApplicationName, "Firefox")]);
        assert_eq!(sink_for(&config, &firefox), None, "apps that match nothing are left alone");
    }

    #[test]
    fn match_table_keys_keep_file_order() {
        let config = ok(r#"
[[rule]]
match = { "media.role" = "Music", "application.id" = "com.spotify.Client", "media.name" = "*" }
sink = "music"
"#);
        let keys: Vec<_> = config.rules.iter().next().unwrap().keys().collect();
        assert_eq!(keys, [MatchKey::MediaRole, MatchKey::ApplicationId, MatchKey::MediaName]);
    }

    #[test]
    fn first_match_wins() {
        let config = ok(r#"
[[rule]]
match = { "application.name" = "Firefox" }
sink = "music"

[[rule]]
match = { "application.name" = "*" }
sink = "game"
"#);
        assert_eq!(sink_for(&config, &props(&[(MatchKey::ApplicationName, "Firefox")])), Some("music"));
        assert_eq!(sink_for(&config, &props(&[(MatchKey::ApplicationName, "mpv")])), Some("game"));
        assert_eq!(sink_for(&config, &props(&[(MatchKey::ProcessBinary, "mpv")])), None);
    }

    #[test]
    fn match_can_be_a_sub_table() {
        let config = ok(r#"
[[rule]]
sink = "chat"
[rule.match]
"application.name" = "WEBRTC VoiceEngine"
"#);
        assert_eq!(sink_for(&config, &props(&[(MatchKey::ApplicationName, "WEBRTC VoiceEngine")])), Some("chat"));
    }

    #[test]
    fn match_can_use_dotted_keys() {
        let config =
            ok("[[rule]]\nmatch.\"media.role\" = \"Music\"\nmatch.\"application.name\" = \"mpv\"\nsink = \"music\"\n");
        let keys: Vec<_> = config.rules.iter().next().unwrap().keys().collect();
        assert_eq!(keys, [MatchKey::MediaRole, MatchKey::ApplicationName]);
    }

    #[test]
    fn unquoted_property_name_is_explained() {
        let (line, col, message) = err("[[rule]]\nmatch = { media.role = \"Music\" }\nsink = \"music\"\n");
        assert_eq!(line, 2);
        assert!((11..=17).contains(&col), "points into the key: {col}");
        assert!(message.contains("must be quoted"), "{message}");
    }

    #[test]
    fn odd_characters_in_patterns_and_sinks() {
        let config = ok(r#"
[[rule]]
match = { "application.name" = "Müsik «Player»" }
sink = "Müsik «sink»"

[[rule]]
match = { "application.name" = 'Say "hi"' }
sink = "say \"hi\" \\ there"

[[rule]]
match = { "media.name" = "YouTube \u2013 *" }
sink = "music"
"#);
        assert_eq!(sink_for(&config, &props(&[(MatchKey::ApplicationName, "Müsik «Player»")])), Some("Müsik «sink»"));
        assert_eq!(
            sink_for(&config, &props(&[(MatchKey::ApplicationName, "Say \"hi\"")])),
            Some("say \"hi\" \\ there")
        );
        assert_eq!(sink_for(&config, &props(&[(MatchKey::MediaName, "YouTube – song")])), Some("music"));
    }

    #[test]
    fn empty_text_has_no_rules() {
        assert!(ok("").rules.is_empty());
        assert!(ok("# nothing yet\n").rules.is_empty());
    }

    #[test]
    fn syntax_error_points_at_the_error() {
        let (line, col, message) = err("[[rule]]\nmatch = { \"application.name\" = \"Game*\" \nsink = \"game\"\n");
        assert_eq!((line, col), (2, 40), "the end of the line, where the closing brace is missing");
        assert!(!message.is_empty());
        let (line, col, message) = err("\n\n[[rule]\n");
        assert_eq!((line, col), (3, 7));
        assert!(message.contains("invalid table header"), "{message}");
    }

    #[test]
    fn unknown_top_level_key() {
        let (line, col, message) = err("# rules\nrules = []\n");
        assert_eq!((line, col), (2, 1));
        assert!(message.contains("unknown field `rules`"), "{message}");
    }

    #[test]
    fn unknown_key_in_a_rule() {
        let (line, col, message) =
            err("[[rule]]\nmatch = { \"application.name\" = \"x\" }\nsink = \"game\"\n  volume = 0.5\n");
        assert_eq!((line, col), (4, 3));
        assert!(message.contains("unknown field `volume`"), "{message}");
    }

    #[test]
    fn unknown_match_key_points_at_the_key() {
        let (line, col, message) =
            err("[[rule]]\nmatch = { \"media.role\" = \"x\", \"node.name\" = \"y\" }\nsink = \"game\"\n");
        assert_eq!((line, col), (2, 31));
        assert!(message.starts_with("unknown match key \"node.name\""), "{message}");
    }

    #[test]
    fn bad_glob_points_at_the_pattern() {
        let (line, col, message) = err("[[rule]]\nsink = \"game\"\nmatch = { \"application.name\" = \"[abc\" }\n");
        assert_eq!((line, col), (3, 32));
        assert!(message.contains("\"[abc\""), "{message}");
        assert!(message.contains("unclosed character class"), "{message}");
    }

    #[test]
    fn glob_column_counts_characters_not_bytes() {
        let (line, col, _) =
            err("[[rule]]\nsink = \"«game»\"\nmatch = { \"media.name\" = \"«x»\", \"application.name\" = \"{a\" }\n");
        assert_eq!((line, col), (3, 54), "54 characters, 56 bytes");
    }

    #[test]
    fn rule_without_sink_points_at_the_rule() {
        let text = "[[rule]]\nmatch = { \"application.name\" = \"a\" }\nsink = \"game\"\n\n[[rule]]\nmatch = { \"application.name\" = \"b\" }\n";
        let (line, col, message) = err(text);
        assert_eq!((line, col), (5, 1));
        assert_eq!(message, "rule 2 has no `sink`");
    }

    #[test]
    fn rule_without_match_points_at_the_rule() {
        let (line, col, message) = err("\n[[rule]]\nsink = \"game\"\n");
        assert_eq!((line, col), (2, 1));
        assert_eq!(message, "rule 1 has no `match` table");
    }

    #[test]
    fn empty_match_points_at_the_rule() {
        let (line, col, message) = err("[[rule]]\nmatch = {}\nsink = \"game\"\n");
        assert_eq!((line, col), (1, 1));
        assert_eq!(message, "rule 1 has an empty `match` table");
    }

    #[test]
    fn empty_sink_points_at_the_value() {
        let (line, col, message) = err("[[rule]]\nmatch = { \"application.name\" = \"a\" }\nsink = \"\"\n");
        assert_eq!((line, col), (3, 8));
        assert_eq!(message, "rule 1 has an empty `sink`");
    }

    #[test]
    fn wrong_types_point_at_the_value() {
        let (line, col, message) = err("[[rule]]\nmatch = { \"application.name\" = \"a\" }\nsink = 3\n");
        assert_eq!((line, col), (3, 8));
        assert!(message.contains("invalid type: integer `3`, expected a string"), "{message}");

        let (line, col, message) = err("[[rule]]\nmatch = { \"application.name\" = true }\nsink = \"game\"\n");
        assert_eq!((line, col), (2, 32));
        assert!(message.contains("invalid type: boolean `true`"), "{message}");

        let (line, col, message) = err("[[rule]]\nmatch = \"Game*\"\nsink = \"game\"\n");
        assert_eq!((line, col), (2, 9));
        assert!(message.contains("invalid type"), "{message}");

        // `[rule]` instead of `[[rule]]`.
        let (line, col, message) = err("[rule]\nsink = \"game\"\n");
        assert_eq!((line, col), (1, 1));
        assert!(message.contains("expected a sequence"), "{message}");
    }

    #[test]
    fn channels_parse_with_defaults_in_file_order() {
        let config = ok(r#"
[[channel]]
name = "game"
description = "Game"
output = "headphones"

[[channel]]
name = "chat"

[[channel]]
name = "music"
output = "none"

[[rule]]
match = { "media.role" = "Game" }
sink = "game"
"#);
        let got: Vec<_> =
            config.channels.iter().map(|c| (c.name.as_str(), c.description.as_str(), &c.output)).collect();
        assert_eq!(
            got,
            [
                ("game", "Game", &OutputChoice::Sink("headphones".into())),
                ("chat", "chat", &OutputChoice::Default),
                ("music", "music", &OutputChoice::None),
            ]
        );
        assert_eq!(config.rules.len(), 1);
    }

    #[test]
    fn bad_channels_point_at_the_problem() {
        let (line, col, message) = err("[[channel]]\ndescription = \"x\"\n");
        assert_eq!((line, col, message.as_str()), (1, 1, "channel 1 has no `name`"));
        let (line, col, message) = err("[[channel]]\nname = \"game\"\n[[channel]]\nname = \"game\"\n");
        assert_eq!((line, col), (4, 8));
        assert_eq!(message, "channel 2: another channel is named \"game\"");
        let (line, col, message) =
            err("[[channel]]\nname = \"game\"\noutput = \"chat\"\n[[channel]]\nname = \"chat\"\n");
        assert_eq!((line, col), (3, 10));
        assert!(message.contains("a channel's output must be a device"), "{message}");
        let (_, _, message) = err("[[channel]]\nname = \"game\"\noutput = \"game\"\n");
        assert!(message.contains("a channel's output must be a device"), "{message}");
        let (_, _, message) = err("[[channel]]\nname = \"\"\n");
        assert_eq!(message, "channel 1 has an empty `name`");
        let (_, _, message) = err("[[channel]]\nname = \"none\"\n");
        assert!(message.contains("keyword"), "{message}");
        let (_, _, message) = err(&format!("[[channel]]\nname = \"{}\"\n", "x".repeat(65)));
        assert!(message.contains("at most 64 bytes"), "{message}");
        let (_, _, message) = err("[[channel]]\nname = \"game\"\nvolume = 0.5\n");
        assert!(message.contains("unknown field `volume`"), "{message}");
        let (_, _, message) = err("[[channel]]\nname = \"game\"\noutput = \"\"\n");
        assert_eq!(message, "channel 1 has an empty `output`");
    }

    #[test]
    fn position_of_offsets() {
        let text = "ab\nçd\n\nx";
        assert_eq!(Position::at(text, 0), Position { line: 1, col: 1 });
        assert_eq!(Position::at(text, 2), Position { line: 1, col: 3 });
        assert_eq!(Position::at(text, 3), Position { line: 2, col: 1 });
        assert_eq!(Position::at(text, 5), Position { line: 2, col: 2 }, "after the 2-byte ç");
        assert_eq!(Position::at(text, 4), Position { line: 2, col: 1 }, "inside ç: rounds down");
        assert_eq!(Position::at(text, 7), Position { line: 3, col: 1 });
        assert_eq!(Position::at(text, 99), Position { line: 4, col: 2 }, "clamped to the end");
        assert_eq!(Position { line: 4, col: 2 }.to_string(), "4:2");
    }

    #[test]
    fn load_missing_file_is_an_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = load(&dir.path().join("no/such/config.toml")).unwrap();
        assert!(config.rules.is_empty());
    }

    #[test]
    fn load_reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, SPEC_EXAMPLE).unwrap();
        assert_eq!(load(&path).unwrap().rules.len(), 2);
    }

    #[test]
    fn load_reports_the_file_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[[rule]]\nsink = 3\n").unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(e.file, path);
        assert!(e.to_string().starts_with(&format!("{}:2:8: ", path.display())), "{e}");
    }

    #[test]
    fn load_unreadable_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be read as a file, even by root.
        let e = load(dir.path()).unwrap_err();
        assert_eq!(e.position, None);
        assert_eq!(e.file, dir.path());
        assert!(e.to_string().starts_with(&format!("{}: cannot read: ", dir.path().display())), "{e}");
    }

    #[test]
    fn load_rejects_invalid_utf8_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, b"[[rule]]\nmatch = { \"application.name\" = \"M\xfcsik\" }\nsink = \"music\"\n")
            .unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(e.position, Some(Position { line: 2, col: 34 }));
        assert_eq!(e.message, "not valid UTF-8");
    }

    fn repo_file(relative: &str) -> (PathBuf, String) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (path, text)
    }

    #[test]
    fn shipped_example_config_parses() {
        let (path, _) = repo_file("examples/config.toml");
        let config = load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(config.rules.len() >= 5, "the example shows several rules");
        let channels: Vec<_> = config.channels.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(channels, ["game", "chat", "music"], "the example makes the channels its rules use");
        let sinks: Vec<_> = config.rules.iter().map(Rule::sink).collect();
        for sink in ["game", "chat", "music"] {
            assert!(sinks.contains(&sink), "example routes to {sink}: {sinks:?}");
        }
        let discord_call = props(&[(MatchKey::ProcessBinary, "discord"), (MatchKey::MediaRole, "Communication")]);
        assert_eq!(sink_for(&config, &discord_call), Some("chat"));
        let spotify = props(&[(MatchKey::ApplicationId, "com.spotify.Client")]);
        assert_eq!(sink_for(&config, &spotify), Some("music"));
        let firefox_call = props(&[(MatchKey::ProcessBinary, "firefox"), (MatchKey::MediaRole, "Communication")]);
        assert_eq!(sink_for(&config, &firefox_call), Some("chat"), "calls come before the firefox rule");
        let firefox_video = props(&[(MatchKey::ProcessBinary, "firefox"), (MatchKey::MediaName, "AudioStream")]);
        assert_eq!(sink_for(&config, &firefox_video), Some("music"));
        let proton_game =
            props(&[(MatchKey::ApplicationName, "Elden Ring"), (MatchKey::ProcessBinary, "eldenring.exe")]);
        assert_eq!(sink_for(&config, &proton_game), Some("game"));
        let unknown = props(&[(MatchKey::ApplicationName, "Some Tool"), (MatchKey::ProcessBinary, "some-tool")]);
        assert_eq!(sink_for(&config, &unknown), None, "unmatched apps are left alone");
    }

    /// Every `toml` code block of the docs is a valid config, or (when it starts
    /// with the routes-file header) a valid routes file.
    #[test]
    fn every_toml_block_in_the_docs_parses() {
        let (path, text) = repo_file("docs/config.md");
        let mut blocks = 0;
        let mut lines = text.lines().enumerate();
        while let Some((start, line)) = lines.next() {
            if line.trim() != "```toml" {
                continue;
            }
            let block: Vec<&str> = lines.by_ref().map(|(_, l)| l).take_while(|l| l.trim() != "```").collect();
            let block = block.join("\n") + "\n";
            let context = format!("{}, block at line {}", path.display(), start + 1);
            if block.starts_with(crate::route_store::HEADER) {
                let dir = tempfile::tempdir().unwrap();
                let routes = dir.path().join("routes.toml");
                std::fs::write(&routes, &block).unwrap();
                let store = crate::route_store::RouteStore::load(&routes).unwrap_or_else(|e| panic!("{context}: {e}"));
                assert!(store.iter().next().is_some(), "{context}: no routes");
            } else {
                let config = parse(&block, Path::new(&context)).unwrap_or_else(|e| panic!("{e}"));
                assert!(!config.rules.is_empty() || !config.channels.is_empty(), "{context}: no rules or channels");
            }
            blocks += 1;
        }
        assert!(blocks >= 3, "docs/config.md has {blocks} toml blocks");
    }
}
