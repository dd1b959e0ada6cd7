//! A scenario's story, the Markdown text under `[scenario] story`, for the report.
//!
//! Only a small, safe subset is understood: paragraphs (split at blank lines), `- ` or `* `
//! list items, `**strong**`, `*emphasis*` and `` `code` ``. The text is parsed into
//! [`Block`]s of plain-text [`Span`]s with flags, and the template writes the tags and
//! escapes every span's text: nothing a scenario writes is ever passed through as HTML
//! (`<b>` shows as `<b>`), and links are shown as text, never followed.

use serde::Serialize;

/// A story ready for the template.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Story {
    pub blocks: Vec<Block>,
}

/// A paragraph (one item) or a list (one item per entry).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Block {
    pub list: bool,
    pub items: Vec<Vec<Span>>,
}

/// A run of text with one style; the template escapes `text`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Span {
    pub text: String,
    pub strong: bool,
    pub em: bool,
    pub code: bool,
}

impl Story {
    /// Parses `text` (see the module docs for what is understood).
    pub fn from_markdown(text: &str) -> Story {
        let mut blocks = Vec::new();
        for chunk in chunks(text) {
            let mut paragraph: Vec<&str> = Vec::new();
            let mut items: Vec<Vec<&str>> = Vec::new();
            let flush_paragraph = |paragraph: &mut Vec<&str>, blocks: &mut Vec<Block>| {
                if !paragraph.is_empty() {
                    blocks.push(Block {
                        list: false,
                        items: vec![spans(&paragraph.join(" "))],
                    });
                    paragraph.clear();
                }
            };
            let flush_list = |items: &mut Vec<Vec<&str>>, blocks: &mut Vec<Block>| {
                if !items.is_empty() {
                    let items = items.drain(..).map(|item| spans(&item.join(" "))).collect();
                    blocks.push(Block { list: true, items });
                }
            };
            for line in chunk {
                let trimmed = line.trim();
                let item = trimmed
                    .strip_prefix("- ")
                    .or_else(|| trimmed.strip_prefix("* "));
                if let Some(item) = item {
                    flush_paragraph(&mut paragraph, &mut blocks);
                    items.push(vec![item.trim()]);
                } else if let (Some(last), true) = (items.last_mut(), line.starts_with(' ')) {
                    last.push(trimmed);
                } else {
                    flush_list(&mut items, &mut blocks);
                    paragraph.push(trimmed);
                }
            }
            flush_paragraph(&mut paragraph, &mut blocks);
            flush_list(&mut items, &mut blocks);
        }
        Story { blocks }
    }

    /// The story as plain text, one block a line (for tests and summaries).
    pub fn plain_text(&self) -> String {
        let mut lines = Vec::new();
        for block in &self.blocks {
            for item in &block.items {
                let text: String = item.iter().map(|span| span.text.as_str()).collect();
                lines.push(if block.list {
                    format!("- {text}")
                } else {
                    text
                });
            }
        }
        lines.join("\n")
    }
}

/// Groups of consecutive non-blank lines.
fn chunks(text: &str) -> Vec<Vec<&str>> {
    let mut chunks = vec![Vec::new()];
    for line in text.lines() {
        if line.trim().is_empty() {
            chunks.push(Vec::new());
        } else {
            chunks
                .last_mut()
                .expect("never empty")
                .push(line.trim_end());
        }
    }
    chunks.retain(|chunk| !chunk.is_empty());
    chunks
}

/// Splits one paragraph into styled spans. A marker without a closing partner is text.
fn spans(text: &str) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let (mut strong, mut em) = (false, false);
    let mut current = String::new();
    let flush = |current: &mut String, spans: &mut Vec<Span>, strong: bool, em: bool| {
        if !current.is_empty() {
            spans.push(Span {
                text: std::mem::take(current),
                strong,
                em,
                code: false,
            });
        }
    };
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '`'
            && let Some(end) = rest[1..].find('`')
            && end > 0
        {
            flush(&mut current, &mut spans, strong, em);
            spans.push(Span {
                text: rest[1..=end].to_owned(),
                strong,
                em,
                code: true,
            });
            rest = &rest[end + 2..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("**")
            && (strong || after.contains("**"))
        {
            flush(&mut current, &mut spans, strong, em);
            strong = !strong;
            rest = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix('*')
            && !after.starts_with('*')
            && (em || (!after.starts_with(' ') && after.contains('*')))
        {
            flush(&mut current, &mut spans, strong, em);
            em = !em;
            rest = after;
            continue;
        }
        current.push(c);
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut current, &mut spans, strong, em);
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(text: &str) -> Span {
        Span {
            text: text.into(),
            ..Span::default()
        }
    }

    #[test]
    fn paragraphs_and_lists() {
        let story = Story::from_markdown(
            "First line\nsecond line.\n\n- one\n  continued\n- two\nafter\n\n\n* three\n",
        );
        assert_eq!(
            story.plain_text(),
            "First line second line.\n- one continued\n- two\nafter\n- three"
        );
        assert_eq!(story.blocks.len(), 4);
        assert!(story.blocks[1].list && !story.blocks[2].list && story.blocks[3].list);
        assert!(Story::from_markdown("  \n\n").blocks.is_empty());
    }

    #[test]
    fn inline_styles() {
        let spans = spans("a **`release=free` (`MADV_FREE`)**: *lazy* `x*y` 2 * 3 **open");
        let expected = vec![
            span("a "),
            Span {
                text: "release=free".into(),
                strong: true,
                code: true,
                ..Span::default()
            },
            Span {
                text: " (".into(),
                strong: true,
                ..Span::default()
            },
            Span {
                text: "MADV_FREE".into(),
                strong: true,
                code: true,
                ..Span::default()
            },
            Span {
                text: ")".into(),
                strong: true,
                ..Span::default()
            },
            span(": "),
            Span {
                text: "lazy".into(),
                em: true,
                ..Span::default()
            },
            span(" "),
            Span {
                text: "x*y".into(),
                code: true,
                ..Span::default()
            },
            span(" 2 * 3 **open"),
        ];
        assert_eq!(spans, expected);
    }

    #[test]
    fn markup_stays_text() {
        let story = Story::from_markdown("<b>x</b> & [link](https://example.com)");
        assert_eq!(story.plain_text(), "<b>x</b> & [link](https://example.com)");
    }
}
