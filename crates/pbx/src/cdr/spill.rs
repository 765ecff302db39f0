//! The spill file: records the writer could not insert before it stopped,
//! one JSON object per line, re-read at the next start-up.
//!
//! Written by hand (the records are flat: strings, one number, nulls) so the
//! crate needs no JSON dependency. The file is replaced atomically (a
//! temporary file, fsync, rename).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use store::NewCdr;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn time_text(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// One record as one line of JSON (no newline).
pub fn encode(c: &NewCdr) -> String {
    let opt = |v: Option<String>| v;
    let fields: [(&str, Option<String>); 17] = [
        ("id", Some(c.id.to_string())),
        ("tenant_id", Some(c.tenant_id.to_string())),
        ("call_id", Some(c.call_id.clone())),
        ("direction", Some(c.direction.to_string())),
        ("caller", Some(c.caller.clone())),
        ("callee", Some(c.callee.clone())),
        ("dialled", Some(c.dialled.clone())),
        ("trunk_id", opt(c.trunk_id.map(|t| t.to_string()))),
        ("started_at", Some(time_text(c.started_at))),
        ("answered_at", c.answered_at.map(time_text)),
        ("ended_at", Some(time_text(c.ended_at))),
        ("duration_secs", Some(c.duration_secs.to_string())),
        ("disposition", Some(c.disposition.to_string())),
        ("hangup_cause", Some(c.hangup_cause.clone())),
        ("hangup_by", Some(c.hangup_by.to_string())),
        ("transferred_by", c.transferred_by.clone()),
        ("transferred_to", c.transferred_to.clone()),
    ];
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        quote(&mut out, k);
        out.push(':');
        match v {
            None => out.push_str("null"),
            Some(v) if *k == "duration_secs" => out.push_str(v),
            Some(v) => quote(&mut out, v),
        }
    }
    out.push('}');
    out
}

/// Parses a flat object of strings, integers and nulls.
fn parse_flat(line: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut chars = line.trim().chars().peekable();
    let mut out = Vec::new();
    let skip_ws = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
    };
    let string = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<String> {
        if it.next()? != '"' {
            return None;
        }
        let mut s = String::new();
        loop {
            match it.next()? {
                '"' => return Some(s),
                '\\' => match it.next()? {
                    '"' => s.push('"'),
                    '\\' => s.push('\\'),
                    '/' => s.push('/'),
                    'n' => s.push('\n'),
                    'r' => s.push('\r'),
                    't' => s.push('\t'),
                    'u' => {
                        let hex: String = (0..4).filter_map(|_| it.next()).collect();
                        s.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    _ => return None,
                },
                c => s.push(c),
            }
        }
    };
    skip_ws(&mut chars);
    if chars.next()? != '{' {
        return None;
    }
    loop {
        skip_ws(&mut chars);
        if chars.peek() == Some(&'}') {
            chars.next();
            break;
        }
        let key = string(&mut chars)?;
        skip_ws(&mut chars);
        if chars.next()? != ':' {
            return None;
        }
        skip_ws(&mut chars);
        let value = match chars.peek()? {
            '"' => Some(string(&mut chars)?),
            'n' => {
                let w: String = (0..4).filter_map(|_| chars.next()).collect();
                (w == "null").then_some(())?;
                None
            }
            _ => {
                let mut d = String::new();
                while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                    d.push(chars.next()?);
                }
                if d.is_empty() {
                    return None;
                }
                Some(d)
            }
        };
        out.push((key, value));
        skip_ws(&mut chars);
        match chars.next()? {
            ',' => continue,
            '}' => break,
            _ => return None,
        }
    }
    Some(out)
}

/// One line back into a record.
pub fn decode(line: &str) -> Option<NewCdr> {
    let fields = parse_flat(line)?;
    let get = |k: &str| -> Option<Option<&str>> {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_deref())
    };
    let req = |k: &str| get(k).flatten();
    let time = |s: &str| OffsetDateTime::parse(s, &Rfc3339).ok();
    Some(NewCdr {
        id: req("id")?.parse().ok()?,
        tenant_id: req("tenant_id")?.parse().ok()?,
        call_id: req("call_id")?.to_owned(),
        direction: req("direction")?.parse().ok()?,
        caller: req("caller")?.to_owned(),
        callee: req("callee")?.to_owned(),
        dialled: req("dialled")?.to_owned(),
        trunk_id: match get("trunk_id")? {
            Some(t) => Some(t.parse().ok()?),
            None => None,
        },
        started_at: time(req("started_at")?)?,
        answered_at: match get("answered_at")? {
            Some(t) => Some(time(t)?),
            None => None,
        },
        ended_at: time(req("ended_at")?)?,
        duration_secs: req("duration_secs")?.parse().ok()?,
        disposition: req("disposition")?.parse().ok()?,
        hangup_cause: req("hangup_cause")?.to_owned(),
        hangup_by: req("hangup_by")?.parse().ok()?,
        transferred_by: get("transferred_by")?.map(str::to_owned),
        transferred_to: get("transferred_to")?.map(str::to_owned),
    })
}

/// Replaces the file at `path` with `records` (removes it when empty).
pub fn store(path: &Path, records: &[NewCdr]) -> io::Result<()> {
    if records.is_empty() {
        return match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        let mut text = String::new();
        for r in records {
            text.push_str(&encode(r));
            text.push('\n');
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Reads the records of `path` (none if it does not exist). Lines that
/// cannot be read are logged and skipped; their count is returned.
pub fn load(path: &Path) -> io::Result<(Vec<NewCdr>, usize)> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let mut bad = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match decode(line) {
            Some(r) => out.push(r),
            None => {
                bad += 1;
                tracing::error!(path = %path.display(), line = i + 1, text = line, "unreadable CDR in the spill file");
            }
        }
    }
    Ok((out, bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{CdrId, Direction, Disposition, HangupBy, TenantId, TrunkId};

    fn sample() -> NewCdr {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        NewCdr {
            id: CdrId::new(),
            tenant_id: TenantId::new(),
            call_id: "a\"b\\c\nd\u{1}é@host".into(),
            direction: Direction::Outbound,
            caller: "1001".into(),
            callee: "+447400123456".into(),
            dialled: "07400 123456".into(),
            trunk_id: Some(TrunkId::new()),
            started_at: t,
            answered_at: None,
            ended_at: t + time::Duration::milliseconds(61_250),
            duration_secs: 61,
            disposition: Disposition::NoAnswer,
            hangup_cause: "no answer".into(),
            hangup_by: HangupBy::Caller,
            transferred_by: None,
            transferred_to: Some("1002".into()),
        }
    }

    #[test]
    fn lines_round_trip() {
        let c = sample();
        let line = encode(&c);
        assert!(!line.contains('\n'));
        assert_eq!(decode(&line), Some(c));
        assert_eq!(decode("{\"id\":1}"), None);
        assert_eq!(decode("not json"), None);
    }

    #[test]
    fn file_round_trip_skips_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill").join("cdr.jsonl");
        let records = vec![sample(), sample()];
        store(&path, &records).unwrap();
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("garbage\n");
        fs::write(&path, text).unwrap();
        let (back, bad) = load(&path).unwrap();
        assert_eq!(back, records);
        assert_eq!(bad, 1);
        store(&path, &[]).unwrap();
        assert!(!path.exists());
        assert_eq!(load(&path).unwrap().0, Vec::new());
    }
}
