//! How a mistake in HCL text is reported, for the configuration file and for
//! ACL policies alike: a byte span becomes a 1-based line, a message names
//! where it is (`FILE:LINE: what is wrong`, `policy NAME line LINE: what is
//! wrong`), hcl-edit's parse errors become one such line, and an unknown name
//! can be given the known one it was probably meant to be.
//!
//! What a message says is its caller's; where it points and how that is
//! written is decided here.

use std::fmt;
use std::ops::Range;

use hcl_edit::Span;
use hcl_edit::structure::Attribute;

/// How messages name the text.
#[derive(Clone, Copy, Debug)]
enum Name<'a> {
    /// `FILE:LINE: message`, or `FILE: message` about the whole file.
    File(&'a str),
    /// `policy NAME line LINE: message`, or `policy NAME: message`.
    Policy(&'a str),
}

/// A text being read, and how messages point into it.
#[derive(Debug)]
pub struct SourceText<'a> {
    name: Name<'a>,
    text: &'a str,
    /// Byte offset at which each line starts; line 1 starts at 0.
    line_starts: Vec<usize>,
    /// Where the parsed part starts in `text`: spans and hcl-edit's offsets
    /// count from there (a JSON policy is parsed trimmed).
    base: usize,
}

/// How one kind of document words hcl-edit's parse errors. The kinds differ
/// only so that each keeps the messages it has always given.
#[derive(Clone, Copy, Debug)]
pub struct Wording {
    /// The part of hcl-edit's message that marks a repeated key:
    /// `"redefined attribute"` for attributes only, `"redefined"` for
    /// object keys too. hcl-edit's errors carry no kind, so its wording is
    /// the only signal; `tests::syntax_errors` pins it, so an hcl-edit
    /// upgrade that rewords it fails a test instead of changing a message.
    pub repeated_marker: &'static str,
    /// Characters a repeated key is read with besides letters and digits.
    pub key_chars: &'static [char],
    /// What to say about a repeated key.
    pub repeated: fn(&str) -> String,
    /// Columns count bytes from the start of the line; otherwise they are
    /// the column hcl-edit reports (characters, in the parsed part).
    pub byte_columns: bool,
}

impl<'a> SourceText<'a> {
    /// A file: messages read `FILE:LINE: ...`.
    pub fn file(file: &'a str, text: &'a str) -> Self {
        Self::new(Name::File(file), text)
    }

    /// A policy: messages read `policy NAME line LINE: ...`.
    pub fn policy(name: &'a str, text: &'a str) -> Self {
        Self::new(Name::Policy(name), text)
    }

    fn new(name: Name<'a>, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            name,
            text,
            line_starts,
            base: 0,
        }
    }

    /// The parsed part starts at byte `base` of the text.
    pub fn parsed_from(&mut self, base: usize) {
        self.base = base;
    }

    /// The whole text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// 1-based line of a byte offset in the whole text.
    pub fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(index) => index + 1,
            Err(index) => index,
        }
    }

    /// 1-based line where a span of the parsed part starts; 1 without a span.
    pub fn line_of_span(&self, span: Option<Range<usize>>) -> usize {
        span.map_or(1, |s| self.line_of(self.base + s.start))
    }

    /// A message about a span of the parsed part, or about the whole text
    /// when there is no span.
    pub fn at(&self, span: Option<Range<usize>>, message: impl fmt::Display) -> String {
        match span {
            Some(span) => self.at_line(self.line_of(self.base + span.start), message),
            None => self.general(message),
        }
    }

    /// A message about a line.
    pub fn at_line(&self, line: usize, message: impl fmt::Display) -> String {
        match self.name {
            Name::File(file) => format!("{file}:{line}: {message}"),
            Name::Policy(name) => format!("policy {name} line {line}: {message}"),
        }
    }

    /// A message about the text as a whole.
    pub fn general(&self, message: impl fmt::Display) -> String {
        match self.name {
            Name::File(file) => format!("{file}: {message}"),
            Name::Policy(name) => format!("policy {name}: {message}"),
        }
    }

    /// hcl-edit's error about the parsed part, as one message: a repeated
    /// key in `wording`'s words, anything else as `syntax error at column
    /// C: ...`.
    pub fn syntax_error(&self, error: &hcl_edit::parser::Error, wording: &Wording) -> String {
        let location = error.location();
        let offset = self.base + location.offset();
        let line = self.line_of(offset);
        if error.message().contains(wording.repeated_marker) {
            // hcl-edit points at the repeated key (at its quote, if quoted).
            let key: String = self
                .text
                .get(offset..)
                .unwrap_or_default()
                .trim_start_matches('"')
                .chars()
                .take_while(|c| c.is_alphanumeric() || wording.key_chars.contains(c))
                .collect();
            return self.at_line(line, (wording.repeated)(&key));
        }
        let column = if wording.byte_columns {
            let line_start = self
                .line_starts
                .get(line.saturating_sub(1))
                .copied()
                .unwrap_or(0);
            offset.saturating_sub(line_start) + 1
        } else {
            location.column()
        };
        self.at_line(
            line,
            format_args!("syntax error at column {column}: {}", error.message()),
        )
    }
}

/// The span to blame for an attribute: its own, its key's or its value's.
pub fn attr_span(attr: &Attribute) -> Option<Range<usize>> {
    attr.span()
        .or_else(|| attr.key.span())
        .or_else(|| attr.value.span())
}

/// The first of `candidates` within two edits of `name` and nearest to it:
/// the name `name` was probably meant to be.
pub fn similar_name<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, for "did you mean" hints on short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers() {
        let src = SourceText::file("f", "a\nbc\n\nd");
        assert_eq!(src.line_of(0), 1);
        assert_eq!(src.line_of(1), 1);
        assert_eq!(src.line_of(2), 2);
        assert_eq!(src.line_of(4), 2);
        assert_eq!(src.line_of(5), 3);
        assert_eq!(src.line_of(6), 4);
        assert_eq!(edit_distance("adress", "address"), 1);
    }

    #[test]
    fn messages_name_the_text_and_line() {
        let file = SourceText::file("config.hcl", "a = 1\nb = 2\n");
        assert_eq!(file.at(Some(6..7), "bad b"), "config.hcl:2: bad b");
        assert_eq!(file.at(None, "bad"), "config.hcl: bad");
        assert_eq!(file.general("empty"), "config.hcl: empty");
        assert_eq!(file.line_of_span(Some(6..7)), 2);
        assert_eq!(file.line_of_span(None), 1);

        // Spans count from where the parsed part starts.
        let mut policy = SourceText::policy("web", "\n\n  {\"path\": 1}");
        policy.parsed_from(4);
        assert_eq!(policy.at(Some(0..1), "bad"), "policy web line 3: bad");
        assert_eq!(policy.at(None, "bad"), "policy web: bad");
        assert_eq!(policy.at_line(7, "bad"), "policy web line 7: bad");
        assert_eq!(policy.line_of_span(Some(0..1)), 3);
    }

    fn repeated(key: &str) -> String {
        format!("{key} twice")
    }

    #[test]
    fn syntax_errors() {
        let wording = Wording {
            repeated_marker: "redefined attribute",
            key_chars: &['_', '-'],
            repeated,
            byte_columns: false,
        };
        let text = "a = 1\nb_c = 2\nb_c = 3\n";
        let src = SourceText::file("f", text);
        let Err(e) = hcl_edit::parser::parse_body(text) else {
            panic!("parsed");
        };
        assert_eq!(src.syntax_error(&e, &wording), "f:3: b_c twice");

        let text = "a = 1\nb = [1 2]\n";
        let Err(e) = hcl_edit::parser::parse_body(text) else {
            panic!("parsed");
        };
        let message = SourceText::file("f", text).syntax_error(&e, &wording);
        assert_eq!(
            message,
            format!("f:2: syntax error at column 8: {}", e.message())
        );

        // Bytes from the line start, in the whole text.
        let wording = Wording {
            byte_columns: true,
            ..wording
        };
        let text = "\n  {\"a\": [1 2]}";
        let mut src = SourceText::policy("p", text);
        src.parsed_from(3);
        let Err(e) = hcl_edit::parser::parse_expr(&text[3..]) else {
            panic!("parsed");
        };
        let message = src.syntax_error(&e, &wording);
        assert!(
            message.starts_with("policy p line 2: syntax error at column 12: "),
            "{message} ({:?})",
            e.location()
        );
    }

    #[test]
    fn similar_names() {
        let known = ["address", "tls_disable", "tls_cert_file"];
        assert_eq!(similar_name("adress", known), Some("address"));
        assert_eq!(similar_name("tls_disabel", known), Some("tls_disable"));
        assert_eq!(similar_name("port", known), None);
        // The nearest wins; of equally near ones, the first.
        assert_eq!(similar_name("ab", ["xy", "ax", "ay"]), Some("ax"));
        assert_eq!(similar_name("abc", ["xbc", "abc"]), Some("abc"));
    }
}
