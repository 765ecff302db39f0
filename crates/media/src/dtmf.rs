//! RFC 4733 telephone-events (DTMF over RTP): a detector that turns the
//! packets of one leg into digits, and an encoder that produces the packets
//! for a digit to send.
//!
//! An event is identified by its RTP timestamp (every packet of one event
//! carries the timestamp of its start) and finished by the end bit, never
//! by the marker bit (which a lost first packet takes with it). The
//! detector reports a digit on the first packet it sees with a new
//! timestamp, so a digit whose first packets were lost is still reported,
//! once; it finishes the digit on the first end packet, on the next
//! event's first packet, or when no packet of it arrived for a timeout (the
//! end packets were all lost). Retransmitted end packets, and stray packets
//! of a finished event, are recognised by timestamp and ignored. (An event
//! longer than the 16-bit duration field, which a sender splits into
//! segments with new timestamps, RFC 4733 §2.5.1.3, is reported once per
//! segment.)
//!
//! Sans-IO: the caller passes `now`, drains [`DtmfDetector::poll_event`],
//! and calls [`DtmfDetector::handle_timeout`] at [`DtmfDetector::poll_timeout`].
//! The call engine does not use this yet (it relays telephone-events
//! between the two legs of a call); it is for PIN entry and keypad
//! commands in conferences.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// RTP timestamp units in 20 ms at the 8 kHz telephone-event clock.
pub const TICKS_PER_PACKET: u16 = 160;

/// Why a telephone-event payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    #[error("telephone-event payload is {0} bytes; RFC 4733 needs at least 4")]
    TooShort(usize),
}

/// One decoded telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    /// Event code: 0–9 digits, 10 `*`, 11 `#`, 12–15 A–D, 16 flash.
    pub event: u8,
    pub end: bool,
    /// Power level, in −dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl EventPayload {
    /// Parses the first four bytes; extra bytes (redundant events of RFC
    /// 2198 are not negotiated here) are ignored.
    pub fn parse(payload: &[u8]) -> Result<EventPayload, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::TooShort(payload.len()));
        };
        Ok(EventPayload {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }
}

/// The keypad character of an event code, for 0–15 (16 is flash: `!`).
pub fn event_char(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        16 => '!',
        _ => return None,
    })
}

/// The event code of a keypad character (`0`–`9`, `*`, `#`, `A`–`D`, `!`).
pub fn char_event(c: char) -> Option<u8> {
    Some(match c {
        '0'..='9' => c as u8 - b'0',
        '*' => 10,
        '#' => 11,
        'A'..='D' => c as u8 - b'A' + 12,
        'a'..='d' => c as u8 - b'a' + 12,
        '!' => 16,
        _ => return None,
    })
}

/// What the detector reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfEvent {
    /// A new event (a key pressed): reported once per event.
    Began { event: u8, timestamp: u32 },
    /// The event finished; `duration` in timestamp units as last reported
    /// by the sender; `timed_out` when no end packet arrived.
    Ended {
        event: u8,
        timestamp: u32,
        duration: u16,
        timed_out: bool,
    },
}

impl DtmfEvent {
    /// The keypad character of a `Began` event.
    pub fn began_char(&self) -> Option<char> {
        match *self {
            DtmfEvent::Began { event, .. } => event_char(event),
            DtmfEvent::Ended { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Active {
    timestamp: u32,
    event: u8,
    duration: u16,
    last_seen: Instant,
}

/// How many finished events' timestamps are remembered to recognise their
/// retransmitted or stray packets.
const RECENT: usize = 8;

/// Telephone-event detector for one leg.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    timeout: Duration,
    active: Option<Active>,
    finished: VecDeque<u32>,
    events: VecDeque<DtmfEvent>,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new(Self::DEFAULT_TIMEOUT)
    }
}

impl DtmfDetector {
    /// An event with no packet for this long is over (its end packets lost).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);

    pub fn new(timeout: Duration) -> Self {
        DtmfDetector {
            timeout,
            active: None,
            finished: VecDeque::with_capacity(RECENT),
            events: VecDeque::new(),
        }
    }

    /// One telephone-event packet: its RTP timestamp and payload. The
    /// marker bit is deliberately not an input.
    pub fn on_packet(
        &mut self,
        timestamp: u32,
        payload: &[u8],
        now: Instant,
    ) -> Result<(), DtmfError> {
        let p = EventPayload::parse(payload)?;
        if self.finished.contains(&timestamp) {
            return Ok(()); // a retransmitted end packet, or a straggler
        }
        if let Some(a) = &mut self.active {
            if a.timestamp == timestamp {
                a.last_seen = now;
                a.duration = a.duration.max(p.duration);
                if p.end {
                    self.finish(false);
                }
                return Ok(());
            }
            // A new event while the previous one never ended.
            self.finish(true);
        }
        self.events.push_back(DtmfEvent::Began {
            event: p.event,
            timestamp,
        });
        self.active = Some(Active {
            timestamp,
            event: p.event,
            duration: p.duration,
            last_seen: now,
        });
        if p.end {
            self.finish(false);
        }
        Ok(())
    }

    fn finish(&mut self, timed_out: bool) {
        let Some(a) = self.active.take() else {
            return;
        };
        if self.finished.len() == RECENT {
            self.finished.pop_front();
        }
        self.finished.push_back(a.timestamp);
        self.events.push_back(DtmfEvent::Ended {
            event: a.event,
            timestamp: a.timestamp,
            duration: a.duration,
            timed_out,
        });
    }

    /// The next thing to report, oldest first.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.active.map(|a| a.last_seen + self.timeout)
    }

    /// Ends an event whose packets stopped without an end bit.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(a) = self.active {
            if now >= a.last_seen + self.timeout {
                self.finish(true);
            }
        }
    }
}

/// One telephone-event packet to send: the caller sets sequence number,
/// SSRC and payload type and sends one every 20 ms, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// The event's start timestamp, the same in every packet of the event.
    pub timestamp: u32,
    /// Set on the first packet only.
    pub marker: bool,
    pub payload: [u8; 4],
}

/// The packets for one key press lasting `duration_ms` (at least one
/// packet's worth; at most 8 s, within the 16-bit duration field), starting
/// at RTP timestamp `start`: one every 20 ms with a growing duration, then
/// the end packet three times, as RFC 4733 §2.5.1.4 recommends.
pub fn encode_event(event: u8, start: u32, duration_ms: u32, volume: u8) -> Vec<EventPacket> {
    let total = (duration_ms.clamp(20, 8000) * 8) as u16;
    let mut out = Vec::new();
    let mut d = TICKS_PER_PACKET;
    while d < total {
        out.push(EventPacket {
            timestamp: start,
            marker: out.is_empty(),
            payload: EventPayload {
                event,
                end: false,
                volume,
                duration: d,
            }
            .to_bytes(),
        });
        d += TICKS_PER_PACKET;
    }
    for _ in 0..3 {
        out.push(EventPacket {
            timestamp: start,
            marker: out.is_empty(),
            payload: EventPayload {
                event,
                end: true,
                volume,
                duration: total,
            }
            .to_bytes(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS20: Duration = Duration::from_millis(20);

    fn feed(det: &mut DtmfDetector, pkts: &[EventPacket], t0: Instant) -> Instant {
        let mut now = t0;
        for p in pkts {
            det.on_packet(p.timestamp, &p.payload, now).unwrap();
            now += MS20;
        }
        now
    }

    fn digits(det: &mut DtmfDetector) -> String {
        std::iter::from_fn(|| det.poll_event())
            .filter_map(|e| e.began_char())
            .collect()
    }

    fn all(det: &mut DtmfDetector) -> Vec<DtmfEvent> {
        std::iter::from_fn(|| det.poll_event()).collect()
    }

    #[test]
    fn payload_round_trips_and_short_is_refused() {
        let p = EventPayload {
            event: 11,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(p.to_bytes(), [11, 0x8a, 0x03, 0x20]);
        assert_eq!(EventPayload::parse(&p.to_bytes()), Ok(p));
        assert_eq!(EventPayload::parse(&[1, 2, 3]), Err(DtmfError::TooShort(3)));
        let mut det = DtmfDetector::default();
        assert!(det.on_packet(0, &[], Instant::now()).is_err());
        assert_eq!(det.poll_event(), None);
    }

    #[test]
    fn encoder_marks_first_repeats_end_three_times() {
        let pkts = encode_event(5, 1000, 100, 10);
        assert_eq!(pkts.len(), 4 + 3);
        assert!(pkts[0].marker && pkts[1..].iter().all(|p| !p.marker));
        assert!(pkts.iter().all(|p| p.timestamp == 1000));
        let parsed: Vec<_> = pkts
            .iter()
            .map(|p| EventPayload::parse(&p.payload).unwrap())
            .collect();
        assert_eq!(parsed[0].duration, 160);
        assert!(parsed[4..].iter().all(|p| p.end && p.duration == 800));
        assert!(parsed[..4].iter().all(|p| !p.end));
    }

    #[test]
    fn a_key_press_is_one_digit_with_its_duration() {
        let mut det = DtmfDetector::default();
        feed(
            &mut det,
            &encode_event(char_event('7').unwrap(), 500, 100, 10),
            Instant::now(),
        );
        assert_eq!(
            all(&mut det),
            [
                DtmfEvent::Began {
                    event: 7,
                    timestamp: 500
                },
                DtmfEvent::Ended {
                    event: 7,
                    timestamp: 500,
                    duration: 800,
                    timed_out: false
                }
            ]
        );
        assert_eq!(det.poll_timeout(), None);
    }

    /// The three end packets (and a late retransmission after the next
    /// digit started) give one digit each, not three.
    #[test]
    fn duplicated_end_packets_report_the_digit_once() {
        let mut det = DtmfDetector::default();
        let t0 = Instant::now();
        let one = encode_event(1, 0, 60, 10);
        let two = encode_event(2, 800, 60, 10);
        let mut now = feed(&mut det, &one, t0);
        now = feed(&mut det, &one[one.len() - 3..], now); // retransmitted again
        now = feed(&mut det, &two[..1], now);
        now = feed(&mut det, &one[one.len() - 1..], now); // straggler
        feed(&mut det, &two[1..], now);
        assert_eq!(digits(&mut det), "12");
    }

    /// Repeated keys are told apart by timestamp: "55" is two digits even
    /// though no marker bit is looked at.
    #[test]
    fn the_same_key_twice_is_two_digits() {
        let mut det = DtmfDetector::default();
        let mut pkts = encode_event(5, 0, 60, 10);
        pkts.extend(encode_event(5, 1600, 60, 10));
        for p in &mut pkts {
            p.marker = false;
        }
        feed(&mut det, &pkts, Instant::now());
        assert_eq!(digits(&mut det), "55");
    }

    /// The first packets (with the marker) lost: the digit is still
    /// reported, once, from the first packet that arrives.
    #[test]
    fn lost_first_packets_still_report_the_digit_once() {
        let mut det = DtmfDetector::default();
        let pkts = encode_event(char_event('#').unwrap(), 3200, 120, 10);
        feed(&mut det, &pkts[3..], Instant::now());
        assert_eq!(digits(&mut det), "#");
    }

    /// Every end packet lost: the digit is reported when it starts and
    /// finished by the timeout; the next press is a new digit.
    #[test]
    fn lost_end_packets_finish_by_timeout() {
        let mut det = DtmfDetector::default();
        let t0 = Instant::now();
        let pkts = encode_event(9, 0, 100, 10);
        let now = feed(&mut det, &pkts[..4], t0);
        assert_eq!(det.poll_event().and_then(|e| e.began_char()), Some('9'));
        let due = det.poll_timeout().unwrap();
        assert_eq!(due, now - MS20 + DtmfDetector::DEFAULT_TIMEOUT);
        det.handle_timeout(due - Duration::from_millis(1));
        assert_eq!(det.poll_event(), None);
        det.handle_timeout(due);
        assert!(matches!(
            det.poll_event(),
            Some(DtmfEvent::Ended {
                event: 9,
                timed_out: true,
                ..
            })
        ));
        // A late end packet of the finished event changes nothing.
        feed(&mut det, &pkts[4..], due);
        assert_eq!(det.poll_event(), None);
        feed(&mut det, &encode_event(9, 4000, 60, 10), due);
        assert_eq!(digits(&mut det), "9");
    }

    /// A new timestamp while an event is open (its ends lost, no timeout
    /// yet) finishes the old one and starts the new one.
    #[test]
    fn a_new_event_finishes_an_open_one() {
        let mut det = DtmfDetector::default();
        let a = encode_event(3, 0, 100, 10);
        let b = encode_event(4, 960, 100, 10);
        let now = feed(&mut det, &a[..2], Instant::now());
        feed(&mut det, &b, now);
        let ev = all(&mut det);
        assert_eq!(ev.len(), 4);
        assert!(matches!(
            ev[1],
            DtmfEvent::Ended {
                event: 3,
                timed_out: true,
                ..
            }
        ));
        assert_eq!(ev[2].began_char(), Some('4'));
    }

    #[test]
    fn keypad_characters_map_both_ways() {
        for c in "0123456789*#ABCD!".chars() {
            assert_eq!(event_char(char_event(c).unwrap()), Some(c));
        }
        assert_eq!(char_event('x'), None);
        assert_eq!(event_char(40), None);
    }
}
