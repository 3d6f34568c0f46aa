//! A bounds-checked MSB-first bit reader and emulation-prevention removal: every read on
//! untrusted bytes returns `None` past the end instead of panicking.

pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    pub(crate) fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let v = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(v))
    }

    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        if self.remaining() < n as usize {
            return None;
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Some(v as u32)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        if self.remaining() < n {
            return None;
        }
        self.pos += n;
        Some(())
    }

    /// Exp-Golomb ue(v), refusing codes longer than 32 bits (never valid in a parameter set).
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }
}

/// Copies bits `[from, to)` of `data` into bytes, left-aligned, zero-padded.
pub(crate) fn copy_bits(data: &[u8], from: usize, to: usize) -> Option<Vec<u8>> {
    let mut r = BitReader::new(data);
    r.skip(from)?;
    let n = to.checked_sub(from)?;
    let mut out = vec![0u8; n.div_ceil(8)];
    for i in 0..n {
        if r.bit()? == 1 {
            out[i / 8] |= 0x80 >> (i % 8);
        }
    }
    Some(out)
}

/// Removes emulation-prevention bytes (`00 00 03` -> `00 00`).
pub(crate) fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// CRC-32/MPEG-2 (PSI sections): polynomial 0x04C11DB7, not reflected, no final xor.
pub(crate) fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bits_and_golomb_codes() {
        let mut r = BitReader::new(&[0b1011_0110, 0b0100_0000]);
        assert_eq!(r.bits(3), Some(0b101));
        assert_eq!(r.ue(), Some(0)); // "1"
        assert_eq!(r.ue(), Some(2)); // "011"
        assert_eq!(r.ue(), Some(3)); // "00100"
        assert_eq!(r.remaining(), 4);
        assert_eq!(r.bits(5), None);
        assert_eq!(BitReader::new(&[0, 0, 0, 0, 0]).ue(), None);
    }

    #[test]
    fn copies_unaligned_bits() {
        assert_eq!(copy_bits(&[0b0001_0010, 0b0001_0000], 3, 16), Some(vec![0b1001_0000, 0b1000_0000]));
        assert_eq!(copy_bits(&[0xff], 4, 12), None);
    }

    #[test]
    fn emulation_prevention_and_crc() {
        assert_eq!(rbsp(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
        // The CRC of a section including its CRC is zero.
        let pat = [0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00];
        let crc = crc32_mpeg2(&pat);
        let mut full = pat.to_vec();
        full.extend(crc.to_be_bytes());
        assert_eq!(crc32_mpeg2(&full), 0);
        assert_eq!(crc, 0x2ab1_04b2);
    }
}
