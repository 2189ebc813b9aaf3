//! Go's string conversions, reproduced where Docker's output or error messages depend on
//! them: `%#v` quoting, `strconv.Atoi`/`ParseFloat` errors, `time.Duration` printing and
//! parsing, and `fmt.Sprint` of YAML scalars.

use crate::value::Value;

/// Go's `%#v` (and `%q`) of a string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `strconv.Atoi`, with Go's error text.
pub fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {}: invalid syntax", quote(s)));
    }
    s.parse::<i64>().map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", quote(s)))
}

/// `strconv.ParseFloat(s, 64)`, with Go's error text.
pub fn parse_float(s: &str) -> Result<f64, String> {
    crate::yaml::go_parse_float(s)
        .ok_or_else(|| format!("strconv.ParseFloat: parsing {}: invalid syntax", quote(s)))
}

/// `fmt.Sprint` of a scalar YAML value (maps and lists print Go's `map[...]`/`[...]` form).
pub fn sprint(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => crate::yaml::format_float(*f, false),
        Value::Str(s) => s.clone(),
        Value::Seq(items) => {
            format!("[{}]", items.iter().map(sprint).collect::<Vec<_>>().join(" "))
        }
        Value::Map(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> =
                keys.iter().map(|k| format!("{k}:{}", sprint(&m[k.as_str()]))).collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::AnyMap(pairs) => {
            let parts: Vec<String> =
                pairs.iter().map(|(k, v)| format!("{}:{}", sprint(k), sprint(v))).collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go's `time.Duration.String()` for a signed count of nanoseconds: `1m0s`, `1.5s`,
/// `500ms`, `0s`.
pub fn format_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: the largest unit that keeps the value >= 1.
        let (unit, scale) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&fraction(u, scale));
        out.push_str(unit);
    } else {
        let h = u / 3_600_000_000_000;
        let rem = u % 3_600_000_000_000;
        let m = rem / 60_000_000_000;
        let s = rem % 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&fraction(s, 1_000_000_000));
        out.push('s');
    }
    if neg { format!("-{out}") } else { out }
}

fn fraction(v: u64, scale: u64) -> String {
    let whole = v / scale;
    let frac = v % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Go's `time.ParseDuration`, in nanoseconds, with Go's error text.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    crate::validate::parse_go_duration(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(format_duration(60_000_000_000), "1m0s");
        assert_eq!(format_duration(120_000_000_000), "2m0s");
        assert_eq!(format_duration(10_000_000_000), "10s");
        assert_eq!(format_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(format_duration(1_500_000_000), "1.5s");
        assert_eq!(format_duration(500_000_000), "500ms");
        assert_eq!(format_duration(1_000), "1µs");
        assert_eq!(format_duration(1_500), "1.5µs");
        assert_eq!(format_duration(-90_000_000_000), "-1m30s");
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn atoi_errors_read_like_go() {
        assert_eq!(atoi("two"), Err("strconv.Atoi: parsing \"two\": invalid syntax".into()));
        assert_eq!(atoi("-3"), Ok(-3));
    }
}
