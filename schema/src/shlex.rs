//! Splitting a command string into words the way Docker does for `command:` and
//! `entrypoint:` strings (the `google/shlex` rules: quotes, backslash escapes, `#` comments).

/// Why a string could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShlexError {
    /// A quote was opened and never closed.
    #[error("EOF found when expecting closing quote")]
    UnclosedQuote,
    /// The string ended right after a backslash.
    #[error("EOF found after escape character")]
    TrailingEscape,
}

#[derive(PartialEq)]
enum State {
    Start,
    Word,
    Escaping,
    EscapingQuoted,
    Quoting,
    QuotingEscaping,
    Comment,
}

/// Splits `s` into words.
pub fn split(s: &str) -> Result<Vec<String>, ShlexError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = State::Start;
    for c in s.chars() {
        state = match state {
            State::Start => match c {
                ' ' | '\t' | '\r' | '\n' => State::Start,
                '"' => State::QuotingEscaping,
                '\'' => State::Quoting,
                '\\' => State::Escaping,
                '#' => State::Comment,
                c => {
                    word.push(c);
                    State::Word
                }
            },
            State::Word => match c {
                ' ' | '\t' | '\r' | '\n' => {
                    words.push(std::mem::take(&mut word));
                    State::Start
                }
                '"' => State::QuotingEscaping,
                '\'' => State::Quoting,
                '\\' => State::Escaping,
                c => {
                    word.push(c);
                    State::Word
                }
            },
            State::Escaping => {
                word.push(c);
                State::Word
            }
            State::EscapingQuoted => {
                word.push(c);
                State::QuotingEscaping
            }
            State::QuotingEscaping => match c {
                '"' => State::Word,
                '\\' => State::EscapingQuoted,
                c => {
                    word.push(c);
                    State::QuotingEscaping
                }
            },
            State::Quoting => match c {
                '\'' => State::Word,
                c => {
                    word.push(c);
                    State::Quoting
                }
            },
            State::Comment => match c {
                '\n' => State::Start,
                _ => State::Comment,
            },
        };
    }
    match state {
        State::Quoting | State::QuotingEscaping => return Err(ShlexError::UnclosedQuote),
        State::Escaping | State::EscapingQuoted => return Err(ShlexError::TrailingEscape),
        State::Word => words.push(word),
        _ => {}
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_google_shlex() {
        assert_eq!(
            split("bundle exec thin -p 3000").unwrap(),
            ["bundle", "exec", "thin", "-p", "3000"]
        );
        assert_eq!(split(r#"sh -c "echo 'a b' \"q\"""#).unwrap(), ["sh", "-c", "echo 'a b' \"q\""]);
        assert_eq!(split("a 'b c'd e\\ f").unwrap(), ["a", "b cd", "e f"]);
        assert_eq!(split("a # comment").unwrap(), ["a"]);
        assert_eq!(split("a#b").unwrap(), ["a#b"]);
        assert_eq!(split("'a").unwrap_err(), ShlexError::UnclosedQuote);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
    }
}
