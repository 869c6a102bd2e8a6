//! Time as unix seconds: what the database stores and JWTs carry.

use serde::{Serialize, Serializer};

/// The current time in unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix seconds that serialise as an RFC 3339 UTC timestamp (`2025-08-17T10:30:00Z`), the
/// contract's format for every time in the JSON API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The RFC 3339 text.
    pub fn to_rfc3339(self) -> String {
        chrono::DateTime::from_timestamp(self.0, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// Parses RFC 3339 (`2025-01-01T00:00:00Z`) or a plain date (`2025-01-01`, midnight UTC).
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
            return Some(Self(t.timestamp()));
        }
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Self(t.and_utc().timestamp()))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_utc() {
        let t = Timestamp(1_755_426_600);
        assert_eq!(t.to_rfc3339(), "2025-08-17T10:30:00Z");
        assert_eq!(Timestamp::parse("2025-08-17T10:30:00Z"), Some(t));
        assert_eq!(Timestamp::parse("2025-08-17T12:30:00+02:00"), Some(t));
        assert_eq!(Timestamp::parse("1970-01-02"), Some(Timestamp(86_400)));
        assert_eq!(Timestamp::parse("yesterday"), None);
    }
}
