//! Choosing the response the caller gets when every B-leg failed
//! (RFC 3261 §16.7 step 6, adapted to a B2BUA).

/// The best final response among the B-legs' final status codes:
/// a 6xx wins outright (the callee's decision is global); otherwise the
/// lowest class wins, and within 4xx "busy" (486, 600-like) is preferred
/// over "not available" (480), timeout (408) and the rest, since it tells
/// the caller the most. 3xx and 5xx from a phone are not passed on as such:
/// they become 480 (the B2BUA does not follow redirects or expose a
/// phone's internal error). `None` for an empty list.
pub fn best_response(codes: &[u16]) -> Option<u16> {
    if let Some(&six) = codes.iter().find(|c| (600..700).contains(*c)) {
        return Some(six);
    }
    let rank = |c: u16| -> (u8, u8) {
        match c {
            486 => (0, 0),
            480 => (0, 1),
            404 => (0, 2),
            408 => (0, 3),
            487 => (0, 9),
            400..=499 => (0, 5),
            300..=399 => (1, 0),
            _ => (2, 0),
        }
    };
    let best = codes.iter().copied().min_by_key(|c| rank(*c))?;
    Some(match best {
        400..=499 => best,
        _ => 480,
    })
}

#[cfg(test)]
mod tests {
    use super::best_response;

    #[test]
    fn six_hundreds_win() {
        assert_eq!(best_response(&[486, 603, 480]), Some(603));
        assert_eq!(best_response(&[600]), Some(600));
    }

    #[test]
    fn busy_is_preferred_within_4xx() {
        assert_eq!(best_response(&[480, 486, 408]), Some(486));
        assert_eq!(best_response(&[408, 480]), Some(480));
        assert_eq!(best_response(&[408, 415]), Some(408));
    }

    #[test]
    fn lowest_class_wins_and_5xx_is_hidden() {
        assert_eq!(best_response(&[500, 404]), Some(404));
        assert_eq!(best_response(&[503]), Some(480));
        assert_eq!(best_response(&[302]), Some(480));
        assert_eq!(best_response(&[]), None);
    }

    #[test]
    fn cancelled_legs_rank_last() {
        assert_eq!(best_response(&[487, 480]), Some(480));
        assert_eq!(best_response(&[487]), Some(487));
    }
}
