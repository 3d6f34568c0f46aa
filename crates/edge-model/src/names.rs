//! Resource names, validated once at the API boundary. Each type keeps the spelling the client
//! chose (responses echo it) and exposes a case-folded `key()` for uniqueness and lookup, since
//! ARM compares resource names case-insensitively.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $ty(String);

        impl $ty {
            pub fn parse(s: &str) -> Result<Self, NameError> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(s).map_err(|why| NameError(format!("Invalid {} '{}': {}", $what, s, why)))?;
                Ok(Self(s.to_owned()))
            }
            /// The case-folded form used for uniqueness and lookups.
            pub fn key(&self) -> String {
                self.0.to_ascii_lowercase()
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn len_between(s: &str, min: usize, max: usize) -> Result<(), String> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(format!("must be {min} to {max} characters long (got {n})"));
    }
    Ok(())
}

/// AMS `^[a-zA-Z0-9]+(-*[a-zA-Z0-9])*$`: alphanumerics with inner hyphens.
fn ams_alnum_hyphen(s: &str, max: usize) -> Result<(), String> {
    len_between(s, 1, max)?;
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("only letters, digits and hyphens are allowed".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

name_type!(
    /// Live event names: the union of the AMS and RMS rules, so that both kinds of client code
    /// keep working: `^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`.
    LiveEventName,
    "live event name",
    |s| {
        len_between(s, 1, 32)?;
        let mut chars = s.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Err("must start with a letter or digit".into());
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err("only letters, digits, '-' and '_' are allowed".into());
        }
        Ok(())
    }
);

name_type!(
    /// Live output names (AMS): 1 to 256 alphanumerics with inner hyphens.
    LiveOutputName,
    "live output name",
    |s| ams_alnum_hyphen(s, 256)
);

name_type!(
    /// Streaming endpoint names (AMS): 1 to 24 alphanumerics with inner hyphens.
    StreamingEndpointName,
    "streaming endpoint name",
    |s| ams_alnum_hyphen(s, 24)
);

name_type!(
    /// Asset, locator, policy and filter names: the general AMS rule (at most 260 characters,
    /// none of `< > % & : \ ? / * + .`, the single quote or control characters).
    ResourceName,
    "resource name",
    |s| {
        len_between(s, 1, 260)?;
        if let Some(c) = s
            .chars()
            .find(|c| "<>%&:\\?/*+.'".contains(*c) || c.is_control())
        {
            return Err(format!("the character {c:?} is not allowed"));
        }
        Ok(())
    }
);

name_type!(
    /// Manifest names become `<name>.ism` in playback URLs, so they are restricted to characters
    /// that need no escaping in a URL path.
    ManifestName,
    "manifest name",
    |s| {
        len_between(s, 1, 128)?;
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("only letters, digits, '-' and '_' are allowed".into());
        }
        Ok(())
    }
);

/// Parses a GUID with or without hyphens (AMS accepts both for access tokens and locator ids).
pub fn parse_guid(s: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::try_parse(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_event_names_follow_the_union_rule() {
        for ok in ["a", "A1", "my-event_1", "0abc", &"x".repeat(32), "Event--x"] {
            assert!(LiveEventName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "_a", "a.b", "a b", "é", &"x".repeat(33)] {
            assert!(LiveEventName::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(LiveEventName::parse("MyEvent").unwrap().key(), "myevent");
        assert_eq!(LiveEventName::parse("MyEvent").unwrap().as_str(), "MyEvent");
    }

    #[test]
    fn ams_names() {
        assert!(LiveOutputName::parse("output-1").is_ok());
        assert!(LiveOutputName::parse("out_1").is_err());
        assert!(LiveOutputName::parse("-out").is_err());
        assert!(StreamingEndpointName::parse(&"a".repeat(25)).is_err());
        assert!(StreamingEndpointName::parse("default").is_ok());
    }

    #[test]
    fn resource_names() {
        assert!(ResourceName::parse("Video asset_1 (copy)").is_ok());
        for bad in ["a.b", "a/b", "a'b", "a%b", "a\u{1}b", ""] {
            assert!(ResourceName::parse(bad).is_err(), "{bad}");
        }
        let e = ResourceName::parse("a.b").unwrap_err();
        assert!(e.0.contains("'.'"), "{e}");
    }

    #[test]
    fn guids() {
        assert!(parse_guid("262a87b6-b538-4657-bac1-b6897924471d").is_some());
        assert!(parse_guid("262a87b6b5384657bac1b6897924471d").is_some());
        assert!(parse_guid("nope").is_none());
    }
}
