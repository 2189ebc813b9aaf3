//! Short-syntax volumes (`./data:/data:ro`) read as Docker's compose loader reads them.

use crate::model::VolumeMount;

const PROPAGATIONS: &[&str] = &["private", "rprivate", "shared", "rshared", "slave", "rslave"];

/// Parses a short volume spec into a long-syntax mount.
pub fn parse_volume(spec: &str) -> Result<VolumeMount, String> {
    let mut v = VolumeMount::default();
    let n = spec.chars().count();
    if n == 0 {
        return Err("invalid empty volume spec".into());
    }
    if n <= 2 {
        v.target = spec.to_owned();
        v.kind = "volume".into();
        return Ok(v);
    }
    let mut buffer = String::new();
    let chars: Vec<char> = spec.chars().chain(std::iter::once('\0')).collect();
    for &c in &chars {
        let windows_drive =
            c == ':' && buffer.chars().count() == 1 && buffer.chars().all(char::is_alphabetic);
        if windows_drive {
            buffer.push(c);
        } else if c == ':' || c == '\0' {
            if let Err(e) = populate(c, &buffer, &mut v) {
                return Err(format!("invalid spec: {spec}: {e}"));
            }
            buffer.clear();
        } else {
            buffer.push(c);
        }
    }
    populate_type(&mut v);
    Ok(v)
}

fn populate(c: char, buffer: &str, v: &mut VolumeMount) -> Result<(), &'static str> {
    if buffer.is_empty() {
        return Err("empty section between colons");
    }
    if v.source.is_empty() {
        v.source = buffer.to_owned();
        return Ok(());
    }
    if v.target.is_empty() {
        v.target = buffer.to_owned();
        return Ok(());
    }
    if c == ':' {
        return Err("too many colons");
    }
    for option in buffer.split(',') {
        match option {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "nocopy" => v.volume_nocopy = Some(true),
            o if PROPAGATIONS.contains(&o) => v.bind = Some(o.to_owned()),
            _ => {}
        }
    }
    Ok(())
}

fn populate_type(v: &mut VolumeMount) {
    if v.target.is_empty() {
        v.target = std::mem::take(&mut v.source);
        v.kind = "volume".into();
    } else if is_file_path(&v.source) {
        v.kind = "bind".into();
    } else {
        v.kind = "volume".into();
    }
}

fn is_file_path(s: &str) -> bool {
    if s == "." || s == ".." {
        return true;
    }
    if s.starts_with("\\\\") {
        return true;
    }
    let mut chars = s.chars();
    match chars.next() {
        None => false,
        Some('.' | '/' | '~') => true,
        Some(first) => chars.next() == Some(':') && first.is_alphabetic(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_volumes_parse_like_docker() {
        let v = parse_volume("./data:/data:ro").unwrap();
        assert_eq!(
            (v.kind.as_str(), v.source.as_str(), v.target.as_str(), v.read_only),
            ("bind", "./data", "/data", true)
        );
        let v = parse_volume("/var/lib/mysql").unwrap();
        assert_eq!(
            (v.kind.as_str(), v.source.as_str(), v.target.as_str()),
            ("volume", "", "/var/lib/mysql")
        );
        let v = parse_volume("data:/data:nocopy").unwrap();
        assert_eq!(v.volume_nocopy, Some(true));
        assert_eq!(
            parse_volume(":/media/").unwrap_err(),
            "invalid spec: :/media/: empty section between colons"
        );
        assert_eq!(
            parse_volume("ab:cd:ro:x").unwrap_err(),
            "invalid spec: ab:cd:ro:x: too many colons"
        );
        let v = parse_volume("C:\\data:/data").unwrap();
        assert_eq!(v.source, "C:\\data");
    }
}
