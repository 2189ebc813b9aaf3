//! Go's `time.ParseDuration`, byte for byte: Docker checks the `duration` format with it and
//! converts durations with it, so its grammar (and its error messages) are the contract.
//!
//! Grammar: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or a bare `0`. Units: `ns`, `us`, `µs`
//! (micro sign or Greek mu), `ms`, `s`, `m`, `h`. There are no days.

use std::fmt::Write as _;

/// Why a duration string was rejected; the text is Go's error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

const NANOS_PER_UNIT: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

const LIMIT: u64 = 1 << 63;

/// Parses a Go duration into signed nanoseconds, exactly as `time.ParseDuration` does.
pub fn parse_go_duration(text: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError(format!("time: invalid duration {}", go_quote(text)));
    let mut rest = text.as_bytes();
    let mut negative = false;
    if let Some((&sign @ (b'-' | b'+'), tail)) = rest.split_first() {
        negative = sign == b'-';
        rest = tail;
    }
    if rest == b"0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (value, tail) = parse_component(rest, text)?;
        rest = tail;
        total = total.wrapping_add(value);
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        // Go negates the unsigned total; 1<<63 becomes the minimum duration.
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// One `<number><unit>` component: its value in nanoseconds, and the unparsed rest.
fn parse_component<'a>(input: &'a [u8], orig: &str) -> Result<(u64, &'a [u8]), DurationError> {
    let invalid = || DurationError(format!("time: invalid duration {}", go_quote(orig)));
    if !(input[0] == b'.' || input[0].is_ascii_digit()) {
        return Err(invalid());
    }
    let (whole, consumed, mut rest) = leading_int(input).ok_or_else(invalid)?;
    let mut fraction = 0u64;
    let mut scale = 1f64;
    let mut has_fraction_digits = false;
    if rest.first() == Some(&b'.') {
        let (f, s, used, tail) = leading_fraction(&rest[1..]);
        (fraction, scale, has_fraction_digits, rest) = (f, s, used > 0, tail);
    }
    if consumed == 0 && !has_fraction_digits {
        return Err(invalid());
    }
    let unit_len = rest.iter().position(|&c| c == b'.' || c.is_ascii_digit()).unwrap_or(rest.len());
    if unit_len == 0 {
        return Err(DurationError(format!("time: missing unit in duration {}", go_quote(orig))));
    }
    let unit_bytes = &rest[..unit_len];
    let unit_name = String::from_utf8_lossy(unit_bytes);
    let Some(&(_, unit)) = NANOS_PER_UNIT.iter().find(|(name, _)| name.as_bytes() == unit_bytes)
    else {
        return Err(DurationError(format!(
            "time: unknown unit {} in duration {}",
            go_quote(&unit_name),
            go_quote(orig)
        )));
    };
    if whole > LIMIT / unit {
        return Err(invalid());
    }
    let mut value = whole * unit;
    if fraction > 0 {
        // Go computes the fractional part in float64, truncating toward zero.
        value += (fraction as f64 * (unit as f64 / scale)) as u64;
        if value > LIMIT {
            return Err(invalid());
        }
    }
    Ok((value, &rest[unit_len..]))
}

/// Go's `leadingInt`: the leading digits as a number, how many bytes they took, and the rest;
/// `None` on overflow.
fn leading_int(input: &[u8]) -> Option<(u64, usize, &[u8])> {
    let mut value: u64 = 0;
    let mut used = 0;
    for &c in input {
        if !c.is_ascii_digit() {
            break;
        }
        if value > LIMIT / 10 {
            return None;
        }
        value = value * 10 + u64::from(c - b'0');
        if value > LIMIT {
            return None;
        }
        used += 1;
    }
    Some((value, used, &input[used..]))
}

/// Go's `leadingFraction`: digits after the point, accumulated until they would overflow.
fn leading_fraction(input: &[u8]) -> (u64, f64, usize, &[u8]) {
    let mut value: u64 = 0;
    let mut scale = 1f64;
    let mut overflow = false;
    let mut used = 0;
    for &c in input {
        if !c.is_ascii_digit() {
            break;
        }
        used += 1;
        if overflow {
            continue;
        }
        if value > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let next = value * 10 + u64::from(c - b'0');
        if next > LIMIT {
            overflow = true;
            continue;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale, used, &input[used..])
}

/// Go's `time.quote`: double quotes, with `"` and `\` escaped and every byte of a non-ASCII
/// or control character written as `\xNN`.
fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if (c as u32) >= 0x80 || c < ' ' {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{byte:02x}");
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;

    #[test]
    fn accepts_go_examples() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("5s", 5 * SECOND),
            ("30s", 30 * SECOND),
            ("1478s", 1478 * SECOND),
            ("-5s", -5 * SECOND),
            ("+5s", 5 * SECOND),
            ("-0s", 0),
            ("5.0s", 5 * SECOND),
            ("5.6s", 5 * SECOND + 600_000_000),
            ("5.s", 5 * SECOND),
            (".5s", SECOND / 2),
            ("1.004s", SECOND + 4_000_000),
            ("100.00100s", 100 * SECOND + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12\u{b5}s", 12_000),
            ("12\u{3bc}s", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * SECOND),
            ("15m", 15 * 60 * SECOND),
            ("16h", 16 * 3600 * SECOND),
            ("3h30m", (3 * 3600 + 30 * 60) * SECOND),
            ("10.5s4m", 4 * 60 * SECOND + 10 * SECOND + SECOND / 2),
            ("-2m3.4s", -(2 * 60 * SECOND + 3 * SECOND + 400_000_000)),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("39h9m14.425s", 140_954_425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 1_200_000_000_000),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036.854775807s", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("0.100000000000000000000h", 360 * SECOND),
            ("0.830103483285477580700h", 2_988_372_539_827),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_duration(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for text in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "1.5d",
            "3000000h",
            "1w",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "-9223372036854775809ns",
            "1 s",
            " 1s",
            "1s ",
            "1S",
            "abc",
            "1e3s",
            "0x10s",
            "--1s",
        ] {
            assert!(parse_go_duration(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn errors_read_like_go() {
        assert_eq!(
            parse_go_duration("1d").unwrap_err().to_string(),
            r#"time: unknown unit "d" in duration "1d""#
        );
        assert_eq!(
            parse_go_duration("3").unwrap_err().to_string(),
            r#"time: missing unit in duration "3""#
        );
        assert_eq!(parse_go_duration("").unwrap_err().to_string(), r#"time: invalid duration """#);
        assert_eq!(
            parse_go_duration("1\u{e9}").unwrap_err().to_string(),
            r#"time: unknown unit "\xc3\xa9" in duration "1\xc3\xa9""#
        );
        assert_eq!(
            parse_go_duration("x\"").unwrap_err().to_string(),
            r#"time: invalid duration "x\"""#
        );
    }
}
