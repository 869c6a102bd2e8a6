//! Listing users: the parsed query language of [`crate::domain::user_query`] compiled to one
//! diesel query per request. Every field and operator comes from a closed enum and every
//! value is a bound parameter, so nothing a caller sends is ever spliced into SQL.

use diesel::dsl::not;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, SingleValue, Text};

use super::schema::{roles, user_roles, user_security, users};
use super::users::{ListedUser, UserRow, listed_columns};
use super::{AnyConnection, MultiBackend, StoreError};
use crate::domain::{Condition, FilterOp, Operand, SortField, SortKey, UserField};

define_sql_function! {
    /// SQL `lower()`, on both backends.
    fn lower(text: Text) -> Text;
}

define_sql_function! {
    /// SQL `coalesce()` of a nullable column and a default.
    fn coalesce<T: SingleValue>(value: Nullable<T>, default: T) -> T;
}

/// A predicate over `users`.
type Predicate = Box<dyn BoxableExpression<users::table, MultiBackend, SqlType = Bool>>;
type TextExpr = Box<dyn BoxableExpression<users::table, MultiBackend, SqlType = Text>>;
type IntExpr = Box<dyn BoxableExpression<users::table, MultiBackend, SqlType = BigInt>>;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Words that must each appear in the username, email, first, last or display name.
    pub search: Option<String>,
    /// Conditions that must all hold.
    pub conditions: Vec<Condition>,
    /// Whether soft-deleted users are listed too (otherwise only with `status` = `deleted`).
    pub include_deleted: bool,
    /// Sort keys; ties are broken by id.
    pub sort: Vec<SortKey>,
}

/// Where a page starts.
#[derive(Debug, Clone)]
pub enum Window {
    /// Skip `offset` rows.
    Offset { offset: i64, limit: i64 },
    /// Rows after the one whose first sort key is `key` and id is `id` (keyset paging).
    After {
        key: Option<SortValue>,
        id: Option<String>,
        limit: i64,
    },
}

/// The value of a sort key in a row, as a cursor carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    Int(i64),
    Text(String),
}

/// The sort value of `field` in `row` (the same defaults as the SQL uses for nulls).
pub fn sort_value(field: SortField, row: &UserRow) -> SortValue {
    match field {
        SortField::CreatedAt => SortValue::Int(row.created_at),
        SortField::UpdatedAt => SortValue::Int(row.updated_at),
        SortField::LastLogin => SortValue::Int(row.last_login_at.unwrap_or(0)),
        SortField::Email => SortValue::Text(row.email.clone()),
        SortField::Username => SortValue::Text(row.username.clone()),
        SortField::FirstName => SortValue::Text(row.first_name.clone().unwrap_or_default()),
        SortField::LastName => SortValue::Text(row.last_name.clone().unwrap_or_default()),
        SortField::Status => SortValue::Text(row.status.clone()),
    }
}

fn text_column(field: UserField) -> TextExpr {
    match field {
        UserField::Id => Box::new(users::id),
        UserField::Username => Box::new(users::username),
        UserField::Email => Box::new(users::email),
        UserField::FirstName => Box::new(users::first_name.assume_not_null()),
        UserField::LastName => Box::new(users::last_name.assume_not_null()),
        UserField::DisplayName => Box::new(users::display_name.assume_not_null()),
        UserField::Kind => Box::new(users::kind),
        _ => Box::new(users::status),
    }
}

fn time_column(field: UserField) -> IntExpr {
    match field {
        UserField::UpdatedAt => Box::new(users::updated_at),
        UserField::LastLogin => Box::new(users::last_login_at.assume_not_null()),
        _ => Box::new(users::created_at),
    }
}

fn is_null(field: UserField) -> Predicate {
    match field {
        UserField::FirstName => Box::new(users::first_name.is_null()),
        UserField::LastName => Box::new(users::last_name.is_null()),
        UserField::DisplayName => Box::new(users::display_name.is_null()),
        _ => Box::new(users::last_login_at.is_null()),
    }
}

/// `%text%` for LIKE, with the wildcards of `text` escaped (by `\`).
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn text_contains(column: TextExpr, text: &str) -> Predicate {
    Box::new(lower(column).like(contains_pattern(text)).escape('\\'))
}

/// Whether the user is locked now: by an administrator without an end, or until a time.
fn locked_now(now: i64) -> Predicate {
    Box::new(
        users::status.eq("locked").or(users::id.eq_any(
            user_security::table
                .filter(user_security::locked_until.gt(now))
                .select(user_security::user_id),
        )),
    )
}

/// Whether the user's effective status is `status`.
fn status_is(status: &str, now: i64) -> Predicate {
    match status {
        "locked" => locked_now(now),
        "active" => Box::new(users::status.eq("active").and(not(locked_now(now)))),
        other => Box::new(users::status.eq(other.to_owned())),
    }
}

fn has_role(names: Vec<String>) -> Predicate {
    Box::new(
        users::id.eq_any(
            user_roles::table
                .inner_join(roles::table)
                .filter(roles::name.eq_any(names))
                .select(user_roles::user_id),
        ),
    )
}

fn role_like(text: &str) -> Predicate {
    Box::new(
        users::id.eq_any(
            user_roles::table
                .inner_join(roles::table)
                .filter(lower(roles::name).like(contains_pattern(text)).escape('\\'))
                .select(user_roles::user_id),
        ),
    )
}

fn mfa_is(enabled: bool) -> Predicate {
    Box::new(
        users::id.eq_any(
            user_security::table
                .filter(user_security::mfa_enabled.eq(enabled))
                .select(user_security::user_id),
        ),
    )
}

fn texts(operand: &Operand) -> Vec<String> {
    match operand {
        Operand::Text(t) => vec![t.clone()],
        Operand::List(items) => items.iter().flat_map(texts).collect(),
        _ => Vec::new(),
    }
}

fn any_of(mut predicates: Vec<Predicate>) -> Predicate {
    let first = predicates
        .pop()
        .unwrap_or_else(|| Box::new(users::id.ne(users::id)));
    predicates
        .into_iter()
        .fold(first, |acc, p| Box::new(acc.or(p)))
}

/// One condition as a predicate. The parser has already refused operators that do not apply.
fn predicate(condition: &Condition, now: i64) -> Predicate {
    let Condition { field, op, operand } = condition;
    let field = *field;
    match (field, op, operand) {
        (_, FilterOp::Eq, Operand::Null) => is_null(field),
        (_, FilterOp::Ne, Operand::Null) => Box::new(not(is_null(field))),
        (UserField::Status, FilterOp::Ne, _) => Box::new(not(any_of(
            texts(operand).iter().map(|s| status_is(s, now)).collect(),
        ))),
        (UserField::Status, FilterOp::Contains, Operand::Text(t)) => {
            text_contains(text_column(field), t)
        }
        (UserField::Status, _, _) => {
            any_of(texts(operand).iter().map(|s| status_is(s, now)).collect())
        }
        (UserField::Role, FilterOp::Ne, _) => Box::new(not(has_role(texts(operand)))),
        (UserField::Role, FilterOp::Contains, Operand::Text(t)) => role_like(t),
        (UserField::Role, _, _) => has_role(texts(operand)),
        (UserField::MfaEnabled, FilterOp::Ne, Operand::Bool(b)) => mfa_is(!b),
        (UserField::MfaEnabled, _, Operand::Bool(b)) => mfa_is(*b),
        (UserField::MfaEnabled, FilterOp::In, Operand::List(items)) => any_of(
            items
                .iter()
                .filter_map(|i| match i {
                    Operand::Bool(b) => Some(mfa_is(*b)),
                    _ => None,
                })
                .collect(),
        ),
        (UserField::EmailVerified, FilterOp::Ne, Operand::Bool(b)) => {
            Box::new(users::email_verified.ne(*b))
        }
        (UserField::EmailVerified, _, Operand::Bool(b)) => Box::new(users::email_verified.eq(*b)),
        (UserField::EmailVerified, FilterOp::In, Operand::List(items)) => {
            let values: Vec<bool> = items
                .iter()
                .filter_map(|i| match i {
                    Operand::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect();
            Box::new(users::email_verified.eq_any(values))
        }
        (_, _, Operand::Time(t)) => {
            let column = time_column(field);
            match op {
                FilterOp::Ne => Box::new(column.ne(*t)),
                FilterOp::Gt => Box::new(column.gt(*t)),
                FilterOp::Gte => Box::new(column.ge(*t)),
                FilterOp::Lt => Box::new(column.lt(*t)),
                FilterOp::Lte => Box::new(column.le(*t)),
                _ => Box::new(column.eq(*t)),
            }
        }
        (_, FilterOp::In, Operand::List(items))
            if field.field_type() == crate::domain::FieldType::Time =>
        {
            // `IN` over a boxed column does not compile for the multi-backend; `OR` of
            // equalities is the same condition.
            any_of(
                items
                    .iter()
                    .filter_map(|i| match i {
                        Operand::Time(t) => Some(Box::new(time_column(field).eq(*t)) as Predicate),
                        _ => None,
                    })
                    .collect(),
            )
        }
        (_, FilterOp::Contains, Operand::Text(t)) => text_contains(text_column(field), t),
        (_, FilterOp::In, _) => any_of(
            texts(operand)
                .into_iter()
                .map(|t| Box::new(text_column(field).eq(t)) as Predicate)
                .collect(),
        ),
        (_, _, Operand::Text(t)) => {
            let column = text_column(field);
            let value = t.clone();
            match op {
                FilterOp::Ne if field.nullable() => {
                    Box::new(is_null(field).or(text_column(field).ne(value)))
                }
                FilterOp::Ne => Box::new(column.ne(value)),
                FilterOp::Gt => Box::new(column.gt(value)),
                FilterOp::Gte => Box::new(column.ge(value)),
                FilterOp::Lt => Box::new(column.lt(value)),
                FilterOp::Lte => Box::new(column.le(value)),
                _ => Box::new(column.eq(value)),
            }
        }
        // Unreachable after parsing; matches nothing rather than everything.
        _ => Box::new(users::id.ne(users::id)),
    }
}

/// Each word of the search must appear in one of the name fields.
fn search_predicate(words: &str) -> Option<Predicate> {
    let mut all: Option<Predicate> = None;
    for word in words.split_whitespace().take(8) {
        let fields: Vec<Predicate> = [
            UserField::Username,
            UserField::Email,
            UserField::FirstName,
            UserField::LastName,
            UserField::DisplayName,
        ]
        .into_iter()
        .map(|f| text_contains(text_column(f), word))
        .collect();
        let word_matches = any_of(fields);
        all = Some(match all {
            None => word_matches,
            Some(acc) => Box::new(acc.and(word_matches)),
        });
    }
    all
}

fn filtered(query: &UserQuery, now: i64) -> users::BoxedQuery<'static, MultiBackend> {
    let mut boxed = users::table.into_boxed();
    let asks_for_deleted = query
        .conditions
        .iter()
        .any(|c| c.field == UserField::Status && texts(&c.operand).iter().any(|s| s == "deleted"));
    if !query.include_deleted && !asks_for_deleted {
        boxed = boxed.filter(users::deleted_at.is_null());
    }
    if let Some(search) = query.search.as_deref().and_then(search_predicate) {
        boxed = boxed.filter(search);
    }
    for condition in &query.conditions {
        boxed = boxed.filter(predicate(condition, now));
    }
    boxed
}

enum SortExpr {
    Int(IntExpr),
    Text(TextExpr),
}

fn sort_expr(field: SortField) -> SortExpr {
    match field {
        SortField::CreatedAt => SortExpr::Int(Box::new(users::created_at)),
        SortField::UpdatedAt => SortExpr::Int(Box::new(users::updated_at)),
        SortField::LastLogin => SortExpr::Int(Box::new(coalesce(users::last_login_at, 0i64))),
        SortField::Email => SortExpr::Text(Box::new(users::email)),
        SortField::Username => SortExpr::Text(Box::new(users::username)),
        SortField::FirstName => SortExpr::Text(Box::new(coalesce(users::first_name, ""))),
        SortField::LastName => SortExpr::Text(Box::new(coalesce(users::last_name, ""))),
        SortField::Status => SortExpr::Text(Box::new(users::status)),
    }
}

fn ordered(
    mut boxed: users::BoxedQuery<'static, MultiBackend>,
    sort: &[SortKey],
) -> users::BoxedQuery<'static, MultiBackend> {
    for key in sort {
        boxed = match (sort_expr(key.field), key.descending) {
            (SortExpr::Int(e), true) => boxed.then_order_by(e.desc()),
            (SortExpr::Int(e), false) => boxed.then_order_by(e.asc()),
            (SortExpr::Text(e), true) => boxed.then_order_by(e.desc()),
            (SortExpr::Text(e), false) => boxed.then_order_by(e.asc()),
        };
    }
    if sort.first().is_none_or(|k| k.descending) {
        boxed.then_order_by(users::id.desc())
    } else {
        boxed.then_order_by(users::id.asc())
    }
}

/// Rows strictly after (`key`, `id`) in the order of `sort`'s first key.
fn after(key: &SortKey, value: &SortValue, id: &str) -> Predicate {
    let id = id.to_owned();
    match (sort_expr(key.field), value) {
        (SortExpr::Int(e), SortValue::Int(v)) => {
            let same: Predicate = match sort_expr(key.field) {
                SortExpr::Int(e2) => Box::new(e2.eq(*v)),
                SortExpr::Text(_) => unreachable!("the same field has the same type"),
            };
            if key.descending {
                Box::new(e.lt(*v).or(same.and(users::id.lt(id))))
            } else {
                Box::new(e.gt(*v).or(same.and(users::id.gt(id))))
            }
        }
        (SortExpr::Text(e), SortValue::Text(v)) => {
            let same: Predicate = match sort_expr(key.field) {
                SortExpr::Text(e2) => Box::new(e2.eq(v.clone())),
                SortExpr::Int(_) => unreachable!("the same field has the same type"),
            };
            if key.descending {
                Box::new(e.lt(v.clone()).or(same.and(users::id.lt(id))))
            } else {
                Box::new(e.gt(v.clone()).or(same.and(users::id.gt(id))))
            }
        }
        // A cursor of another sort: start from the beginning rather than guess.
        _ => Box::new(users::id.eq(users::id)),
    }
}

/// How many users match.
pub fn count(conn: &mut AnyConnection, query: &UserQuery, now: i64) -> Result<i64, StoreError> {
    Ok(filtered(query, now).count().get_result(conn)?)
}

/// One page of matching users.
pub fn page(
    conn: &mut AnyConnection,
    query: &UserQuery,
    window: &Window,
    now: i64,
) -> Result<Vec<ListedUser>, StoreError> {
    let sort = if query.sort.is_empty() {
        vec![SortKey::default()]
    } else {
        query.sort.clone()
    };
    let mut boxed = filtered(query, now);
    let (offset, limit) = match window {
        Window::Offset { offset, limit } => (*offset, *limit),
        Window::After { key, id, limit } => {
            if let (Some(value), Some(id)) = (key, id) {
                boxed = boxed.filter(after(&sort[0], value, id));
            }
            (0, *limit)
        }
    };
    let rows: Vec<(UserRow, String, Option<i64>)> = ordered(boxed, &sort)
        .offset(offset)
        .limit(limit)
        .select(listed_columns())
        .load(conn)?;
    Ok(rows.into_iter().map(ListedUser::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(contains_pattern("ABC"), "%abc%");
    }
}
