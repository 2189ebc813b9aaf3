//! How yaml.v3 gives a scalar its type (`resolve.go`), and how Go prints floats.

/// A resolved scalar.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A plain timestamp, already in Go's `time.Time` print form.
    Timestamp(String),
}

const STR: &str = "tag:yaml.org,2002:str";
const INT: &str = "tag:yaml.org,2002:int";
const FLOAT: &str = "tag:yaml.org,2002:float";
const BOOL: &str = "tag:yaml.org,2002:bool";
const NULL: &str = "tag:yaml.org,2002:null";
const BINARY: &str = "tag:yaml.org,2002:binary";
const TIMESTAMP: &str = "tag:yaml.org,2002:timestamp";

fn short(tag: &str) -> String {
    match tag.strip_prefix("tag:yaml.org,2002:") {
        Some(rest) => format!("!!{rest}"),
        None => tag.to_owned(),
    }
}

/// Resolves a scalar. `tag` is None for a plain scalar without a tag.
pub(crate) fn resolve(tag: Option<&str>, s: &str) -> Result<Scalar, String> {
    let tag = if tag == Some("!") { Some(STR) } else { tag };
    let expanded;
    let tag = match tag {
        Some(t) if t.starts_with("!!") => {
            expanded = format!("tag:yaml.org,2002:{}", &t[2..]);
            Some(expanded.as_str())
        }
        t => t,
    };
    match tag {
        None => Ok(plain(s)),
        Some(STR) | Some(BINARY) => Ok(Scalar::Str(s.to_owned())),
        Some(t @ (INT | FLOAT | BOOL | NULL | TIMESTAMP)) => {
            let r = plain(s);
            let ok = match (&r, t) {
                (Scalar::Int(_), INT) | (Scalar::Float(_), FLOAT) => true,
                (Scalar::Bool(_), BOOL) | (Scalar::Null, NULL) => true,
                (Scalar::Timestamp(_), TIMESTAMP) => true,
                (Scalar::Int(i), FLOAT) => return Ok(Scalar::Float(*i as f64)),
                _ => false,
            };
            if ok {
                Ok(r)
            } else {
                let got = match r {
                    Scalar::Null => NULL,
                    Scalar::Bool(_) => BOOL,
                    Scalar::Int(_) => INT,
                    Scalar::Float(_) => FLOAT,
                    Scalar::Str(_) => STR,
                    Scalar::Timestamp(_) => TIMESTAMP,
                };
                Err(format!("cannot decode {} `{}` as a {}", short(got), s, short(t)))
            }
        }
        // Unknown (local) tags are kept as the plain value's type, as yaml.v3 does for
        // tags it cannot resolve: the value is decoded as a string.
        Some(_) => Ok(Scalar::Str(s.to_owned())),
    }
}

fn plain(s: &str) -> Scalar {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = s.as_bytes()[0];
    match first {
        b'.' => {
            if let Some(f) = go_parse_float(s) {
                return Scalar::Float(f);
            }
        }
        b'0'..=b'9' | b'+' | b'-' => {
            if let Some(n) = number(s) {
                return n;
            }
        }
        _ => {}
    }
    Scalar::Str(s.to_owned())
}

fn number(s: &str) -> Option<Scalar> {
    if let Some(t) = timestamp(s) {
        return Some(Scalar::Timestamp(t));
    }
    let p: String = s.chars().filter(|&c| c != '_').collect();
    if let Some(i) = go_parse_int(&p) {
        return Some(Scalar::Int(i));
    }
    if let Some(u) = go_parse_uint(&p) {
        return Some(Scalar::Float(u as f64));
    }
    if yaml_style_float(&p)
        && let Some(f) = go_parse_float(&p)
    {
        return Some(Scalar::Float(f));
    }
    let (neg, body) = match p.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, p.strip_prefix('+').unwrap_or(&p)),
    };
    let radix_digits =
        body.strip_prefix("0b").map(|d| (2, d)).or(body.strip_prefix("0o").map(|d| (8, d)));
    if let Some((radix, digits)) = radix_digits
        && !digits.is_empty()
        && let Ok(v) = i64::from_str_radix(digits, radix)
    {
        return Some(Scalar::Int(if neg { -v } else { v }));
    }
    None
}

/// yaml.v3 decodes `2001-12-14`-like plain scalars as timestamps (`time.Time`); Docker then
/// prints them with Go's `Time.String()`. Returns that form.
fn timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
        return None;
    }
    let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (hh, mm, ss, zone) = match rest {
        None => (0, 0, 0, "+0000 UTC".to_owned()),
        Some(t) => {
            let (clock, zone) = match t.strip_suffix('Z') {
                Some(c) => (c, "+0000 UTC".to_owned()),
                None => (t, "+0000 UTC".to_owned()),
            };
            let mut c = clock.split(':');
            let hh: u32 = c.next()?.parse().ok()?;
            let mm: u32 = c.next()?.parse().ok()?;
            let ss: u32 = c.next()?.split('.').next()?.parse().ok()?;
            if c.next().is_some() {
                return None;
            }
            (hh, mm, ss, zone)
        }
    };
    Some(format!("{y}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} {zone}"))
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = radix_of(body)?;
    let mag = u128::from_str_radix(digits, radix).ok()?;
    if neg {
        let v = i128::try_from(mag).ok()?.checked_neg()?;
        i64::try_from(v).ok()
    } else {
        i64::try_from(mag).ok()
    }
}

fn go_parse_uint(s: &str) -> Option<u64> {
    let (radix, digits) = radix_of(s)?;
    u64::from_str_radix(digits, radix).ok()
}

fn radix_of(body: &str) -> Option<(u32, &str)> {
    let lower = body.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &body[2..]),
        Some("0o") => (8, &body[2..]),
        Some("0b") => (2, &body[2..]),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..]),
        _ => (10, body),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    Some((radix, digits))
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal forms.
pub fn go_parse_float(s: &str) -> Option<f64> {
    let t = s.strip_prefix('+').unwrap_or(s);
    let lower = t.trim_start_matches('-').to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return t.parse::<f64>().ok();
    }
    if !t
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+' | b'_'))
    {
        return None;
    }
    let cleaned: String = t.chars().filter(|&c| c != '_').collect();
    cleaned.parse::<f64>().ok()
}

/// Go's `strconv.FormatFloat(f, 'g', -1, bits)`, as `fmt.Sprint` and yaml.v3 print floats.
pub fn format_float(f: f64, bits32: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Shortest round-trip digits, in scientific form: "d.ddde<exp>".
    let sci = if bits32 { format!("{:e}", f as f32) } else { format!("{f:e}") };
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
        return out;
    }
    let nd = digits.len() as i32;
    let dp = exp + 1;
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        for _ in 0..(dp - nd) {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_like_yaml_v3() {
        assert_eq!(plain("0440"), Scalar::Int(288));
        assert_eq!(plain("0o17"), Scalar::Int(15));
        assert_eq!(plain("0x1F"), Scalar::Int(31));
        assert_eq!(plain("1_000"), Scalar::Int(1000));
        assert_eq!(plain("yes"), Scalar::Str("yes".into()));
        assert_eq!(plain("on"), Scalar::Str("on".into()));
        assert_eq!(plain("1.5"), Scalar::Float(1.5));
        assert_eq!(plain(".5"), Scalar::Float(0.5));
        assert_eq!(plain("1e3"), Scalar::Float(1000.0));
        assert_eq!(plain("2020-01-01"), Scalar::Timestamp("2020-01-01 00:00:00 +0000 UTC".into()));
        assert_eq!(plain("1:20"), Scalar::Str("1:20".into()));
        assert_eq!(plain("-"), Scalar::Str("-".into()));
        assert_eq!(plain("0b101"), Scalar::Int(5));
        assert_eq!(plain("089"), Scalar::Float(89.0));
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(format_float(1.0, false), "1");
        assert_eq!(format_float(1e6, false), "1e+06");
        assert_eq!(format_float(123456.0, false), "123456");
        assert_eq!(format_float(0.0001, false), "0.0001");
        assert_eq!(format_float(0.00001, false), "1e-05");
        assert_eq!(format_float(0.3, true), "0.3");
        assert_eq!(format_float(1.5e20, false), "1.5e+20");
        assert_eq!(format_float(-2.5, false), "-2.5");
    }
}
