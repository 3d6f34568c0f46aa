//! RTCP sender reports (RFC 3550 §6.4.1): the NTP wall clock of an RTP timestamp, which lines
//! up the tracks of a session. Everything else in a compound packet is skipped.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport {
    pub ssrc: u32,
    /// 64-bit NTP timestamp (seconds since 1900 in the upper half).
    pub ntp: u64,
    pub rtp: u32,
}

impl SenderReport {
    pub fn ntp_secs(&self) -> f64 {
        (self.ntp >> 32) as f64 + (self.ntp & 0xffff_ffff) as f64 / 4_294_967_296.0
    }
}

/// The sender reports of a compound RTCP packet. A malformed packet is an error (the caller
/// ignores it: see `quirks::IGNORE_BAD_RTCP`).
pub fn sender_reports(mut data: &[u8]) -> Result<Vec<SenderReport>, &'static str> {
    let mut out = Vec::new();
    if data.is_empty() {
        return Err("empty RTCP packet");
    }
    while !data.is_empty() {
        if data.len() < 4 {
            return Err("truncated RTCP header");
        }
        if data[0] >> 6 != 2 {
            return Err("RTCP version is not 2");
        }
        let len = 4 * (usize::from(u16::from_be_bytes([data[2], data[3]])) + 1);
        let pkt = data.get(..len).ok_or("RTCP length past the end")?;
        if pkt[1] == 200 {
            if pkt.len() < 28 {
                return Err("truncated sender report");
            }
            let u32_at = |i: usize| u32::from_be_bytes([pkt[i], pkt[i + 1], pkt[i + 2], pkt[i + 3]]);
            out.push(SenderReport {
                ssrc: u32_at(4),
                ntp: (u64::from(u32_at(8)) << 32) | u64::from(u32_at(12)),
                rtp: u32_at(16),
            });
        }
        data = &data[len..];
    }
    Ok(out)
}

/// A sender report packet (tests and fuzz seeds).
pub fn sender_report_packet(sr: SenderReport) -> Vec<u8> {
    let mut v = vec![0x80, 200, 0, 6];
    v.extend(sr.ssrc.to_be_bytes());
    v.extend(sr.ntp.to_be_bytes());
    v.extend(sr.rtp.to_be_bytes());
    v.extend([0u8; 8]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_packets() {
        let sr = SenderReport { ssrc: 5, ntp: (3_900_000_000u64 << 32) | 0x8000_0000, rtp: 1234 };
        let mut p = sender_report_packet(sr);
        p.extend([0x81, 202, 0, 1, 0, 0, 0, 5]); // SDES, one word
        assert_eq!(sender_reports(&p), Ok(vec![sr]));
        assert_eq!(sr.ntp_secs(), 3_900_000_000.5);
        assert!(sender_reports(&p[..20]).is_err());
        assert!(sender_reports(&[0x80, 200, 0, 0]).is_err());
        assert!(sender_reports(&[]).is_err());
    }
}
