//! The draft-04 keyword values the compose schemas use, shared by the runtime validator and
//! by the build script that compiles `schema/json/` into static tables (`build.rs`).

/// A JSON type name, as schemas spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonType {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    // Used by the schema compiler, which runs in the build script and the tests.
    #[allow(dead_code)]
    pub(crate) fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "null" => Self::Null,
            "boolean" => Self::Boolean,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "string" => Self::String,
            "array" => Self::Array,
            "object" => Self::Object,
            other => return Err(format!("unknown type {other:?}")),
        })
    }

    /// The type's bit in a set of types.
    pub(crate) const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The formats Docker registers with its validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Go's `time.ParseDuration` accepts it.
    Duration,
    /// `nat.ParsePortSpec` accepts it.
    Ports,
    /// Registered, but accepts everything.
    Expose,
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Duration => "duration",
            Self::Ports => "ports",
            Self::Expose => "expose",
        }
    }
}

/// The property-name patterns the schemas use, as Go's regexp reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `^[a-zA-Z0-9._-]+$`
    ResourceName,
    /// `^[a-z]+$`
    LowerWord,
    /// `^x-`
    Extension,
    /// `^.+$`: non-empty, no newline.
    WholeLine,
    /// `.+`: at least one character other than a newline.
    AnyChar,
}

impl Pattern {
    // Used by the schema compiler, which runs in the build script and the tests.
    #[allow(dead_code)]
    pub(crate) fn parse(source: &str) -> Result<Self, String> {
        Ok(match source {
            "^[a-zA-Z0-9._-]+$" => Self::ResourceName,
            "^[a-z]+$" => Self::LowerWord,
            "^x-" => Self::Extension,
            "^.+$" => Self::WholeLine,
            ".+" => Self::AnyChar,
            other => return Err(format!("unsupported pattern {other:?}")),
        })
    }

    pub(crate) fn matches(self, key: &str) -> bool {
        match self {
            Self::ResourceName => {
                !key.is_empty()
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            }
            Self::LowerWord => !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase()),
            Self::Extension => key.starts_with("x-"),
            Self::WholeLine => !key.is_empty() && !key.contains('\n'),
            Self::AnyChar => key.chars().any(|c| c != '\n'),
        }
    }
}

/// `additionalProperties`: absent, or a boolean (the schemas never use a schema there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Additional {
    Unspecified,
    Allowed,
    Forbidden,
}

/// The order of a node's properties: by length, then byte by byte (cheap for short names).
// Used by the schema compiler (build script and tests); `Node::property` searches with it.
#[allow(dead_code)]
pub(crate) fn name_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.bytes().cmp(b.bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_read_like_go_regexps() {
        assert!(Pattern::ResourceName.matches("web_1.a-b"));
        assert!(!Pattern::ResourceName.matches("web app"));
        assert!(!Pattern::ResourceName.matches(""));
        assert!(Pattern::LowerWord.matches("nofile"));
        assert!(!Pattern::LowerWord.matches("NOFILE"));
        assert!(Pattern::Extension.matches("x-common"));
        assert!(!Pattern::Extension.matches("X-common"));
        assert!(Pattern::WholeLine.matches("a b"));
        assert!(!Pattern::WholeLine.matches("a\nb"));
        assert!(!Pattern::WholeLine.matches(""));
        assert!(Pattern::AnyChar.matches("a\nb"));
        assert!(!Pattern::AnyChar.matches("\n"));
    }
}
