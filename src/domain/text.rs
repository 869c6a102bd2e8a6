//! Free text that people type: names, descriptions, reasons. A name travels into mail headers,
//! logs, CSV exports and HTML; a control character in one (a line break above all) can end a
//! header, forge a log line or break an export, so every name-like field refuses them at the
//! door. Only a long text meant to hold paragraphs (a profile's bio) may hold line breaks.

use super::Invalid;

/// One line of text: trimmed, at most `max_chars` characters, with no control character and
/// no Unicode line or paragraph separator. Empty is `None`.
pub fn line(raw: &str, max_chars: usize) -> Result<Option<String>, Invalid> {
    checked(raw, max_chars, |c| c.is_control() || is_separator(c))
}

/// Paragraphs: like [`line`], but line breaks and tabs are allowed (a `\r\n` is kept as `\n`).
pub fn paragraphs(raw: &str, max_chars: usize) -> Result<Option<String>, Invalid> {
    let normalised = raw.replace("\r\n", "\n");
    checked(&normalised, max_chars, |c| {
        (c.is_control() && c != '\n' && c != '\t') || is_separator(c)
    })
}

/// U+2028 and U+2029 end a line in JavaScript and in some mail readers though they are not
/// control characters.
fn is_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

fn checked(
    raw: &str,
    max_chars: usize,
    refused: impl Fn(char) -> bool,
) -> Result<Option<String>, Invalid> {
    let text = raw.trim();
    if text.chars().any(refused) {
        return Err(Invalid::new(
            "must not hold control characters or line breaks",
        ));
    }
    if text.chars().count() > max_chars {
        return Err(Invalid::new(format!(
            "must be at most {max_chars} characters"
        )));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_refuses_breaks_controls_and_separators() {
        for bad in [
            "a\nb",
            "a\rb",
            "tab\there",
            "bell\u{7}",
            "esc\u{1b}[31m",
            "x\u{2028}y",
            "del\u{7f}",
            "c1\u{85}x",
        ] {
            assert!(line(bad, 100).is_err(), "{bad:?}");
        }
        assert_eq!(
            line("  Ada Lovelace ", 100).unwrap().as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(line("   ", 100).unwrap(), None);
        assert_eq!(line("Zoë 李", 100).unwrap().as_deref(), Some("Zoë 李"));
    }

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        assert!(line(&"é".repeat(100), 100).unwrap().is_some());
        assert!(line(&"é".repeat(101), 100).is_err());
    }

    #[test]
    fn paragraphs_keep_line_breaks_and_tabs_but_no_other_control() {
        assert_eq!(
            paragraphs("one\r\ntwo\tthree", 100).unwrap().as_deref(),
            Some("one\ntwo\tthree")
        );
        assert!(paragraphs("one\u{0}two", 100).is_err());
        assert!(paragraphs("one\rtwo", 100).is_err());
        assert!(paragraphs("one\u{2029}two", 100).is_err());
    }
}
