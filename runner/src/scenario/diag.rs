//! Diagnostics for scenario files, drawn like rustc's (by annotate-snippets, rustc's and
//! cargo's renderer).
//!
//! A [`Diagnostic`] is built while parsing with a byte span into the file; [`locate`] turns the
//! span into a line, a column and the source line once the whole file has been checked, so a
//! [`ScenarioError`] can be printed without the source:
//!
//! ```text
//! error: unknown key `memroy` in [vm]
//!  --> scenarios/x.toml:7:1
//!   |
//! 7 | memroy = "1GiB"
//!   | ^^^^^^
//!   |
//!   = help: did you mean `memory`? (expected one of kernels, memory, cpus, disk, timeout)
//! ```
//!
//! What is missing from a file (a required table) is placed at 1:1 without a source line.
//!
//! [`from_toml_error`] translates the toml parser's and serde's messages (unknown field, missing
//! field, invalid type, unit errors from `rsslab_wire::units`) into this shape.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet as Source};

/// One error (or warning) in a scenario file or a file it reads: where, which key, what is
/// wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// An error stops the scenario; a warning is printed and the scenario runs.
    pub severity: Severity,
    /// The file, as given to the loader.
    pub file: PathBuf,
    /// 1-based line; 0 when the error is about the file as a whole.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Dotted path of the key concerned (`vm.memory`, `process[1].args.heap`); empty for the file.
    pub key: String,
    /// What is wrong, one line.
    pub message: String,
    /// Short text beside the carets.
    pub label: Option<String>,
    /// How to fix it.
    pub help: Vec<String>,
    /// Context, e.g. which matrix variant.
    pub notes: Vec<String>,
    span: Option<Range<usize>>,
    /// Whether to draw the source line (not for things that are missing).
    draw: bool,
    snippet: Option<Snippet>,
}

/// Whether a diagnostic stops the scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Error,
    /// Something the scenario (or its manifest) says that rsslab does not use.
    Warning,
}

/// The source line a diagnostic points at, and the bytes of it the carets mark.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snippet {
    text: String,
    carets: Range<usize>,
}

impl Diagnostic {
    /// An error at `span` (bytes into the source) about `key`.
    pub fn at(span: Range<usize>, key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            span: Some(span),
            ..Diagnostic::file_level(key, message)
        }
    }

    /// An error about something missing from the file (a required table): placed at 1:1,
    /// without a source line to draw.
    pub fn missing(key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            span: Some(0..0),
            draw: false,
            ..Diagnostic::file_level(key, message)
        }
    }

    /// An error about the file as a whole (an unreadable file, an empty directory).
    pub fn file_level(key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: PathBuf::new(),
            line: 0,
            column: 0,
            key: key.into(),
            message: message.into(),
            label: None,
            help: Vec::new(),
            notes: Vec::new(),
            span: None,
            draw: true,
            snippet: None,
        }
    }

    /// The same, as a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// The byte span in the source, if the error has a place.
    pub fn span(&self) -> Option<Range<usize>> {
        self.span.clone()
    }

    /// A key that is the same for two diagnostics that say the same thing at the same place
    /// (notes aside).
    pub fn identity(&self) -> String {
        format!(
            "{:?}\u{0}{}\u{0}{:?}\u{0}{:?}",
            self.span, self.message, self.label, self.help
        )
    }
}

/// The first `max` diagnostics; the last says how many more there were.
pub fn at_most(mut diagnostics: Vec<Diagnostic>, max: usize) -> Vec<Diagnostic> {
    if diagnostics.len() > max {
        let more = diagnostics.len() - max;
        diagnostics.truncate(max);
        if let Some(last) = diagnostics.last_mut() {
            last.notes.push(format!(
                "{more} more errors in this file are not shown: fix these first"
            ));
        }
    }
    diagnostics
}

/// Fills in the file, line, column and snippet of each diagnostic; one located already (in
/// another file the scenario reads, such as a manifest) stays as it is.
pub fn locate(mut diagnostics: Vec<Diagnostic>, file: &Path, source: &str) -> Vec<Diagnostic> {
    for diagnostic in &mut diagnostics {
        if !diagnostic.file.as_os_str().is_empty() {
            continue;
        }
        diagnostic.file = file.to_path_buf();
        if let Some(span) = diagnostic.span.clone() {
            let (line, column, snippet) = snippet_at(source, span);
            diagnostic.line = line;
            diagnostic.column = column;
            diagnostic.snippet = diagnostic.draw.then_some(snippet);
        }
    }
    diagnostics
}

/// Line (1-based), column (1-based, characters) and source line of a byte span.
fn snippet_at(source: &str, span: Range<usize>) -> (usize, usize, Snippet) {
    let start = floor_char_boundary(source, span.start.min(source.len()));
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[start..]
        .find('\n')
        .map_or(source.len(), |i| start + i);
    let text = source[line_start..line_end].trim_end_matches('\r');
    let line = source[..start].matches('\n').count() + 1;
    // The span may start on the line's `\r` (CRLF files: placed as in the same file with LF) or
    // end on a later line; an empty one marks the character it starts at.
    let caret_start = (start - line_start).min(text.len());
    let column = text[..caret_start].chars().count() + 1;
    let mut caret_end = floor_char_boundary(text, span.end.clamp(start, line_end) - line_start);
    if caret_end <= caret_start {
        caret_end = text[caret_start..]
            .chars()
            .next()
            .map_or(caret_start, |c| caret_start + c.len_utf8());
    }
    let snippet = Snippet {
        text: text.to_owned(),
        carets: caret_start..caret_end,
    };
    (line, column, snippet)
}

/// `index`, or the nearest character boundary below it.
fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// Widest a drawn source line gets: longer ones are cut around the carets.
const DRAWN_WIDTH: usize = 100;

/// Drawn by annotate-snippets, the renderer of rustc's and cargo's messages.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display().to_string();
        let level = match self.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let mut group = Group::with_title(level.primary_title(self.message.as_str()));
        match &self.snippet {
            Some(snippet) => {
                let carets = AnnotationKind::Primary
                    .span(snippet.carets.clone())
                    .label(self.label.as_deref());
                group = group.element(
                    Source::source(snippet.text.as_str())
                        .line_start(self.line)
                        .path(file.as_str())
                        .annotation(carets),
                );
            }
            None => {
                let mut origin = Origin::path(file.as_str());
                if self.line > 0 {
                    origin = origin.line(self.line).char_column(self.column);
                }
                group = group.element(origin);
                if let Some(label) = &self.label {
                    group = group.element(Level::NOTE.no_name().message(label.as_str()));
                }
            }
        }
        for help in &self.help {
            group = group.element(Level::HELP.message(help.as_str()));
        }
        for note in &self.notes {
            group = group.element(Level::NOTE.message(note.as_str()));
        }
        let renderer = Renderer::plain().term_width(DRAWN_WIDTH);
        writeln!(f, "{}", renderer.render(&[group]))
    }
}

/// Every error found while loading scenarios; `Display` draws them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    diagnostics: Vec<Diagnostic>,
}

impl ScenarioError {
    pub fn new(diagnostics: Vec<Diagnostic>) -> Self {
        ScenarioError { diagnostics }
    }

    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    pub fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        if self.diagnostics.len() > 1 {
            write!(
                f,
                "\nerror: {} errors in scenario files",
                self.diagnostics.len()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// `did you mean `x`?` for the closest candidate, if any is close.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(input, candidate), candidate))
        .filter(|(distance, candidate)| {
            *distance <= 2.max(input.len() / 3) && *distance < candidate.len().max(input.len())
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// "did you mean `x`? (expected one of a, b, c)" or "expected one of a, b, c".
pub fn suggest(input: &str, candidates: &[&str]) -> String {
    let list = format!("expected one of {}", candidates.join(", "));
    match did_you_mean(input, candidates.iter().copied()) {
        Some(close) => format!("did you mean `{close}`? ({list})"),
        None => list,
    }
}

/// How a table is named in messages: `[vm]` at the top, `process[0].args` below.
pub fn table_name(path: &str) -> String {
    if path.is_empty() {
        "the file".to_string()
    } else if path.contains(['.', '[']) {
        format!("`{path}`")
    } else {
        format!("[{path}]")
    }
}

/// Joins a table path and a key.
pub fn join(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

/// A toml or serde error as a diagnostic. `path` is the dotted path of the value (or table)
/// the error's span points at.
pub fn from_toml_error(error: &toml::de::Error, path: &str) -> Diagnostic {
    let message = error.message().trim();
    let span = error.span().unwrap_or(0..0);
    if let Some(field) = backticked_after(message, "missing field ") {
        return Diagnostic::at(
            span,
            join(path, field),
            format!("missing key `{field}` in {}", table_name(path)),
        )
        .help(example_for(field));
    }
    if let Some(field) = backticked_after(message, "unknown field ") {
        let expected = expected_list(message);
        let table = parent(path);
        return Diagnostic::at(
            span,
            path,
            format!("unknown key `{field}` in {}", table_name(table)),
        )
        .help(suggest(field, &expected));
    }
    if let Some(variant) = backticked_after(message, "unknown variant ") {
        let expected = expected_list(message);
        return Diagnostic::at(span, path, format!("invalid value for `{path}`"))
            .label(format!("unknown value `{variant}`"))
            .help(suggest(variant, &expected));
    }
    if path.is_empty() {
        // Syntax errors: the parser says what it expected; say how to write it.
        let message = first_line(message);
        return Diagnostic::at(span, path, format!("invalid TOML: {message}"))
            .help(syntax_help(message));
    }
    let (what, fix) = split_fix(message);
    let what = plain_types(what);
    let fix = fix.unwrap_or_else(|| type_help(&what, path));
    Diagnostic::at(span, path, format!("invalid value for `{path}`"))
        .label(what)
        .help(fix)
}

/// How to fix a TOML syntax error, from the parser's message.
fn syntax_help(message: &str) -> String {
    let fixes: &[(&[&str], &str)] = &[
        (
            &["must be quoted"],
            "quote text, sizes and durations: memory = \"1GiB\", workload = \"heap-churn\"",
        ),
        (
            &["comma"],
            "separate the items of a list with `,` and close it with `]`: kernels = [\"6.1\", \"6.12\"]",
        ),
        (
            &["duplicate key"],
            "a key is set once per table, and a table header is written once ([[process]] and \
             [[expect]] repeat, with two pairs of brackets): remove the repeat",
        ),
        (
            &["basic string", "literal string"],
            "close the string on the same line: \"...\" (text over several lines goes in \
             \"\"\"...\"\"\")",
        ),
        (
            &["unclosed table", "unclosed array table"],
            "close the header: [vm], or [[process]] above each process",
        ),
        (
            &["unclosed array"],
            "close the list with `]`, e.g. kernels = [\"6.1\", \"6.12\"]",
        ),
        (
            &["unclosed inline table"],
            "close the inline table on the same line, e.g. args = { heap = \"400MiB\" }",
        ),
        (
            &["expected newline"],
            "write one key = value a line, below its table header",
        ),
        (
            &["key with no value", "keys cannot be empty"],
            "write key = value; a key with dots, slashes or spaces goes in quotes: \
             \"vm.overcommit_memory\" = 1",
        ),
        (
            &["escaped value", "escape"],
            "write a backslash as \\\\, or put the text in single quotes: 'C:\\path'",
        ),
        (
            &[
                "digits", "boolean", "fraction", "exponent", "integer", "float",
            ],
            "write numbers as digits (1000, 1_000, 0.9) and booleans as true or false",
        ),
        (
            &["recursion", "recurse"],
            "nest arrays and tables less deeply: a scenario needs two or three levels",
        ),
    ];
    fixes
        .iter()
        .find(|(needles, _)| needles.iter().any(|needle| message.contains(needle)))
        .map_or("see https://toml.io for the syntax", |(_, fix)| fix)
        .to_string()
}

/// How to write a value of the type serde expected, from its (plain) message.
fn type_help(what: &str, path: &str) -> String {
    let key = path.rsplit('.').next().unwrap_or(path);
    let expected = what
        .split_once("expected ")
        .map_or("", |(_, expected)| expected);
    if what.contains("cannot be negative") {
        "sizes are zero or more: write e.g. \"512MiB\"".to_string()
    } else if expected.starts_with("a string") {
        format!("write text in quotes: {key} = \"...\"")
    } else if expected.starts_with("a whole number") {
        format!("write a whole number without quotes, e.g. {key} = 1")
    } else if expected.starts_with("true or false") {
        format!("write {key} = true or {key} = false")
    } else if expected.starts_with("an array") {
        format!("write a list in brackets: {key} = [...]")
    } else if expected.starts_with("a table") {
        format!("write a table: {key} = {{ ... }}")
    } else if expected.starts_with("a size") {
        "write a size such as \"512MiB\" (or a number of bytes)".to_string()
    } else if expected.starts_with("a duration") {
        "write a duration such as \"250ms\" or \"3s\"".to_string()
    } else if expected.starts_with("a number") {
        format!("write a number, e.g. {key} = 0.9")
    } else {
        "see the format: README.md, \"Scenarios and workloads\", and the module docs of \
         runner/src/scenario/mod.rs list every key"
            .to_string()
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The parent of a dotted path (`process[0].args` for `process[0].args.heap`).
fn parent(path: &str) -> &str {
    match path.rfind('.') {
        Some(dot) => &path[..dot],
        None => "",
    }
}

/// `x` in "missing field `x`".
fn backticked_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split('`').next()
}

/// The names in "..., expected one of `a`, `b`" or "expected `a` or `b`".
fn expected_list(message: &str) -> Vec<&str> {
    let Some((_, expected)) = message.split_once("expected") else {
        return Vec::new();
    };
    expected.split('`').skip(1).step_by(2).collect()
}

/// Splits "`x` is not a size: write a number ..." into the problem and the fix.
pub fn split_fix(message: &str) -> (&str, Option<String>) {
    match message.split_once(": write ") {
        Some((what, fix)) => (what, Some(format!("write {fix}"))),
        None => (message, None),
    }
}

/// serde's Rust type names in words users know.
fn plain_types(message: &str) -> String {
    let mut text = message.to_string();
    for (rust, plain) in [
        ("expected u8", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
    ] {
        text = text.replace(rust, plain);
    }
    if let Some(at) = text.find("expected struct ") {
        text.replace_range(at.., "expected a table");
    }
    text
}

/// A line to copy for a missing required key.
fn example_for(field: &str) -> String {
    let example = match field {
        "id" => "id = \"my-scenario\"".to_string(),
        "title" => "title = \"What this scenario shows\"".to_string(),
        "duration" => "duration = \"30s\"".to_string(),
        "name" => "name = \"service\"".to_string(),
        "workload" => format!(
            "workload = \"heap-churn\" (one of {})",
            rsslab_wire::workload::WORKLOAD_NAMES.join(", ")
        ),
        "heap" => "heap = \"400MiB\"".to_string(),
        other => format!("{other} = ..."),
    };
    format!("add {example}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_like_rustc() {
        let source = "[vm]\nmemroy = \"1GiB\"\n";
        let diagnostic = Diagnostic::at(5..11, "vm.memroy", "unknown key `memroy` in [vm]")
            .help("did you mean `memory`?");
        let [diagnostic] = locate(vec![diagnostic], Path::new("x.toml"), source)
            .try_into()
            .unwrap();
        assert_eq!((diagnostic.line, diagnostic.column), (2, 1));
        assert_eq!(
            diagnostic.to_string(),
            "error: unknown key `memroy` in [vm]\n --> x.toml:2:1\n  |\n2 | memroy = \"1GiB\"\n  | ^^^^^^\n  |\n  = help: did you mean `memory`?\n"
        );
    }

    #[test]
    fn columns_count_characters_and_carets_stay_on_the_line() {
        let source = "title = \"é\"\nx = \"\"\"a\nb\"\"\"\n";
        let (line, column, snippet) = snippet_at(source, 17..30);
        assert_eq!((line, column), (2, 5));
        assert_eq!(snippet.carets, 4..8, "{snippet:?}");
        let (_, column, _) = snippet_at(source, 9..11);
        assert_eq!(column, 10);
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("memroy", ["kernels", "memory", "cpus"]),
            Some("memory")
        );
        assert_eq!(did_you_mean("stepp", ["step", "every"]), Some("step"));
        assert_eq!(did_you_mean("zzz", ["memory", "cpus"]), None);
        assert_eq!(did_you_mean("id", ["go"]), None);
    }

    #[test]
    fn translates_serde_messages() {
        let error =
            toml::from_str::<rsslab_wire::CgroupSpec>("version = 2\nmemory_max = \"5 parsecs\"")
                .unwrap_err();
        let diagnostic = from_toml_error(&error, "cgroup.memory_max");
        assert_eq!(diagnostic.message, "invalid value for `cgroup.memory_max`");
        assert_eq!(
            diagnostic.label.as_deref(),
            Some("`5 parsecs` is not a size")
        );
        assert!(
            diagnostic.help[0].starts_with("write a number with a unit"),
            "{diagnostic:?}"
        );
        assert_eq!(
            plain_types("invalid type: string \"a\", expected u32"),
            "invalid type: string \"a\", expected a whole number"
        );
        assert_eq!(
            expected_list("unknown variant `x`, expected `free` or `dontneed`"),
            ["free", "dontneed"]
        );
    }
}
