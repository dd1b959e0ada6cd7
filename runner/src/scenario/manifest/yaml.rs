//! The manifest's YAML as a tree that remembers where each key and value is written, so that
//! what is found after parsing (a type error, a bad quantity, a field rsslab does not use) is
//! reported at its place.
//!
//! serde-saphyr reads the text once into [`Yaml`] nodes, one tree per YAML document
//! ([`parse_documents`]); the tree converts to JSON for the typed Kubernetes objects
//! ([`Yaml::to_json`]) and answers "where is `spec.containers[0].resources`?"
//! ([`Yaml::place`]) for the diagnostics about them.

use std::fmt;
use std::ops::Range;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, SnippetMode, Spanned};

use crate::scenario::diag::Diagnostic;

/// One YAML node and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Yaml {
    pub value: Value,
    /// Bytes of the source: a scalar's text, a flow collection's opening bracket, or (empty)
    /// the start of a block collection's first entry.
    pub span: Range<usize>,
}

/// What a node holds, as YAML's core schema reads scalars.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Seq(Vec<Yaml>),
    Map(Vec<Entry>),
}

/// One `key: value` of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub value: Yaml,
}

/// The stack the parser runs on. serde-saphyr descends once per level of nesting, up to its
/// budget's 64 levels, with frames of tens of KiB in a debug build: more than the 2 MiB of a
/// test's or a thread pool's thread.
const PARSER_STACK_BYTES: usize = 32 << 20;

/// Reads every document of the text; empty documents (only comments, or nothing between two
/// `---`) are left out. A YAML syntax error is one diagnostic at its place, pushed to
/// `errors` (then `None`).
pub fn parse_documents(source: &str, errors: &mut Vec<Diagnostic>) -> Option<Vec<Yaml>> {
    let parse = || match serde_saphyr::from_multiple::<Spanned<Parsed>>(source) {
        Ok(documents) => Ok(documents.into_iter().map(Yaml::from).collect()),
        Err(error) => Err(Box::new(syntax_error(&error, source))),
    };
    let parsed = std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("manifest-yaml".to_string())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(scope, parse);
        match thread {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: the caller's stack (the main thread's 8 MiB suffice).
            Err(_) => parse(),
        }
    });
    parsed.map_err(|error| errors.push(*error)).ok()
}

impl Yaml {
    /// The value of `key`, for a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        self.entries()
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| &entry.value)
    }

    /// A mapping's entries, in the order written; none for anything else.
    pub fn entries(&self) -> &[Entry] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// A sequence's items; none for anything else.
    pub fn items(&self) -> &[Yaml] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    /// Where to point for the node at `path` below this one: its own text, or its key when
    /// it is a block collection (which has no text of its own). Where the file stops short of
    /// the path, the deepest node it has on the way: a missing key is reported at its parent.
    pub fn place(&self, path: &YamlPath) -> Range<usize> {
        let mut node = self;
        let mut place = self.span.clone();
        for step in &path.0 {
            let found = match (step, &node.value) {
                (Step::Key(key), Value::Map(entries)) => entries
                    .iter()
                    .find(|entry| entry.key == *key)
                    .map(|entry| (&entry.value, Some(&entry.key_span))),
                (Step::Index(index), Value::Seq(items)) => {
                    items.get(*index).map(|item| (item, None))
                }
                _ => None,
            };
            let Some((child, key_span)) = found else {
                break;
            };
            place = match key_span {
                Some(key_span) if child.span.is_empty() => key_span.clone(),
                _ => child.span.clone(),
            };
            node = child;
        }
        place
    }

    /// From this node's start to the end of the last thing written in it.
    pub fn extent(&self) -> Range<usize> {
        fn furthest(node: &Yaml) -> usize {
            let inner = match &node.value {
                Value::Seq(items) => items.iter().map(furthest).max(),
                Value::Map(entries) => entries
                    .iter()
                    .map(|entry| entry.key_span.end.max(furthest(&entry.value)))
                    .max(),
                _ => None,
            };
            inner.unwrap_or(0).max(node.span.end)
        }
        self.span.start..furthest(self)
    }

    /// The node as JSON, as the API server decodes YAML: a key whose value is null is left
    /// out (Go's JSON decoding leaves the field unset), so `containers:` with nothing after it
    /// reads as no containers rather than as a type error.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(value) => serde_json::Value::Bool(*value),
            Value::Number(number) => serde_json::Value::Number(number.clone()),
            Value::String(text) => serde_json::Value::String(text.clone()),
            Value::Seq(items) => items.iter().map(Yaml::to_json).collect(),
            Value::Map(entries) => entries
                .iter()
                .filter(|entry| entry.value.value != Value::Null)
                .map(|entry| (entry.key.clone(), entry.value.to_json()))
                .collect(),
        }
    }
}

/// A path into a document, as messages print it: `spec.template.spec.containers[0].image`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YamlPath(Vec<Step>);

/// One step of a [`YamlPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

impl YamlPath {
    /// A path of keys only.
    pub fn of(keys: &[&str]) -> Self {
        YamlPath(keys.iter().map(|key| Step::Key(key.to_string())).collect())
    }

    pub fn key(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.0.push(Step::Key(key.to_string()));
        path
    }

    pub fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(Step::Index(index));
        path
    }

    /// The path serde_path_to_error recorded, up to the first step it could not name.
    pub fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment;
        let steps = path
            .iter()
            .map_while(|segment| match segment {
                Segment::Map { key } => Some(Step::Key(key.clone())),
                Segment::Seq { index } => Some(Step::Index(*index)),
                Segment::Enum { .. } | Segment::Unknown => None,
            })
            .collect();
        YamlPath(steps)
    }

    /// The last key of the path, if it ends in one.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Step::Key(key)) => Some(key),
            _ => None,
        }
    }
}

impl fmt::Display for YamlPath {
    /// Keys joined by dots, indices in brackets; a key that is not a plain word (a resource
    /// name such as `nvidia.com/gpu`) in quotes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Index(index) => write!(f, "[{index}]")?,
                Step::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let plain = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if plain {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// What serde-saphyr hands over: a node whose children keep their locations.
enum Parsed {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Seq(Vec<Spanned<Parsed>>),
    Map(Vec<(Spanned<String>, Spanned<Parsed>)>),
}

/// By hand rather than `#[serde(untagged)]`: an untagged enum buffers its input and the
/// children's locations are lost.
impl<'de> Deserialize<'de> for Parsed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ParsedVisitor)
    }
}

struct ParsedVisitor;

impl<'de> Visitor<'de> for ParsedVisitor {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Parsed, E> {
        Ok(Parsed::Null)
    }

    fn visit_none<E>(self) -> Result<Parsed, E> {
        Ok(Parsed::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Parsed, D::Error> {
        Parsed::deserialize(deserializer)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Parsed, E> {
        Ok(Parsed::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Parsed, E> {
        Ok(Parsed::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Parsed, E> {
        Ok(Parsed::Number(value.into()))
    }

    /// `.nan` and `.inf` have no JSON number: they stay text, which no field takes as a number.
    fn visit_f64<E>(self, value: f64) -> Result<Parsed, E> {
        Ok(serde_json::Number::from_f64(value)
            .map_or_else(|| Parsed::String(value.to_string()), Parsed::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Parsed, E> {
        Ok(Parsed::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Parsed, E> {
        Ok(Parsed::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Parsed::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Parsed::Map(entries))
    }
}

impl From<Spanned<Parsed>> for Yaml {
    fn from(parsed: Spanned<Parsed>) -> Self {
        let value = match parsed.value {
            Parsed::Null => Value::Null,
            Parsed::Bool(value) => Value::Bool(value),
            Parsed::Number(number) => Value::Number(number),
            Parsed::String(text) => Value::String(text),
            Parsed::Seq(items) => Value::Seq(items.into_iter().map(Yaml::from).collect()),
            Parsed::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| Entry {
                        key_span: byte_span(&key.referenced),
                        key: key.value,
                        value: Yaml::from(value),
                    })
                    .collect(),
            ),
        };
        Yaml {
            value,
            span: byte_span(&parsed.referenced),
        }
    }
}

/// The bytes a location covers (text sources always have them; 0..0 otherwise).
fn byte_span(location: &Location) -> Range<usize> {
    let span = location.span();
    match (span.byte_offset(), span.byte_len()) {
        (Some(offset), Some(len)) => offset as usize..(offset + len) as usize,
        _ => 0..0,
    }
}

/// A syntax error at its place, in serde-saphyr's words without its own location suffix.
fn syntax_error(error: &serde_saphyr::Error, source: &str) -> Diagnostic {
    let at = error
        .location()
        .map_or(0, |location| byte_offset(&location, source));
    let rendered = error.render_with_options(serde_saphyr::render_options! {
        snippets: SnippetMode::Off,
    });
    let message = rendered
        .rsplit_once(" at line ")
        .map_or(rendered.as_str(), |(message, _)| message)
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    Diagnostic::at(at..at, "", format!("invalid YAML: {message}")).help(syntax_help(&message))
}

/// A location's byte offset: recorded for most errors; from its line and column (characters)
/// for the scanner's.
fn byte_offset(location: &Location, source: &str) -> usize {
    if let Some(offset) = location.span().byte_offset() {
        return (offset as usize).min(source.len());
    }
    let line_start = source
        .split_inclusive('\n')
        .take((location.line() as usize).saturating_sub(1))
        .map(str::len)
        .sum::<usize>();
    let column = (location.column() as usize).saturating_sub(1);
    source[line_start..]
        .char_indices()
        .nth(column)
        .map_or(source.len(), |(offset, _)| line_start + offset)
}

/// How to fix a YAML syntax error, from the parser's message.
fn syntax_help(message: &str) -> String {
    let fixes: &[(&str, &str)] = &[
        (
            "budget breached",
            "the YAML nests deeper (or expands anchors further) than a manifest needs: at most \
             64 levels are read",
        ),
        (
            "duplicate mapping key",
            "a key is written once per mapping: remove the repeat (or merge the two)",
        ),
        (
            "mapping values are not allowed",
            "check the indentation: a key's value goes after `key: ` or on the lines below, \
             indented further than the key; quote a value that holds `: `",
        ),
        (
            "quote",
            "close the quote on the value's line, or use a block scalar (`|`)",
        ),
        (
            "tab",
            "indent with spaces: YAML does not allow tabs for indentation",
        ),
        (
            "bracket",
            "close the flow collection: [a, b] or {key: value}",
        ),
        (
            "did not find expected",
            "check the indentation: the entries of a mapping or a list line up, one per line",
        ),
    ];
    fixes
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map_or(
            "check the indentation (spaces, entries lined up) and the quoting at this place",
            |(_, fix)| fix,
        )
        .to_string()
}
