//! TOML read the same way wherever a person writes it (a scenario, `exec.toml`, a job spec, a
//! policy file): where it fails is a dotted key path and a line and column, found once here.

use serde::de::DeserializeOwned;

/// A 1-based line and column (in characters) in a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of a byte offset; an offset past the end or inside a character is moved
    /// back to the nearest character boundary.
    pub fn of_offset(text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location { line: before.matches('\n').count() + 1, column: before[line_start..].chars().count() + 1 }
    }
}

/// Why a TOML text did not deserialize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TomlError {
    /// The dotted key path where deserializing stopped (`policies[1].placement`); empty at the
    /// document's root.
    pub path: String,
    /// Where in the text, when the parser knows.
    pub location: Option<Location>,
    /// The parser's message, on one line.
    pub message: String,
}

/// Deserializes `text`, keeping the key path and the location of a failure.
pub fn from_toml<T: DeserializeOwned>(text: &str) -> Result<T, TomlError> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        TomlError {
            path: if path == "." { String::new() } else { path },
            location: inner.span().map(|s| Location::of_offset(text, s.start)),
            message: inner.message().trim().replace('\n', "; "),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        nodes: Vec<Node>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Node {
        count: u32,
    }

    #[test]
    fn a_bad_value_is_named_by_its_path_line_and_column() {
        let text = "name = \"x\"\n\n[[nodes]]\ncount = 1\n\n[[nodes]]\ncount = -3\n";
        let e = from_toml::<Doc>(text).unwrap_err();
        assert_eq!(e.path, "nodes[1].count");
        assert_eq!(e.location, Some(Location { line: 7, column: 9 }));
        assert!(e.message.contains("-3") || e.message.contains("invalid value"), "{}", e.message);
    }

    #[test]
    fn a_syntax_error_has_no_path_but_a_line() {
        let e = from_toml::<Doc>("name = \"x\"\ncount = = 2\n").unwrap_err();
        assert_eq!(e.path, "");
        assert_eq!(e.location.map(|l| l.line), Some(2));
        assert!(!e.message.contains('\n'));
    }

    #[test]
    fn columns_count_characters_and_offsets_stay_on_boundaries() {
        let text = "a = \"é\"\nb";
        assert_eq!(Location::of_offset(text, text.find('b').unwrap()), Location { line: 2, column: 1 });
        // 'é' is two bytes; the closing quote is the 7th character of line 1.
        assert_eq!(Location::of_offset(text, text.rfind('"').unwrap()), Location { line: 1, column: 7 });
        // Inside 'é': moved back onto its first byte, the 6th character.
        assert_eq!(Location::of_offset(text, text.find('é').unwrap() + 1), Location { line: 1, column: 6 });
        assert_eq!(Location::of_offset(text, 10_000), Location { line: 2, column: 2 });
    }
}
