//! The query language of the user lists: seed 003's JSON `filters` with its operators, the
//! sort keys of seeds 001 and 003, and the `fields` projection — parsed here into closed
//! types, so that only whitelisted fields and operators ever reach SQL, and every value is a
//! bound parameter.

use serde_json::Value;

use super::Timestamp;

/// A field of a user that may be filtered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    Id,
    Username,
    Email,
    FirstName,
    LastName,
    DisplayName,
    /// The effective status: `locked` while a lock lasts, whatever the stored status says.
    Status,
    /// The name of any of the user's roles.
    Role,
    /// `person` or `service` (service accounts behind API keys).
    Kind,
    CreatedAt,
    UpdatedAt,
    LastLogin,
    EmailVerified,
    MfaEnabled,
}

/// What kind of value a field holds, which decides the operators it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Time,
    Bool,
}

impl UserField {
    /// Every filterable field with its name in the API.
    pub const ALL: &'static [(&'static str, UserField)] = &[
        ("id", UserField::Id),
        ("username", UserField::Username),
        ("email", UserField::Email),
        ("first_name", UserField::FirstName),
        ("last_name", UserField::LastName),
        ("display_name", UserField::DisplayName),
        ("status", UserField::Status),
        ("role", UserField::Role),
        ("kind", UserField::Kind),
        ("created_at", UserField::CreatedAt),
        ("updated_at", UserField::UpdatedAt),
        ("last_login", UserField::LastLogin),
        ("email_verified", UserField::EmailVerified),
        ("mfa_enabled", UserField::MfaEnabled),
    ];

    /// The field named `name` in the API.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The type of the field's values.
    pub fn field_type(self) -> FieldType {
        match self {
            Self::CreatedAt | Self::UpdatedAt | Self::LastLogin => FieldType::Time,
            Self::EmailVerified | Self::MfaEnabled => FieldType::Bool,
            _ => FieldType::Text,
        }
    }

    /// Whether the column may be null (then `eq: null` and `ne: null` test for absence).
    pub fn nullable(self) -> bool {
        matches!(
            self,
            Self::FirstName | Self::LastName | Self::DisplayName | Self::LastLogin
        )
    }

    /// Whether the field's values are stored lower-cased (so comparisons ignore case).
    pub fn lower_cased(self) -> bool {
        matches!(self, Self::Username | Self::Email)
    }
}

/// A comparison operator of seed 003's filter language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Contains,
}

impl FilterOp {
    const ALL: &'static [(&'static str, FilterOp)] = &[
        ("eq", FilterOp::Eq),
        ("ne", FilterOp::Ne),
        ("gt", FilterOp::Gt),
        ("gte", FilterOp::Gte),
        ("lt", FilterOp::Lt),
        ("lte", FilterOp::Lte),
        ("in", FilterOp::In),
        ("contains", FilterOp::Contains),
    ];

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, o)| *o)
    }

    /// Whether the operator applies to a field of this type.
    fn applies_to(self, field: UserField) -> bool {
        match (self, field.field_type()) {
            (Self::Eq | Self::Ne | Self::In, _) => true,
            (Self::Gt | Self::Gte | Self::Lt | Self::Lte, FieldType::Time) => true,
            (Self::Gt | Self::Gte | Self::Lt | Self::Lte, FieldType::Text) => {
                !matches!(field, UserField::Role | UserField::Status | UserField::Kind)
            }
            (Self::Contains, FieldType::Text) => !matches!(field, UserField::Id),
            _ => false,
        }
    }
}

/// A parsed operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// No value: `eq`/`ne` against null.
    Null,
    Text(String),
    /// Unix seconds.
    Time(i64),
    Bool(bool),
    /// The values of `in`, all of the field's type.
    List(Vec<Operand>),
}

/// One condition of a filter: `field op operand`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: UserField,
    pub op: FilterOp,
    pub operand: Operand,
}

/// A field the lists may be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    CreatedAt,
    UpdatedAt,
    LastLogin,
    Email,
    Username,
    FirstName,
    LastName,
    Status,
}

impl SortField {
    const ALL: &'static [(&'static str, SortField)] = &[
        ("created_at", SortField::CreatedAt),
        ("updated_at", SortField::UpdatedAt),
        ("last_login", SortField::LastLogin),
        ("email", SortField::Email),
        ("username", SortField::Username),
        ("first_name", SortField::FirstName),
        ("last_name", SortField::LastName),
        ("status", SortField::Status),
    ];

    /// Whether the sort values are numbers (times) rather than text.
    pub fn is_time(self) -> bool {
        matches!(self, Self::CreatedAt | Self::UpdatedAt | Self::LastLogin)
    }

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .expect("every sort field is named")
    }
}

/// One sort key (ties are always broken by id, in the same direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub field: SortField,
    pub descending: bool,
}

impl Default for SortKey {
    /// Newest first.
    fn default() -> Self {
        Self {
            field: SortField::CreatedAt,
            descending: true,
        }
    }
}

/// Why a part of a query was refused: the parameter (or `filters.<field>`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub field: String,
    pub message: String,
}

impl QueryError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses seed 003's `filters`: a JSON object from field names to either a plain value
/// (equality) or an object of operators (`{"created_at": {"gte": "2024-12-21"}}`).
pub fn parse_filters(text: &str) -> Result<Vec<Condition>, QueryError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| QueryError::new("filters", format!("is not a JSON object: {e}")))?;
    let Value::Object(members) = value else {
        return Err(QueryError::new("filters", "must be a JSON object"));
    };
    let mut conditions = Vec::new();
    for (name, spec) in members {
        let path = format!("filters.{name}");
        let field = UserField::parse(&name).ok_or_else(|| {
            QueryError::new(
                &path,
                format!(
                    "is not a field that can be filtered on; use one of: {}",
                    UserField::ALL
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        match spec {
            Value::Object(ops) => {
                if ops.is_empty() {
                    return Err(QueryError::new(&path, "names no operator"));
                }
                for (op_name, raw) in ops {
                    let op_path = format!("{path}.{op_name}");
                    let op = FilterOp::parse(&op_name).ok_or_else(|| {
                        QueryError::new(
                            &op_path,
                            "is not an operator; use eq, ne, gt, gte, lt, lte, in or contains",
                        )
                    })?;
                    conditions.push(condition(field, op, &raw, &op_path)?);
                }
            }
            plain => conditions.push(condition(field, FilterOp::Eq, &plain, &path)?),
        }
    }
    Ok(conditions)
}

/// One equality condition from a plain query parameter (`role=admin`, `status=locked`).
pub fn equals(field: UserField, value: &str, parameter: &str) -> Result<Condition, QueryError> {
    condition(
        field,
        FilterOp::Eq,
        &Value::String(value.to_owned()),
        parameter,
    )
}

fn condition(
    field: UserField,
    op: FilterOp,
    raw: &Value,
    path: &str,
) -> Result<Condition, QueryError> {
    if !op.applies_to(field) {
        return Err(QueryError::new(
            path,
            "this operator does not apply to this field",
        ));
    }
    let operand = match op {
        FilterOp::In => {
            let Value::Array(items) = raw else {
                return Err(QueryError::new(path, "`in` takes an array of values"));
            };
            if items.is_empty() || items.len() > 100 {
                return Err(QueryError::new(path, "`in` takes 1 to 100 values"));
            }
            Operand::List(
                items
                    .iter()
                    .map(|item| operand(field, item, path))
                    .collect::<Result<_, _>>()?,
            )
        }
        FilterOp::Contains => match raw {
            Value::String(text) if !text.is_empty() => Operand::Text(without_nul(text, path)?),
            _ => return Err(QueryError::new(path, "`contains` takes a non-empty string")),
        },
        _ => operand(field, raw, path)?,
    };
    if operand == Operand::Null && !(field.nullable() && matches!(op, FilterOp::Eq | FilterOp::Ne))
    {
        return Err(QueryError::new(
            path,
            "null is only allowed with eq and ne on a field that may be empty",
        ));
    }
    Ok(Condition { field, op, operand })
}

/// A text operand: no stored text holds a NUL (and PostgreSQL cannot compare with one).
fn without_nul(text: &str, path: &str) -> Result<String, QueryError> {
    if text.contains('\0') {
        return Err(QueryError::new(path, "must not contain a NUL character"));
    }
    Ok(text.to_owned())
}

fn operand(field: UserField, raw: &Value, path: &str) -> Result<Operand, QueryError> {
    match (field.field_type(), raw) {
        (_, Value::Null) => Ok(Operand::Null),
        (FieldType::Text, Value::String(text)) => {
            let text = without_nul(text, path)?;
            Ok(Operand::Text(if field.lower_cased() {
                text.to_lowercase()
            } else {
                text
            }))
        }
        (FieldType::Time, Value::String(text)) => Timestamp::parse(text)
            .map(|t| Operand::Time(t.0))
            .ok_or_else(|| {
                QueryError::new(path, "must be an RFC 3339 time or a date (YYYY-MM-DD)")
            }),
        (FieldType::Time, Value::Number(n)) => n
            .as_i64()
            .map(Operand::Time)
            .ok_or_else(|| QueryError::new(path, "must be unix seconds")),
        (FieldType::Bool, Value::Bool(b)) => Ok(Operand::Bool(*b)),
        (FieldType::Text, _) => Err(QueryError::new(path, "must be a string")),
        (FieldType::Time, _) => Err(QueryError::new(path, "must be a time")),
        (FieldType::Bool, _) => Err(QueryError::new(path, "must be true or false")),
    }
}

/// Parses sort keys: `created_at:desc` (seed 003), a JSON array of those
/// (`["last_login:desc","created_at:asc"]`), a comma list, or a bare field with `order`
/// (seed 001's `sort=email&order=asc`).
pub fn parse_sort(sort: Option<&str>, order: Option<&str>) -> Result<Vec<SortKey>, QueryError> {
    let order_desc = match order.map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("asc") => Some(false),
        Some("desc") => Some(true),
        Some(_) => return Err(QueryError::new("order", "must be asc or desc")),
    };
    let Some(sort) = sort.map(str::trim).filter(|s| !s.is_empty()) else {
        let mut key = SortKey::default();
        if let Some(desc) = order_desc {
            key.descending = desc;
        }
        return Ok(vec![key]);
    };
    let items: Vec<String> = if sort.starts_with('[') {
        serde_json::from_str(sort)
            .map_err(|_| QueryError::new("sort", "must be a JSON array of strings"))?
    } else {
        sort.split(',').map(|s| s.trim().to_owned()).collect()
    };
    if items.is_empty() || items.len() > 4 {
        return Err(QueryError::new("sort", "takes 1 to 4 keys"));
    }
    let mut keys = Vec::with_capacity(items.len());
    for item in items {
        let (name, direction) = match item.split_once(':') {
            Some((name, direction)) => (name.trim(), Some(direction.trim())),
            None => (item.trim(), None),
        };
        let field = SortField::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                QueryError::new(
                    "sort",
                    format!(
                        "`{name}` is not a sort field; use one of: {}",
                        SortField::ALL
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        let descending = match direction.map(str::to_ascii_lowercase).as_deref() {
            None => order_desc.unwrap_or(false),
            Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(QueryError::new("sort", "a direction is asc or desc")),
        };
        if keys.iter().any(|k: &SortKey| k.field == field) {
            return Err(QueryError::new("sort", format!("`{name}` is given twice")));
        }
        keys.push(SortKey { field, descending });
    }
    Ok(keys)
}

/// Parses a `fields` projection (a comma list or a JSON array) against the names a user view
/// has; `None` when every field is wanted.
pub fn parse_fields(
    fields: Option<&str>,
    available: &[&str],
) -> Result<Option<Vec<String>>, QueryError> {
    let Some(text) = fields.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let names: Vec<String> = if text.starts_with('[') {
        serde_json::from_str(text)
            .map_err(|_| QueryError::new("fields", "must be a JSON array of strings"))?
    } else {
        text.split(',').map(|s| s.trim().to_owned()).collect()
    };
    for name in &names {
        if !available.contains(&name.as_str()) {
            return Err(QueryError::new(
                "fields",
                format!("`{name}` is not a field of a user"),
            ));
        }
    }
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_and_operator_objects_parse() {
        let conditions =
            parse_filters(r#"{"created_at":{"gte":"2024-12-21"},"role":"admin"}"#).unwrap();
        assert_eq!(
            conditions,
            vec![
                Condition {
                    field: UserField::CreatedAt,
                    op: FilterOp::Gte,
                    operand: Operand::Time(1_734_739_200),
                },
                Condition {
                    field: UserField::Role,
                    op: FilterOp::Eq,
                    operand: Operand::Text("admin".into()),
                },
            ]
        );
        let listed = parse_filters(r#"{"role":{"in":["admin","user"]}}"#).unwrap();
        assert_eq!(
            listed[0].operand,
            Operand::List(vec![
                Operand::Text("admin".into()),
                Operand::Text("user".into())
            ])
        );
        assert_eq!(
            parse_filters(r#"{"email":{"contains":"@Company.com"}}"#).unwrap()[0].op,
            FilterOp::Contains
        );
    }

    #[test]
    fn unknown_fields_operators_and_mismatched_values_are_refused() {
        let field = parse_filters(r#"{"password_hash":{"eq":"x"}}"#).unwrap_err();
        assert_eq!(field.field, "filters.password_hash");
        let op = parse_filters(r#"{"email":{"like":"%"}}"#).unwrap_err();
        assert_eq!(op.field, "filters.email.like");
        for bad in [
            r#"{"created_at":{"gte":"yesterday"}}"#,
            r#"{"role":{"gt":"a"}}"#,
            r#"{"mfa_enabled":{"contains":"t"}}"#,
            r#"{"mfa_enabled":"yes"}"#,
            r#"{"role":{"in":[]}}"#,
            r#"{"email":{"eq":null}}"#,
            r#"{"email":{}}"#,
            r#"["email"]"#,
            r#"{"email": "a"; DROP TABLE users"#,
        ] {
            assert!(parse_filters(bad).is_err(), "{bad}");
        }
        assert!(parse_filters(r#"{"last_login":{"eq":null}}"#).is_ok());
    }

    #[test]
    fn sort_keys_in_every_spelling() {
        assert_eq!(
            parse_sort(Some("created_at:desc"), None).unwrap(),
            vec![SortKey {
                field: SortField::CreatedAt,
                descending: true
            }]
        );
        assert_eq!(
            parse_sort(Some(r#"["last_login:desc","created_at:asc"]"#), None)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            parse_sort(Some("email"), Some("desc")).unwrap()[0],
            SortKey {
                field: SortField::Email,
                descending: true
            }
        );
        assert_eq!(parse_sort(None, None).unwrap(), vec![SortKey::default()]);
        assert!(parse_sort(Some("password_hash"), None).is_err());
        assert!(parse_sort(Some("email:sideways"), None).is_err());
        assert!(parse_sort(Some("email"), Some("up")).is_err());
    }

    #[test]
    fn fields_are_checked_against_the_view() {
        assert_eq!(
            parse_fields(Some("id,email"), &["id", "email", "roles"]).unwrap(),
            Some(vec!["id".to_owned(), "email".to_owned()])
        );
        assert_eq!(parse_fields(None, &["id"]).unwrap(), None);
        assert!(parse_fields(Some(r#"["id","password_hash"]"#), &["id"]).is_err());
    }
}
