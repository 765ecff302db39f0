//! SDP serialization: CRLF line ends, lines in the order RFC 8866 §5 fixes.

use std::fmt::{self, Display, Formatter};

use super::{Attribute, Connection, Line, Media, Origin, Sdp};

/// Where a verbatim line goes relative to the typed ones. Session order is
/// `v o s i u e p c b t r z k a m`, media order `m i c b k a`.
fn rank(kind: u8) -> u8 {
    match kind {
        b'i' => 0,
        b'u' => 1,
        b'e' => 2,
        b'p' => 3,
        // c= is rank 4
        b'b' => 5,
        b't' | b'r' => 6,
        b'z' => 7,
        b'k' => 8,
        _ => 9,
    }
}

fn ordered(lines: &[Line]) -> Vec<&Line> {
    let mut v: Vec<&Line> = lines.iter().collect();
    v.sort_by_key(|l| rank(l.kind)); // stable: keeps t/r pairs together
    v
}

fn line(f: &mut Formatter<'_>, l: &Line) -> fmt::Result {
    write!(f, "{}={}\r\n", l.kind as char, l.value)
}

impl Display for Origin {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} IN {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.addr_type.as_str(),
            self.address
        )
    }
}

impl Display for Connection {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.addr_type.as_str(), self.address)
    }
}

impl Display for Attribute {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}:{}", self.name, v),
            None => f.write_str(&self.name),
        }
    }
}

impl Display for Media {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.kind, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt in &self.formats {
            write!(f, " {fmt}")?;
        }
        f.write_str("\r\n")?;
        let lines = ordered(&self.lines);
        let (before_c, after_c) = lines.split_at(lines.partition_point(|l| rank(l.kind) < 4));
        for l in before_c {
            line(f, l)?;
        }
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        for l in after_c {
            line(f, l)?;
        }
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        Ok(())
    }
}

impl Display for Sdp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "v=0\r\no={}\r\ns={}\r\n", self.origin, self.session_name)?;
        let lines = ordered(&self.lines);
        let (before_c, after_c) = lines.split_at(lines.partition_point(|l| rank(l.kind) < 4));
        for l in before_c {
            line(f, l)?;
        }
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        let mut timed = false;
        for l in after_c {
            // t= is mandatory: supply the usual unbounded one before z= and k=.
            if !timed && rank(l.kind) > 6 && !self.lines.iter().any(|l| l.kind == b't') {
                f.write_str("t=0 0\r\n")?;
                timed = true;
            }
            line(f, l)?;
        }
        if !timed && !self.lines.iter().any(|l| l.kind == b't') {
            f.write_str("t=0 0\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl Sdp {
    /// The serialized description, ready to be a SIP body.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}
