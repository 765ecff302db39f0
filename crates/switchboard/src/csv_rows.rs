//! Reading an extension import CSV: every row is checked before anything is
//! written, and every bad row is reported with its line number.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use crate::secrets::Secret;

/// One valid row of the import file.
#[derive(Debug)]
pub struct Row<N> {
    /// Line of the file the row starts on (the header is line 1).
    pub line: u64,
    pub number: N,
    pub name: String,
    /// `None` when the cell was empty: a password is generated.
    pub password: Option<Secret>,
}

/// Everything wrong with a file, in line order.
#[derive(Debug, PartialEq, Eq)]
pub struct Problems(pub Vec<(u64, String)>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} bad row{} in the CSV, nothing was imported:",
            if n == 1 { "" } else { "s" }
        )?;
        for (line, msg) in &self.0 {
            if *line == 0 {
                write!(f, "\n  {msg}")?;
            } else {
                write!(f, "\n  line {line}: {msg}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

const EXPECTED_HEADER: &str = "expected the header `number,name,password`";

/// Parses the whole file. `parse_number` validates the extension number (the
/// store's newtype); its `Display` form detects duplicates inside the file.
pub fn parse<N, R>(
    input: R,
    parse_number: impl Fn(&str) -> Result<N, String>,
) -> Result<Vec<Row<N>>, Problems>
where
    N: fmt::Display,
    R: Read,
{
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Err(Problems(vec![(
                1,
                format!("unreadable header ({e}); {EXPECTED_HEADER}"),
            )]));
        }
    };
    let column = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(num_col), Some(name_col)) = (column("number"), column("name")) else {
        return Err(Problems(vec![(
            1,
            format!(
                "header is `{}`; {EXPECTED_HEADER}",
                header.iter().collect::<Vec<_>>().join(",")
            ),
        )]));
    };
    let pw_col = column("password");
    if let Some(unknown) = header
        .iter()
        .find(|h| !["number", "name", "password"].contains(&h.to_ascii_lowercase().as_str()))
    {
        return Err(Problems(vec![(
            1,
            format!("unknown column `{unknown}`; {EXPECTED_HEADER}"),
        )]));
    }

    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push((line, format!("unreadable row: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != header.len() {
            problems.push((
                line,
                format!(
                    "has {} fields, expected {} ({})",
                    record.len(),
                    header.len(),
                    EXPECTED_HEADER
                ),
            ));
            continue;
        }
        let mut errs = Vec::new();
        let raw_number = record.get(num_col).unwrap_or_default();
        let number = match parse_number(raw_number) {
            Ok(n) => Some(n),
            Err(e) => {
                errs.push(e);
                None
            }
        };
        let name = record.get(name_col).unwrap_or_default();
        if name.is_empty() {
            errs.push("name is empty".to_owned());
        }
        let password = match pw_col.and_then(|c| record.get(c)).unwrap_or_default() {
            "" => None,
            pw => match Secret::chosen(pw) {
                Ok(s) => Some(s),
                Err(e) => {
                    errs.push(e);
                    None
                }
            },
        };
        if let Some(n) = &number {
            if let Some(first) = seen.insert(n.to_string(), line) {
                errs.push(format!("number {n} is already on line {first}"));
            }
        }
        match (number, errs.is_empty()) {
            (Some(number), true) => rows.push(Row {
                line,
                number,
                name: name.to_owned(),
                password,
            }),
            _ => problems.push((line, errs.join("; "))),
        }
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    if rows.is_empty() {
        return Err(Problems(vec![(
            0,
            "the file has no rows after the header".to_owned(),
        )]));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> Result<String, String> {
        if (2..=6).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(s.to_owned())
        } else {
            Err(format!(
                "{s:?} is not an extension number: expected 2 to 6 digits"
            ))
        }
    }

    #[test]
    fn parses_rows_with_and_without_passwords() {
        let csv = "number,name,password\n101,Alice,correcthorse\n102, Bob ,\n";
        let rows = parse(csv.as_bytes(), digits).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].line, rows[0].number.as_str()), (2, "101"));
        assert_eq!(rows[0].password.as_ref().unwrap().expose(), "correcthorse");
        assert_eq!(
            (rows[1].name.as_str(), rows[1].password.is_none()),
            ("Bob", true)
        );
    }

    #[test]
    fn reports_every_bad_row_with_its_line() {
        let csv =
            "number,name,password\n101,A,\n102,B,\n1x3,C,\n104,,\n101,E,\n106,F,short\n107,G\n";
        let err = parse(csv.as_bytes(), digits).unwrap_err();
        let lines: Vec<u64> = err.0.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![4, 5, 6, 7, 8]);
        let text = err.to_string();
        assert!(
            text.contains("line 4: \"1x3\" is not an extension number: expected 2 to 6 digits"),
            "{text}"
        );
        assert!(text.contains("line 5: name is empty"), "{text}");
        assert!(
            text.contains("line 6: number 101 is already on line 2"),
            "{text}"
        );
        assert!(text.contains("line 7: password is too short"), "{text}");
        assert!(text.contains("line 8: has 2 fields, expected 3"), "{text}");
        assert!(
            text.starts_with("5 bad rows in the CSV, nothing was imported"),
            "{text}"
        );
    }

    #[test]
    fn rejects_wrong_header_and_empty_file() {
        let err = parse("num,name\n101,A\n".as_bytes(), digits).unwrap_err();
        assert!(
            err.to_string().contains("line 1: header is `num,name`"),
            "{err}"
        );
        let err = parse("number,name,pasword\n".as_bytes(), digits).unwrap_err();
        assert!(
            err.to_string().contains("unknown column `pasword`"),
            "{err}"
        );
        let err = parse("number,name,password\n".as_bytes(), digits).unwrap_err();
        assert!(err.to_string().contains("no rows"), "{err}");
    }

    #[test]
    fn password_column_is_optional_and_order_free() {
        let rows = parse("name,number\nAlice,101\n".as_bytes(), digits).unwrap();
        assert_eq!(rows[0].number, "101");
        assert!(rows[0].password.is_none());
    }
}
