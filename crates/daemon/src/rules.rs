//! Routing rules: which sink an application's streams go to, decided from the
//! stream's PipeWire properties.
//!
//! A [`RuleSet`] is an ordered list of [`Rule`]s; the first rule whose every
//! [`Matcher`] accepts the stream wins. A matcher compares one property
//! ([`MatchKey`]) against a glob pattern. A stream that matches no rule is
//! left to the session manager.
//!
//! Patterns use the `globset` syntax (`*`, `?`, `[abc]`, `[!abc]`, `{a,b}`,
//! `\` to escape), case-sensitive, and `*` also matches `/`. A pattern
//! without any of these characters is an exact match.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

use globset::{GlobBuilder, GlobMatcher};
use thiserror::Error;

/// A stream property a rule can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchKey {
    /// `application.name`, e.g. `Firefox`.
    ApplicationName,
    /// `application.process.binary`, e.g. `firefox`.
    ProcessBinary,
    /// `application.id`, e.g. a flatpak id such as `com.spotify.Client`.
    ApplicationId,
    /// `media.role`, e.g. `Music`, `Communication`, `Game`.
    MediaRole,
    /// `media.name`, e.g. a browser tab's title.
    MediaName,
}

impl MatchKey {
    /// Every key, in documentation order.
    pub const ALL: [MatchKey; 5] = [
        MatchKey::ApplicationName,
        MatchKey::ProcessBinary,
        MatchKey::ApplicationId,
        MatchKey::MediaRole,
        MatchKey::MediaName,
    ];

    /// The PipeWire property name, as written in the config file.
    pub fn property(self) -> &'static str {
        match self {
            MatchKey::ApplicationName => "application.name",
            MatchKey::ProcessBinary => "application.process.binary",
            MatchKey::ApplicationId => "application.id",
            MatchKey::MediaRole => "media.role",
            MatchKey::MediaName => "media.name",
        }
    }
}

impl fmt::Display for MatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.property())
    }
}

/// A property name that is not a [`MatchKey`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "unknown match key {0:?}; expected one of \"application.name\", \"application.process.binary\", \
     \"application.id\", \"media.role\", \"media.name\""
)]
pub struct UnknownMatchKey(pub String);

impl FromStr for MatchKey {
    type Err = UnknownMatchKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MatchKey::ALL.into_iter().find(|k| k.property() == s).ok_or_else(|| UnknownMatchKey(s.to_owned()))
    }
}

/// The properties of a stream, as far as rules are concerned.
pub trait AppProps {
    /// The value of one property, `None` if the stream does not have it.
    fn get(&self, key: MatchKey) -> Option<&str>;
}

impl<S: BuildHasher> AppProps for HashMap<MatchKey, String, S> {
    fn get(&self, key: MatchKey) -> Option<&str> {
        HashMap::get(self, &key).map(String::as_str)
    }
}

/// A glob pattern that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("bad glob pattern {pattern:?}: {reason}")]
pub struct GlobError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One condition of a rule: a property must exist and match a glob.
#[derive(Clone, Debug)]
pub struct Matcher {
    key: MatchKey,
    glob: GlobMatcher,
    pattern: String,
}

impl Matcher {
    /// Compiles `pattern` for `key`.
    pub fn new(key: MatchKey, pattern: impl Into<String>) -> Result<Self, GlobError> {
        let pattern = pattern.into();
        let glob = GlobBuilder::new(&pattern)
            .case_insensitive(false)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| GlobError { pattern: pattern.clone(), reason: e.kind().to_string() })?;
        check_classes_are_ascii(&pattern)?;
        Ok(Matcher { key, glob: glob.compile_matcher(), pattern })
    }

    /// The property this matcher looks at.
    pub fn key(&self) -> MatchKey {
        self.key
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the property exists and matches. A missing property never
    /// matches, not even `*`.
    pub fn matches(&self, props: &(impl AppProps + ?Sized)) -> bool {
        props.get(self.key).is_some_and(|value| self.glob.is_match(value))
    }
}

/// `globset` compares bytes, so a character class can only ever match an
/// ASCII character. Rejecting non-ASCII inside `[...]` turns a rule that could
/// never match into an error the user sees.
fn check_classes_are_ascii(pattern: &str) -> Result<(), GlobError> {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => {
                // As in globset: an optional `!` or `^`, then a `]` in first
                // place is a member, not the end.
                if matches!(chars.clone().next(), Some('!' | '^')) {
                    chars.next();
                }
                let mut first = true;
                for c in chars.by_ref() {
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    if !c.is_ascii() {
                        return Err(GlobError {
                            pattern: pattern.to_owned(),
                            reason: format!(
                                "character classes match ASCII characters only; \
                                 write {c:?} outside the brackets or use `*`"
                            ),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Why a rule cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RuleError {
    /// A rule without conditions would capture every application.
    #[error("a rule needs at least one match key")]
    EmptyMatch,
    /// The target sink's `node.name` is empty.
    #[error("a rule needs a non-empty sink")]
    EmptySink,
}

/// Conditions (all must hold) and the sink that matching streams go to.
#[derive(Clone, Debug)]
pub struct Rule {
    matchers: Vec<Matcher>,
    sink: String,
}

impl Rule {
    /// A rule routing streams that satisfy every matcher to the sink with
    /// this `node.name`.
    pub fn new(matchers: Vec<Matcher>, sink: impl Into<String>) -> Result<Self, RuleError> {
        let sink = sink.into();
        if matchers.is_empty() {
            return Err(RuleError::EmptyMatch);
        }
        if sink.is_empty() {
            return Err(RuleError::EmptySink);
        }
        Ok(Rule { matchers, sink })
    }

    /// Whether every matcher accepts these properties.
    pub fn matches(&self, props: &(impl AppProps + ?Sized)) -> bool {
        self.matchers.iter().all(|m| m.matches(props))
    }

    /// The target sink's `node.name`.
    pub fn sink(&self) -> &str {
        &self.sink
    }

    /// The conditions, in the order they were written.
    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// The properties this rule looks at.
    pub fn keys(&self) -> impl Iterator<Item = MatchKey> + '_ {
        self.matchers.iter().map(Matcher::key)
    }
}

/// The rule that decided a stream's sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleMatch<'a> {
    /// Position of the rule in the set (0-based, in file order).
    pub index: usize,
    /// The target sink's `node.name`.
    pub sink: &'a str,
}

/// An ordered list of rules; the first match wins.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// A set of rules, tried in this order.
    pub fn new(rules: Vec<Rule>) -> Self {
        RuleSet { rules }
    }

    /// The first rule that matches, if any.
    pub fn target_for(&self, props: &(impl AppProps + ?Sized)) -> Option<RuleMatch<'_>> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, rule)| rule.matches(props))
            .map(|(index, rule)| RuleMatch { index, sink: rule.sink() })
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules (every stream is left alone).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Rule> {
        self.rules.iter()
    }
}

impl<'a> IntoIterator for &'a RuleSet {
    type Item = &'a Rule;
    type IntoIter = std::slice::Iter<'a, Rule>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(MatchKey, &str)]) -> HashMap<MatchKey, String> {
        pairs.iter().map(|&(k, v)| (k, v.to_owned())).collect()
    }

    fn rule(conds: &[(MatchKey, &str)], sink: &str) -> Rule {
        let matchers = conds.iter().map(|&(k, p)| Matcher::new(k, p).unwrap()).collect();
        Rule::new(matchers, sink).unwrap()
    }

    fn matches(pattern: &str, value: &str) -> bool {
        Matcher::new(MatchKey::ApplicationName, pattern).unwrap().matches(&props(&[(MatchKey::ApplicationName, value)]))
    }

    #[test]
    fn match_keys_round_trip_through_property_names() {
        for key in MatchKey::ALL {
            assert_eq!(key.property().parse::<MatchKey>(), Ok(key));
            assert_eq!(key.to_string(), key.property());
        }
        assert_eq!("application.process.binary".parse(), Ok(MatchKey::ProcessBinary));
        assert_eq!("application.id".parse(), Ok(MatchKey::ApplicationId));
        let err = "Application.Name".parse::<MatchKey>().unwrap_err();
        assert_eq!(err, UnknownMatchKey("Application.Name".into()));
        assert!(err.to_string().contains("\"media.role\""), "{err}");
    }

    #[test]
    fn pattern_without_glob_characters_is_exact() {
        assert!(matches("discord", "discord"));
        assert!(!matches("discord", "discord-canary"));
        assert!(!matches("discord", "xdiscord"));
        assert!(!matches("discord", "Discord"), "case-sensitive");
        assert!(matches("Say \"hi\"", "Say \"hi\""));
        assert!(matches("Müsik «Player»", "Müsik «Player»"));
        assert!(!matches("Müsik «Player»", "Musik «Player»"));
    }

    #[test]
    fn glob_syntax() {
        assert!(matches("Game*", "Game"));
        assert!(matches("Game*", "Game of Life"));
        assert!(!matches("Game*", "The Game"));
        assert!(matches("*", ""));
        assert!(matches("*/steamapps/*", "/home/u/.steam/steamapps/common/x"), "* matches /");
        assert!(matches("app?", "app1"));
        assert!(!matches("app?", "app"));
        assert!(matches("app[12]", "app2"));
        assert!(!matches("app[12]", "app3"));
        assert!(matches("app[!12]", "app3"));
        assert!(matches("{spotify,Spotify}", "Spotify"));
        assert!(!matches("{spotify,Spotify}", "SPOTIFY"));
        assert!(matches(r"what\?", "what?"));
        assert!(!matches(r"what\?", "whatX"));
        assert!(matches("Müsik*", "Müsik «Player»"));
        assert!(matches("*«Player»", "Müsik «Player»"));
    }

    #[test]
    fn bad_glob_is_an_error() {
        let err = Matcher::new(MatchKey::MediaName, "[abc").unwrap_err();
        assert_eq!(err.pattern, "[abc");
        assert!(err.reason.contains("unclosed character class"), "{err}");
        assert!(Matcher::new(MatchKey::MediaName, "{a,b").is_err());
        assert!(Matcher::new(MatchKey::MediaName, "[z-a]").is_err());
    }

    #[test]
    fn non_ascii_in_a_character_class_is_an_error() {
        let err = Matcher::new(MatchKey::ApplicationName, "M[üu]sik").unwrap_err();
        assert!(err.reason.contains("ASCII"), "{err}");
        // Non-ASCII outside a class, or an escaped bracket, is fine.
        assert!(Matcher::new(MatchKey::ApplicationName, "[]M]üsik").is_ok());
        assert!(Matcher::new(MatchKey::ApplicationName, r"\[ü").is_ok());
        assert!(Matcher::new(MatchKey::ApplicationName, "[!]]ü").is_ok());
    }

    #[test]
    fn missing_property_never_matches_even_star() {
        let m = Matcher::new(MatchKey::MediaRole, "*").unwrap();
        assert!(!m.matches(&props(&[(MatchKey::ApplicationName, "Firefox")])));
        assert!(m.matches(&props(&[(MatchKey::MediaRole, "")])));
    }

    #[test]
    fn all_matchers_of_a_rule_must_match() {
        let r = rule(&[(MatchKey::ProcessBinary, "discord"), (MatchKey::MediaRole, "Communication")], "chat");
        assert!(r.matches(&props(&[(MatchKey::ProcessBinary, "discord"), (MatchKey::MediaRole, "Communication")])));
        assert!(!r.matches(&props(&[(MatchKey::ProcessBinary, "discord"), (MatchKey::MediaRole, "Music")])));
        assert!(!r.matches(&props(&[(MatchKey::ProcessBinary, "discord")])));
        assert!(!r.matches(&props(&[(MatchKey::MediaRole, "Communication")])));
        assert_eq!(r.keys().collect::<Vec<_>>(), [MatchKey::ProcessBinary, MatchKey::MediaRole]);
        assert_eq!(r.matchers()[1].pattern(), "Communication");
        assert_eq!(r.sink(), "chat");
    }

    #[test]
    fn first_match_wins_and_no_match_is_none() {
        let set = RuleSet::new(vec![
            rule(&[(MatchKey::ApplicationName, "Game*")], "game"),
            rule(&[(MatchKey::ApplicationName, "*")], "music"),
            rule(&[(MatchKey::ApplicationName, "Game Two")], "never"),
        ]);
        assert_eq!(set.len(), 3);
        assert!(!set.is_empty());
        let game = props(&[(MatchKey::ApplicationName, "Game Two")]);
        assert_eq!(set.target_for(&game), Some(RuleMatch { index: 0, sink: "game" }));
        let other = props(&[(MatchKey::ApplicationName, "Firefox")]);
        assert_eq!(set.target_for(&other), Some(RuleMatch { index: 1, sink: "music" }));
        let anonymous = props(&[(MatchKey::MediaName, "beep")]);
        assert_eq!(set.target_for(&anonymous), None);
        assert_eq!(set.iter().map(Rule::sink).collect::<Vec<_>>(), ["game", "music", "never"]);
        assert_eq!((&set).into_iter().count(), 3);
    }

    #[test]
    fn empty_rule_set_matches_nothing() {
        let set = RuleSet::default();
        assert!(set.is_empty());
        assert_eq!(set.target_for(&props(&[(MatchKey::ApplicationName, "x")])), None);
    }

    #[test]
    fn rule_needs_matchers_and_a_sink() {
        assert_eq!(Rule::new(Vec::new(), "game").unwrap_err(), RuleError::EmptyMatch);
        let m = Matcher::new(MatchKey::ApplicationName, "x").unwrap();
        assert_eq!(Rule::new(vec![m], "").unwrap_err(), RuleError::EmptySink);
    }

    #[test]
    fn odd_characters_in_sink_names_are_kept() {
        let r = rule(&[(MatchKey::ApplicationName, "Say \"hi\"")], "Müsik «sink» \\ \"q\"");
        let set = RuleSet::new(vec![r]);
        let m = set.target_for(&props(&[(MatchKey::ApplicationName, "Say \"hi\"")])).unwrap();
        assert_eq!(m.sink, "Müsik «sink» \\ \"q\"");
    }
}
