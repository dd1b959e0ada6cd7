//! Markdown for CI job summaries and chat messages, shared by `summary.md` and `rsslab diff`:
//! the changes against a baseline as a table, and [`escape`], which makes any string safe in a
//! table cell.

use std::fmt::Write as _;

use crate::analysis::comparison::{Comparison, Verdict};

/// The comparison as Markdown, for `rsslab diff`'s output and a CI job summary: a heading
/// and [`markdown_body`].
pub fn markdown(comparison: &Comparison) -> String {
    format!(
        "## Changes against the baseline `{}`\n\n{}",
        comparison.baseline.replace('`', "'"),
        markdown_body(comparison)
    )
}

/// The counts and the table of the changes (`summary.md` puts them under its own heading).
pub fn markdown_body(comparison: &Comparison) -> String {
    let mut out = String::new();
    let counts: Vec<String> = [
        Verdict::Regression,
        Verdict::Expected,
        Verdict::Changed,
        Verdict::Improvement,
    ]
    .iter()
    .map(|verdict| {
        let count = comparison.count(*verdict);
        let word = match (verdict, count) {
            (Verdict::Regression, 1) => "regression".to_owned(),
            (Verdict::Improvement, 1) => "improvement".to_owned(),
            (Verdict::Changed, 1) => "other change".to_owned(),
            (Verdict::Changed, _) => "other changes".to_owned(),
            (Verdict::Expected, _) => "expected (known kernel behaviour)".to_owned(),
            (verdict, _) => format!("{}s", verdict.as_str()),
        };
        if *verdict == Verdict::Regression && count > 0 {
            format!("**{count} {word}**")
        } else {
            format!("{count} {word}")
        }
    })
    .collect();
    let _ = writeln!(
        out,
        "{} in {} scenario × kernel × variant combinations compared.",
        counts.join(", "),
        comparison.compared
    );
    for (label, keys) in [
        ("Only in the new lab", &comparison.only_in_new),
        ("Only in the baseline", &comparison.only_in_baseline),
    ] {
        if !keys.is_empty() {
            let _ = writeln!(
                out,
                "{label}: {}.",
                keys.iter()
                    .map(|key| format!("`{}`", key.replace('`', "'")))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    if comparison.changes.is_empty() {
        out.push_str("\nNothing changed beyond run-to-run noise.\n");
        return out;
    }
    out.push_str(
        "\n| verdict | scenario | kernel | variant | what | baseline | new | detail |\n|---|---|---|---|---|---|---|---|\n",
    );
    for change in &comparison.changes {
        let detail = match &change.note {
            Some(note) if change.detail.is_empty() => note.clone(),
            Some(note) => format!("{}; {note}", change.detail),
            None => change.detail.clone(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            if change.verdict == Verdict::Regression {
                "**regression**".to_owned()
            } else {
                change.verdict.as_str().to_owned()
            },
            escape(&change.scenario),
            escape(&change.kernel),
            escape(if change.variant_label.is_empty() {
                "—"
            } else {
                &change.variant_label
            }),
            escape(&change.what),
            escape(&change.baseline),
            escape(&change.new),
            escape(&detail),
        );
    }
    out
}

/// Text that Markdown shows as it is, on one line and inside a table cell: line breaks and
/// other control characters become spaces, and the characters that start inline markup
/// (emphasis, code, links, HTML, entities, math, table cells) are backslash-escaped.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    let mut last_was_space = false;
    for c in text.chars() {
        if c.is_control() {
            if !last_was_space {
                escaped.push(' ');
            }
            last_was_space = true;
            continue;
        }
        last_was_space = c == ' ';
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '<' | '>' | '|' | '&' | '$' | '#' | '!'
        ) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
