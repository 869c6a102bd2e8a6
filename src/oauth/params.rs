//! Request parameters of the protocol endpoints, as received.
//!
//! RFC 6749 §3.1 and §3.2: a parameter must not be repeated, and one sent without a value is
//! treated as omitted.

use std::collections::HashSet;

/// Query or form parameters, in order.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

/// A parameter sent more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeated(pub String);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body).
    pub fn from_urlencoded(bytes: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Parses a JSON object of scalar members (seeds 000 and 002 send token requests as JSON).
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("the body is not valid JSON: {e}"))?;
        let object = value
            .as_object()
            .ok_or_else(|| "the body must be a JSON object".to_owned())?;
        let mut pairs = Vec::with_capacity(object.len());
        for (name, value) in object {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                _ => return Err(format!("`{name}` must be a string")),
            };
            pairs.push((name.clone(), text));
        }
        Ok(Self(pairs))
    }

    /// Parameters from name–value pairs.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// The first parameter sent more than once (empty repeats included).
    pub fn repeated(&self) -> Option<Repeated> {
        let mut seen = HashSet::new();
        self.0
            .iter()
            .find(|(name, _)| !seen.insert(name.as_str()))
            .map(|(name, _)| Repeated(name.clone()))
    }

    /// The first parameter whose name or value holds a NUL character. No parameter may: NUL
    /// is no part of any identifier or text here, and PostgreSQL cannot store it.
    pub fn with_nul(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, value)| name.contains('\0') || value.contains('\0'))
            .map(|(name, _)| name.as_str())
    }

    /// Whether `name` was sent more than once (whatever else is repeated).
    pub fn is_repeated(&self, name: &str) -> bool {
        self.0.iter().filter(|(n, _)| n == name).nth(1).is_some()
    }

    /// The value of `name`, `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Whether `name` was sent at all (even empty).
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_repeats_and_treats_empty_as_absent() {
        let p = Params::from_urlencoded(b"a=1&b=&c=x%20y&a=2");
        assert_eq!(p.repeated(), Some(Repeated("a".into())));
        assert_eq!(p.with_nul(), None);
        let with_nul = Params::from_urlencoded(b"a=1&state=x%00y");
        assert_eq!(with_nul.with_nul(), Some("state"));
        assert_eq!(p.get("b"), None);
        assert!(p.contains("b"));
        assert_eq!(p.get("c"), Some("x y"));
    }

    #[test]
    fn json_objects_of_scalars_only() {
        assert_eq!(
            Params::from_json(br#"{"grant_type":"x","n":5}"#)
                .unwrap()
                .get("n"),
            Some("5")
        );
        assert!(Params::from_json(br#"{"a":[1]}"#).is_err());
        assert!(Params::from_json(b"[1]").is_err());
        assert!(Params::from_json(b"{").is_err());
    }
}
