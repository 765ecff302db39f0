//! The users a run registers, read from CSV, and the `users` helper that
//! writes a loadgen CSV plus a matching `switchboard extension import` file.
//!
//! Accepted inputs:
//! * `username,password,domain` (the loadgen format; column order free);
//! * `number,name,password` (the `switchboard extension import` format) when
//!   a default domain is given with `--domain`: the number is the username
//!   and every password cell must be filled in.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

/// One SIP account to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub password: String,
    pub domain: String,
}

/// What is wrong with a users file: every bad line, with its number.
#[derive(Debug, PartialEq, Eq)]
pub struct CsvError(pub Vec<(u64, String)>);

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad users CSV:")?;
        for (i, (line, msg)) in self.0.iter().enumerate() {
            if i == 10 {
                return write!(f, "\n  ... and {} more", self.0.len() - 10);
            }
            if *line == 0 {
                write!(f, "\n  {msg}")?;
            } else {
                write!(f, "\n  line {line}: {msg}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for CsvError {}

const FORMATS: &str = "expected the header `username,password,domain`, or \
                       `number,name,password` with --domain";

fn one(line: u64, msg: impl Into<String>) -> CsvError {
    CsvError(vec![(line, msg.into())])
}

/// Characters that would break a SIP header or URI if put there raw.
fn bad_token(s: &str) -> bool {
    s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\"@:;,?".contains(c))
}

/// Reads users from CSV text. `default_domain` fills the domain for the
/// `number,name,password` format (and for an empty domain cell).
pub fn parse_users(input: impl Read, default_domain: Option<&str>) -> Result<Vec<User>, CsvError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| one(1, format!("unreadable header ({e}); {FORMATS}")))?
        .clone();
    let col = |n: &str| header.iter().position(|h| h.eq_ignore_ascii_case(n));
    let user_col = col("username").or(col("number"));
    let (Some(user_col), Some(pw_col)) = (user_col, col("password")) else {
        return Err(one(
            1,
            format!(
                "header is `{}`; {FORMATS}",
                header.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    };
    let domain_col = col("domain");
    if domain_col.is_none() && default_domain.is_none() {
        return Err(one(
            1,
            format!("no `domain` column and no --domain given; {FORMATS}"),
        ));
    }
    if let Some(d) = default_domain {
        if bad_token(d) {
            return Err(one(0, format!("--domain `{d}` is not a valid SIP domain")));
        }
    }
    let mut users = Vec::new();
    let mut problems = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for rec in reader.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push((line, format!("unreadable row: {e}")));
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() != header.len() {
            problems.push((
                line,
                format!("has {} fields, expected {}", rec.len(), header.len()),
            ));
            continue;
        }
        let username = rec.get(user_col).unwrap_or_default();
        let password = rec.get(pw_col).unwrap_or_default();
        let domain = domain_col
            .and_then(|c| rec.get(c))
            .filter(|d| !d.is_empty())
            .or(default_domain)
            .unwrap_or_default();
        let mut errs = Vec::new();
        if bad_token(username) {
            errs.push(format!(
                "username `{username}` is empty or has spaces or one of <>\"@:;,?"
            ));
        }
        if password.is_empty() {
            errs.push(
                "password is empty (the loadgen must know every password; \
                 fill in generated ones from the import output)"
                    .to_owned(),
            );
        } else if password.chars().any(char::is_control) {
            errs.push("password contains control characters".to_owned());
        }
        if bad_token(domain) {
            errs.push(format!("domain `{domain}` is empty or not a SIP domain"));
        }
        if errs.is_empty() {
            if let Some(first) = seen.insert(format!("{username}@{domain}"), line) {
                errs.push(format!("{username}@{domain} is already on line {first}"));
            }
        }
        if errs.is_empty() {
            users.push(User {
                username: username.to_owned(),
                password: password.to_owned(),
                domain: domain.to_owned(),
            });
        } else {
            problems.push((line, errs.join("; ")));
        }
    }
    if !problems.is_empty() {
        return Err(CsvError(problems));
    }
    if users.is_empty() {
        return Err(one(0, "the file has no users after the header"));
    }
    Ok(users)
}

/// Reads a users file from disk.
pub fn read_users(path: &Path, default_domain: Option<&str>) -> anyhow::Result<Vec<User>> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    parse_users(std::io::BufReader::new(file), default_domain)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Extension numbers for `count` users from `start`: 2 to 6 digits each.
pub fn numbers(start: u32, count: u32) -> Result<std::ops::Range<u32>, String> {
    if count == 0 {
        return Err("--count must be at least 1".into());
    }
    let end = start
        .checked_add(count)
        .filter(|e| *e <= 1_000_000)
        .ok_or_else(|| {
            format!(
                "numbers {start}..{} would exceed 6 digits; lower --start or --count",
                u64::from(start) + u64::from(count) - 1
            )
        })?;
    if start < 10 {
        return Err(format!(
            "--start {start} gives 1-digit numbers; extensions have 2 to 6 digits"
        ));
    }
    Ok(start..end)
}

/// A random alphanumeric password of `len` characters from the OS.
pub fn random_password(len: usize) -> std::io::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut out = String::with_capacity(len);
    let mut f = std::fs::File::open("/dev/urandom")?;
    let mut buf = [0u8; 64];
    while out.len() < len {
        f.read_exact(&mut buf)?;
        for b in buf {
            // rejection sampling keeps the distribution uniform
            let limit = 256 - 256 % ALPHABET.len();
            if usize::from(b) < limit && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

/// Writes the loadgen CSV (`username,password,domain`) and, when asked, the
/// `number,name,password` file for `switchboard extension import`.
pub fn write_users(
    users: &[User],
    out: impl Write,
    import_csv: Option<impl Write>,
) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["username", "password", "domain"])?;
    for u in users {
        w.write_record([&u.username, &u.password, &u.domain])?;
    }
    w.flush()?;
    if let Some(imp) = import_csv {
        let mut w = csv::Writer::from_writer(imp);
        w.write_record(["number", "name", "password"])?;
        for u in users {
            w.write_record([
                u.username.as_str(),
                &format!("Load {}", u.username),
                &u.password,
            ])?;
        }
        w.flush()?;
    }
    Ok(())
}

/// `count` users numbered from `start` in `domain`, with random passwords.
pub fn generate(
    count: u32,
    start: u32,
    domain: &str,
    password_len: usize,
) -> anyhow::Result<Vec<User>> {
    let range = numbers(start, count).map_err(anyhow::Error::msg)?;
    if bad_token(domain) {
        anyhow::bail!("--domain `{domain}` is not a valid SIP domain");
    }
    if password_len < 8 {
        anyhow::bail!("--password-len must be at least 8 (switchboard's minimum)");
    }
    range
        .map(|n| {
            Ok(User {
                username: n.to_string(),
                password: random_password(password_len)?,
                domain: domain.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str, d: Option<&str>) -> Result<Vec<User>, CsvError> {
        parse_users(s.as_bytes(), d)
    }

    #[test]
    fn reads_the_loadgen_format_in_any_column_order() {
        let u = parse(
            "domain,username,password\nbench.example, 200000 ,pw-one-1\nother.example,200001,pw,two\n",
            None,
        );
        // a comma in an unquoted password makes a 4-field row
        let err = u.unwrap_err();
        assert_eq!(err.0, vec![(3, "has 4 fields, expected 3".to_owned())]);
        let u = parse(
            "domain,username,password\nbench.example, 200000 ,pw-one-1\nother.example,200001,\"pw,two\"\n",
            None,
        )
        .unwrap();
        assert_eq!(
            u[0],
            User {
                username: "200000".into(),
                password: "pw-one-1".into(),
                domain: "bench.example".into()
            }
        );
        assert_eq!(u[1].password, "pw,two");
        assert_eq!(u[1].domain, "other.example");
    }

    #[test]
    fn reads_the_switchboard_import_format_with_a_domain() {
        let csv = "number,name,password\n101,Alice,correcthorse\n102,Bob,batterystaple\n";
        let err = parse(csv, None).unwrap_err();
        assert!(err.to_string().contains("no `domain` column"), "{err}");
        let u = parse(csv, Some("acme.example")).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].username, "102");
        assert_eq!(u[1].domain, "acme.example");
        let err = parse("number,name,password\n101,Alice,\n", Some("acme.example")).unwrap_err();
        assert!(
            err.to_string().contains("line 2: password is empty"),
            "{err}"
        );
    }

    #[test]
    fn reports_every_bad_line() {
        let err = parse(
            "username,password,domain\nok,secret99,a.example\nbad user,pw123456,a.example\n\
             x,pw123456,\nok,other999,a.example\n",
            None,
        )
        .unwrap_err();
        let lines: Vec<u64> = err.0.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3, 4, 5], "{err}");
        assert!(err.0[2].1.contains("already on line 2"));
        let err = parse("user,pass\n1,2\n", None).unwrap_err();
        assert!(
            err.to_string().contains("line 1: header is `user,pass`"),
            "{err}"
        );
        let err = parse("username,password,domain\n", None).unwrap_err();
        assert!(err.to_string().contains("no users"), "{err}");
    }

    #[test]
    fn numbers_stay_within_six_digits() {
        assert_eq!(numbers(200_000, 10_000), Ok(200_000..210_000));
        assert_eq!(numbers(990_000, 10_000), Ok(990_000..1_000_000));
        assert!(numbers(990_001, 10_000).unwrap_err().contains("6 digits"));
        assert!(numbers(5, 3).is_err());
        assert!(numbers(100, 0).is_err());
    }

    #[test]
    fn generated_files_round_trip() {
        let users = generate(3, 200_000, "bench.example", 16).unwrap();
        assert!(users.iter().all(|u| u.password.len() == 16));
        assert_ne!(users[0].password, users[1].password);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_users(&users, &mut a, Some(&mut b)).unwrap();
        assert_eq!(parse_users(a.as_slice(), None).unwrap(), users);
        let imp = String::from_utf8(b).unwrap();
        assert!(imp.starts_with("number,name,password\n200000,Load 200000,"));
        assert_eq!(
            parse_users(imp.as_bytes(), Some("bench.example")).unwrap(),
            users
        );
        assert!(generate(3, 200_000, "bench.example", 4).is_err());
    }
}
