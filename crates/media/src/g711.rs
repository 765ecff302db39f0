//! G.711 µ-law (PCMU) and A-law (PCMA) companding, ITU-T G.711.
//!
//! Encoding takes 16-bit linear PCM; decoding returns it. Both directions are
//! table-free bit manipulation, cheap enough for the per-packet path.

const MULAW_BIAS: i32 = 0x84;
const MULAW_CLIP: i32 = 32635;

/// Encode one linear sample as µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(MULAW_CLIP) + MULAW_BIAS;
    let exponent = (7 - (pcm as u32).leading_zeros().saturating_sub(17)).min(7) as i32;
    let mantissa = (pcm >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decode one µ-law byte to a linear sample.
pub fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + MULAW_BIAS) << exponent) - MULAW_BIAS;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// Encode one linear sample as A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13-bit magnitudes.
    let pcm = i32::from(sample) >> 3;
    let (sign, magnitude) = if pcm >= 0 {
        (0x80u8, pcm)
    } else {
        (0x00u8, -pcm - 1)
    };
    let magnitude = magnitude.min(0x0fff);
    let code = if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        let exponent = 31 - (magnitude as u32).leading_zeros() as i32 - 4;
        let mantissa = (magnitude >> exponent) & 0x0f;
        (((exponent) << 4) as u8) | mantissa as u8
    };
    (sign | code) ^ 0x55
}

/// Decode one A-law byte to a linear sample.
pub fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = i32::from((a >> 4) & 0x07);
    let mantissa = i32::from(a & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code word decodes to a value that encodes back to the same code
    /// (apart from the two zero codes, which share a value).
    #[test]
    fn ulaw_round_trips_every_code() {
        for code in 0..=255u8 {
            let back = linear_to_ulaw(ulaw_to_linear(code));
            assert_eq!(
                ulaw_to_linear(back),
                ulaw_to_linear(code),
                "code {code:#04x}"
            );
        }
    }

    #[test]
    fn alaw_round_trips_every_code() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "code {code:#04x}"
            );
        }
    }

    /// Reference points from ITU-T G.711 tables.
    #[test]
    fn known_values() {
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_ulaw(-1), 0x7f);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        assert_eq!(alaw_to_linear(0xaa), 32256);
    }

    /// Quantisation error stays within G.711's segment step for a sweep of
    /// linear values: the signal a listener hears is the signal that was sent.
    #[test]
    fn quantisation_error_is_bounded() {
        for x in (-32000i32..32000).step_by(7) {
            let x = x as i16;
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(x)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(x)));
            let bound = (i32::from(x).abs() / 16).max(16);
            assert!((u - i32::from(x)).abs() <= bound, "ulaw {x} -> {u}");
            assert!((a - i32::from(x)).abs() <= bound, "alaw {x} -> {a}");
        }
    }
}
