//! ISO 8601 durations as AMS uses them (`PT2S`, `PT5M`, `PT1H30M`, `P1DT2H`, `PT0.5S`).
//!
//! Written by hand: AMS only uses the xsd:duration day-time subset, which is a few lines to
//! parse exactly, while the general crates pull a parser-combinator stack and accept years and
//! months, which have no fixed length and must be refused here.

use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IsoDuration(pub Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an ISO 8601 duration such as PT2S, PT5M or PT1H30M")]
pub struct DurationError(pub String);

impl IsoDuration {
    pub fn parse(s: &str) -> Result<Self, DurationError> {
        let err = || DurationError(s.to_owned());
        let rest = s.strip_prefix('P').or_else(|| s.strip_prefix('p')).ok_or_else(err)?;
        if rest.is_empty() {
            return Err(err());
        }
        let mut nanos: u128 = 0;
        let mut in_time = false;
        let mut num = String::new();
        let mut any = false;
        let mut last_unit_rank = 0u8;
        for c in rest.chars() {
            match c.to_ascii_uppercase() {
                'T' if !in_time && num.is_empty() => {
                    in_time = true;
                    last_unit_rank = 1;
                }
                d if d.is_ascii_digit() || d == '.' => num.push(d),
                u @ ('D' | 'W' | 'H' | 'M' | 'S') => {
                    if num.is_empty() {
                        return Err(err());
                    }
                    let (unit_secs, rank) = match (u, in_time) {
                        ('W', false) => (604_800.0, 0),
                        ('D', false) => (86_400.0, 1),
                        ('H', true) => (3_600.0, 2),
                        ('M', true) => (60.0, 3),
                        ('S', true) => (1.0, 4),
                        _ => return Err(err()), // years/months have no fixed length
                    };
                    if rank < last_unit_rank && !(rank == 1 && last_unit_rank == 1) {
                        return Err(err());
                    }
                    last_unit_rank = rank + 1;
                    // Only the last component may carry a fraction; checked loosely here by
                    // accepting fractions anywhere, which is what .NET's XmlConvert does too.
                    let value: f64 = num.parse().map_err(|_| err())?;
                    if !value.is_finite() || value < 0.0 {
                        return Err(err());
                    }
                    nanos += (value * unit_secs * 1e9).round() as u128;
                    num.clear();
                    any = true;
                }
                _ => return Err(err()),
            }
        }
        if !num.is_empty() || !any {
            return Err(err());
        }
        let nanos = u64::try_from(nanos).map_err(|_| err())?;
        Ok(IsoDuration(Duration::from_nanos(nanos)))
    }

    pub fn as_secs_f64(&self) -> f64 {
        self.0.as_secs_f64()
    }

    pub fn from_secs(secs: u64) -> Self {
        IsoDuration(Duration::from_secs(secs))
    }
}

impl fmt::Display for IsoDuration {
    /// Canonical form: `PT` then hours, minutes and (fractional) seconds, as .NET serializes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total_ms = self.0.as_millis();
        if total_ms == 0 {
            return f.write_str("PT0S");
        }
        let h = total_ms / 3_600_000;
        let m = (total_ms / 60_000) % 60;
        let s = (total_ms / 1000) % 60;
        let ms = total_ms % 1000;
        f.write_str("PT")?;
        if h > 0 {
            write!(f, "{h}H")?;
        }
        if m > 0 {
            write!(f, "{m}M")?;
        }
        if s > 0 || ms > 0 {
            if ms > 0 {
                let frac = format!("{ms:03}");
                write!(f, "{s}.{}S", frac.trim_end_matches('0'))?;
            } else {
                write!(f, "{s}S")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> f64 {
        IsoDuration::parse(s).unwrap().as_secs_f64()
    }

    #[test]
    fn parses_what_ams_clients_send() {
        assert_eq!(secs("PT2S"), 2.0);
        assert_eq!(secs("PT5M"), 300.0);
        assert_eq!(secs("PT1H30M"), 5400.0);
        assert_eq!(secs("PT25H"), 90000.0);
        assert_eq!(secs("P1DT1H"), 90000.0);
        assert_eq!(secs("PT0.5S"), 0.5);
        assert_eq!(secs("pt10m"), 600.0);
        assert_eq!(secs("PT1H2M3.25S"), 3723.25);
    }

    #[test]
    fn refuses_garbage_and_calendar_units() {
        for bad in ["", "P", "PT", "2S", "PT2", "P1Y", "P2M", "PTS", "PT-1S", "PT1S2M", "PTxS", "PT2S "] {
            assert!(IsoDuration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_canonically() {
        assert_eq!(IsoDuration::parse("PT300S").unwrap().to_string(), "PT5M");
        assert_eq!(IsoDuration::parse("PT1H").unwrap().to_string(), "PT1H");
        assert_eq!(IsoDuration::parse("PT0.5S").unwrap().to_string(), "PT0.5S");
        assert_eq!(IsoDuration::parse("P1DT1M").unwrap().to_string(), "PT24H1M");
        assert_eq!(IsoDuration::from_secs(0).to_string(), "PT0S");
    }
}
