//! `env_file:` contents, parsed as Docker's `opts.ParseEnvFile` parses them.

/// Parses an env file into `KEY=VALUE` / `KEY` lines. A line with only a name takes its value
/// from `lookup` (the environment) and is dropped when the name is not set there.
pub fn parse(
    filename: &str,
    data: &[u8],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let text = data;
    for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(line) = std::str::from_utf8(raw) else {
            return Err(format!(
                "env file {filename} contains invalid utf8 bytes at line {}: {:?}",
                n + 1,
                raw
            ));
        };
        let line = if n == 0 { line.trim_start_matches('\u{feff}') } else { line };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (var, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        let var = var.trim_start_matches([' ', '\t']);
        if var.contains([' ', '\t']) {
            return Err(format!(
                "poorly formatted environment: variable '{var}' contains whitespaces"
            ));
        }
        if var.is_empty() {
            return Err(format!("poorly formatted environment: no variable name on line '{line}'"));
        }
        match value {
            Some(v) => out.push(format!("{var}={v}")),
            None => {
                if let Some(v) = lookup(line) {
                    out.push(format!("{}={v}", line.trim()));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_parse_like_docker() {
        let lookup = |k: &str| (k == "SET").then(|| "from-env".to_owned());
        let data = b"# comment\nA=1\n  B = x\nSET\nUNSET\nC=a=b\n";
        assert_eq!(
            parse("f", data, &lookup),
            Err("poorly formatted environment: variable 'B ' contains whitespaces".into())
        );
        let data = b"A=1\nSET\nUNSET\nC=a=b\r\n";
        assert_eq!(parse("f", data, &lookup).unwrap(), ["A=1", "SET=from-env", "C=a=b"]);
    }
}
