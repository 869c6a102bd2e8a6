//! Aggregates behind the statistics, analytics and overview endpoints: counted by the database
//! (`COUNT`, `COUNT(DISTINCT …)`, `GROUP BY`), never by loading rows.
//!
//! Times are unix seconds (`BIGINT`) on both backends, so a time series groups rows by a bucket
//! number computed from them: `(t - start) / width` for buckets of one width (days, weeks), a
//! `CASE` over the bucket starts otherwise (calendar months and quarters). Those queries are
//! written as SQL text with bound parameters only (`?N` on SQLite, `$N` on PostgreSQL); the
//! text is assembled from fixed fragments, never from input. `GROUP BY 1` groups by the bucket
//! expression, which PostgreSQL could not otherwise match against the select list when it holds
//! parameters.
//!
//! Counted people are users of kind `person` (service accounts are not); current figures leave
//! out soft-deleted users, while registrations count every user created in a bucket. The user of
//! a login is its audit entry's actor, else its resource id.

use diesel::dsl::{count, count_star};
use diesel::expression_methods::AggregateExpressionMethods;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::schema::{
    audit_logs, role_permissions, roles, sessions, user_roles, user_security, users,
};
use super::{AnyConnection, MultiBackend, StoreError};

/// The audit actions these reports count; the account and session code writes them.
pub mod actions {
    /// A password (and second factor, when due) was accepted.
    pub const LOGIN_SUCCEEDED: &str = "login_succeeded";
    /// A sign-in was refused.
    pub const LOGIN_FAILED: &str = "login_failed";
    /// An account was locked after repeated failures.
    pub const ACCOUNT_LOCKED: &str = "account_locked";
    /// A password was reset through the recovery flow.
    pub const PASSWORD_RESET: &str = "password_reset";
}

/// The `users.kind` of people (as opposed to service accounts).
const PERSON: &str = "person";

/// The user of a login audit entry `a`.
const LOGIN_USER: &str = "COALESCE(a.actor_id, a.resource_id)";

/// Current user figures (soft-deleted users left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserCounts {
    /// Every person.
    pub total: i64,
    /// Status `active` and no lockout in force.
    pub active: i64,
    /// Status `locked`, or a lockout after failed attempts in force.
    pub locked: i64,
    /// Created at or after the `since` given.
    pub new_since: i64,
}

/// Counts the people at time `now`, and those created since `since`.
pub fn user_counts(
    conn: &mut AnyConnection,
    now: i64,
    since: i64,
) -> Result<UserCounts, StoreError> {
    let people = || users::deleted_at.is_null().and(users::kind.eq(PERSON));
    let total = users::table.filter(people()).count().get_result(conn)?;
    let new_since = users::table
        .filter(people())
        .filter(users::created_at.ge(since))
        .count()
        .get_result(conn)?;
    let locked = users::table
        .left_join(user_security::table)
        .filter(people())
        .filter(
            users::status
                .eq("locked")
                .or(user_security::locked_until.gt(now)),
        )
        .count()
        .get_result(conn)?;
    let active = users::table
        .left_join(user_security::table)
        .filter(people())
        .filter(users::status.eq("active"))
        .filter(
            user_security::locked_until
                .is_null()
                .or(user_security::locked_until.le(now)),
        )
        .count()
        .get_result(conn)?;
    Ok(UserCounts {
        total,
        active,
        locked,
        new_since,
    })
}

/// Holders of administrative roles: roles granting any permission outside `profile:*` (so `*`
/// counts, the seeded `user` role does not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCounts {
    /// People holding at least one such role.
    pub total: i64,
    /// Those of them whose status is `active`.
    pub active: i64,
    /// Each such role by name, with its holders (zero included), sorted by name.
    pub by_role: Vec<(String, i64)>,
}

/// Counts the holders of administrative roles.
pub fn admin_counts(conn: &mut AnyConnection) -> Result<AdminCounts, StoreError> {
    let admin_roles = || {
        role_permissions::table
            .filter(role_permissions::permission.not_like("profile:%"))
            .select(role_permissions::role_id)
    };
    let people = || users::deleted_at.is_null().and(users::kind.eq(PERSON));
    let holders = || {
        user_roles::table
            .inner_join(users::table)
            .filter(user_roles::role_id.eq_any(admin_roles()))
            .filter(people())
    };
    let total = holders()
        .select(count(user_roles::user_id).aggregate_distinct())
        .get_result(conn)?;
    let active = holders()
        .filter(users::status.eq("active"))
        .select(count(user_roles::user_id).aggregate_distinct())
        .get_result(conn)?;
    let names: Vec<String> = roles::table
        .filter(roles::id.eq_any(admin_roles()))
        .order(roles::name)
        .select(roles::name)
        .load(conn)?;
    let counted: Vec<(String, i64)> = user_roles::table
        .inner_join(users::table)
        .inner_join(roles::table)
        .filter(user_roles::role_id.eq_any(admin_roles()))
        .filter(people())
        .group_by(roles::name)
        .select((roles::name, count(user_roles::user_id)))
        .load(conn)?;
    Ok(AdminCounts {
        total,
        active,
        by_role: zero_filled(names, counted),
    })
}

/// Every role by name with its current holders (people, not deleted; zero included), sorted.
pub fn users_by_role(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>, StoreError> {
    let names: Vec<String> = roles::table
        .order(roles::name)
        .select(roles::name)
        .load(conn)?;
    let counted: Vec<(String, i64)> = user_roles::table
        .inner_join(users::table)
        .inner_join(roles::table)
        .filter(users::deleted_at.is_null().and(users::kind.eq(PERSON)))
        .group_by(roles::name)
        .select((roles::name, count(user_roles::user_id)))
        .load(conn)?;
    Ok(zero_filled(names, counted))
}

fn zero_filled(names: Vec<String>, counted: Vec<(String, i64)>) -> Vec<(String, i64)> {
    names
        .into_iter()
        .map(|name| {
            let n = counted
                .iter()
                .find(|(counted, _)| *counted == name)
                .map_or(0, |(_, n)| *n);
            (name, n)
        })
        .collect()
}

/// Session figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCounts {
    /// Neither revoked nor expired at `now`.
    pub active: i64,
    /// Started at or after `since`.
    pub started: i64,
    /// Distinct users with a session active at or after `since`.
    pub unique_users: i64,
}

/// Counts sessions (browser and API) at `now`, and those started or used since `since`.
pub fn session_counts(
    conn: &mut AnyConnection,
    now: i64,
    since: i64,
) -> Result<SessionCounts, StoreError> {
    let active = sessions::table
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .count()
        .get_result(conn)?;
    let started = sessions::table
        .filter(sessions::created_at.ge(since))
        .count()
        .get_result(conn)?;
    let unique_users = sessions::table
        .filter(sessions::last_activity.ge(since))
        .select(count(sessions::user_id).aggregate_distinct())
        .get_result(conn)?;
    Ok(SessionCounts {
        active,
        started,
        unique_users,
    })
}

/// How many audit entries of each of `actions` were written at or after `since` (zero
/// included), in the order given.
pub fn action_counts(
    conn: &mut AnyConnection,
    actions: &[&str],
    since: i64,
) -> Result<Vec<i64>, StoreError> {
    let counted: Vec<(String, i64)> = audit_logs::table
        .filter(audit_logs::action.eq_any(actions))
        .filter(audit_logs::created_at.ge(since))
        .group_by(audit_logs::action)
        .select((audit_logs::action, count_star()))
        .load(conn)?;
    Ok(actions
        .iter()
        .map(|a| counted.iter().find(|(c, _)| c == a).map_or(0, |(_, n)| *n))
        .collect())
}

/// How many people existed at `at`: created before it and not deleted by then.
pub fn users_at(conn: &mut AnyConnection, at: i64) -> Result<i64, StoreError> {
    Ok(users::table
        .filter(users::kind.eq(PERSON))
        .filter(users::created_at.lt(at))
        .filter(users::deleted_at.is_null().or(users::deleted_at.ge(at)))
        .count()
        .get_result(conn)?)
}

/// Consecutive half-open time ranges: bucket `i` runs from `starts[i]` up to the next start,
/// the last one up to `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buckets {
    starts: Vec<i64>,
    end: i64,
}

impl Buckets {
    /// Buckets starting at `starts` (ascending, at least one) and ending at `end`; `None` when
    /// they are not.
    pub fn new(starts: Vec<i64>, end: i64) -> Option<Self> {
        let ascending = starts.windows(2).all(|w| w[0] < w[1]);
        match starts.last() {
            Some(&last) if ascending && last < end => Some(Self { starts, end }),
            _ => None,
        }
    }

    /// The start of each bucket.
    pub fn starts(&self) -> &[i64] {
        &self.starts
    }

    /// Where the first bucket starts.
    pub fn start(&self) -> i64 {
        self.starts[0]
    }

    /// Where the last bucket ends.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// How many buckets there are.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether there are none (never: [`Buckets::new`] refuses that).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The common width when every bucket but a shorter last one has the same width.
    fn uniform_width(&self) -> Option<i64> {
        let width = match self.starts.as_slice() {
            [only] => return Some(self.end - only),
            [first, second, ..] => second - first,
            [] => return None,
        };
        let even = self.starts.windows(2).all(|w| w[1] - w[0] == width);
        let last = self.starts[self.starts.len() - 1];
        (even && self.end - last <= width).then_some(width)
    }

    /// Pushes the number of the bucket that `column` falls in (rows must lie within range).
    fn push_index(&self, sql: &mut Sql, column: &str) {
        sql.push("CAST(");
        match self.uniform_width() {
            Some(width) => {
                sql.push("(").push(column).push(" - ").int(self.start());
                sql.push(") / ").int(width);
            }
            None => {
                sql.push("CASE");
                for (i, next) in self.starts.iter().skip(1).enumerate() {
                    sql.push(" WHEN ").push(column).push(" < ").int(*next);
                    sql.push(" THEN ").int(i as i64);
                }
                sql.push(" ELSE ").int(self.len() as i64 - 1).push(" END");
            }
        }
        sql.push(" AS BIGINT)");
    }

    /// Pushes the start of the bucket that `column` falls in.
    fn push_bucket_start(&self, sql: &mut Sql, column: &str) {
        sql.push("CAST(");
        match self.uniform_width() {
            Some(width) => {
                sql.int(self.start()).push(" + ((").push(column).push(" - ");
                sql.int(self.start()).push(") / ").int(width).push(") * ");
                sql.int(width);
            }
            None => {
                sql.push("CASE");
                for (start, next) in self.starts.iter().zip(self.starts.iter().skip(1)) {
                    sql.push(" WHEN ").push(column).push(" < ").int(*next);
                    sql.push(" THEN ").int(*start);
                }
                sql.push(" ELSE ")
                    .int(self.starts[self.len() - 1])
                    .push(" END");
            }
        }
        sql.push(" AS BIGINT)");
    }

    /// Pushes ` AND start <= column AND column < end`.
    fn push_within(&self, sql: &mut Sql, column: &str) {
        sql.push(" AND ")
            .push(column)
            .push(" >= ")
            .int(self.start());
        sql.push(" AND ").push(column).push(" < ").int(self.end);
    }

    /// Spreads `(bucket, value)` rows over one slot per bucket.
    fn spread<T: Default + Clone>(&self, rows: impl IntoIterator<Item = (i64, T)>) -> Vec<T> {
        let mut slots = vec![T::default(); self.len()];
        for (bucket, value) in rows {
            if let Some(slot) = usize::try_from(bucket).ok().and_then(|b| slots.get_mut(b)) {
                *slot = value;
            }
        }
        slots
    }
}

/// Which time of a user a series counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserEvent {
    /// `created_at`: registrations (users deleted since included).
    Created,
    /// `deleted_at`: soft deletions.
    Deleted,
}

impl UserEvent {
    fn column(self) -> &'static str {
        match self {
            Self::Created => "u.created_at",
            Self::Deleted => "u.deleted_at",
        }
    }
}

/// How many people were created (or deleted) in each bucket.
pub fn users_per_bucket(
    conn: &mut AnyConnection,
    event: UserEvent,
    buckets: &Buckets,
) -> Result<Vec<i64>, StoreError> {
    let column = event.column();
    let mut sql = Sql::new(conn);
    sql.push("SELECT ");
    buckets.push_index(&mut sql, column);
    sql.push(" AS bucket, COUNT(*) AS n FROM users u WHERE u.kind = ");
    sql.text(PERSON);
    buckets.push_within(&mut sql, column);
    sql.push(" GROUP BY 1");
    let rows: Vec<Counted> = sql.load(conn)?;
    Ok(buckets.spread(rows.into_iter().map(|r| (r.bucket, r.n))))
}

/// Successful logins in a bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Logins {
    /// How many.
    pub logins: i64,
    /// By how many distinct users.
    pub users: i64,
    /// How many of those users registered within the same bucket.
    pub new_users: i64,
}

/// Successful logins per bucket, from the audit log.
pub fn logins_per_bucket(
    conn: &mut AnyConnection,
    buckets: &Buckets,
) -> Result<Vec<Logins>, StoreError> {
    let mut sql = Sql::new(conn);
    sql.push("SELECT ");
    buckets.push_index(&mut sql, "a.created_at");
    sql.push(" AS bucket, COUNT(*) AS n, COUNT(DISTINCT ")
        .push(LOGIN_USER);
    sql.push(") AS users, COUNT(DISTINCT CASE WHEN u.created_at >= ");
    buckets.push_bucket_start(&mut sql, "a.created_at");
    sql.push(" THEN ")
        .push(LOGIN_USER)
        .push(" END) AS new_users");
    sql.push(" FROM audit_logs a LEFT JOIN users u ON u.id = ")
        .push(LOGIN_USER);
    sql.push(" WHERE a.action = ")
        .text(actions::LOGIN_SUCCEEDED);
    buckets.push_within(&mut sql, "a.created_at");
    sql.push(" GROUP BY 1");
    let rows: Vec<CountedLogins> = sql.load(conn)?;
    Ok(buckets.spread(rows.into_iter().map(|r| {
        (
            r.bucket,
            Logins {
                logins: r.n,
                users: r.users,
                new_users: r.new_users,
            },
        )
    })))
}

/// A per-role figure of one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFigure {
    /// The bucket's number.
    pub bucket: usize,
    /// The role's name.
    pub role: String,
    /// Rows counted (registrations, or logins).
    pub count: i64,
    /// Distinct users among them.
    pub users: i64,
}

/// Registrations per bucket and current role of the registered user.
pub fn registrations_by_role(
    conn: &mut AnyConnection,
    buckets: &Buckets,
) -> Result<Vec<RoleFigure>, StoreError> {
    let mut sql = Sql::new(conn);
    sql.push("SELECT ");
    buckets.push_index(&mut sql, "u.created_at");
    sql.push(" AS bucket, r.name AS role, COUNT(*) AS n, COUNT(DISTINCT u.id) AS users");
    sql.push(" FROM users u JOIN user_roles ur ON ur.user_id = u.id");
    sql.push(" JOIN roles r ON r.id = ur.role_id WHERE u.kind = ")
        .text(PERSON);
    buckets.push_within(&mut sql, "u.created_at");
    sql.push(" GROUP BY 1, 2");
    role_figures(sql.load(conn)?, buckets)
}

/// Successful logins per bucket and current role of the user.
pub fn logins_by_role(
    conn: &mut AnyConnection,
    buckets: &Buckets,
) -> Result<Vec<RoleFigure>, StoreError> {
    let mut sql = Sql::new(conn);
    sql.push("SELECT ");
    buckets.push_index(&mut sql, "a.created_at");
    sql.push(" AS bucket, r.name AS role, COUNT(*) AS n, COUNT(DISTINCT ")
        .push(LOGIN_USER);
    sql.push(") AS users FROM audit_logs a JOIN user_roles ur ON ur.user_id = ")
        .push(LOGIN_USER);
    sql.push(" JOIN roles r ON r.id = ur.role_id WHERE a.action = ")
        .text(actions::LOGIN_SUCCEEDED);
    buckets.push_within(&mut sql, "a.created_at");
    sql.push(" GROUP BY 1, 2");
    role_figures(sql.load(conn)?, buckets)
}

fn role_figures(
    rows: Vec<CountedByRole>,
    buckets: &Buckets,
) -> Result<Vec<RoleFigure>, StoreError> {
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let bucket = usize::try_from(r.bucket)
                .ok()
                .filter(|b| *b < buckets.len())?;
            Some(RoleFigure {
                bucket,
                role: r.role,
                count: r.n,
                users: r.users,
            })
        })
        .collect())
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct CountedLogins {
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    users: i64,
    #[diesel(sql_type = BigInt)]
    new_users: i64,
}

#[derive(QueryableByName)]
struct CountedByRole {
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    users: i64,
}

/// A bound parameter of [`Sql`].
enum Param {
    Int(i64),
    Text(&'static str),
}

/// SQL text with numbered placeholders in the dialect of the connection, and their values.
struct Sql {
    postgres: bool,
    text: String,
    params: Vec<Param>,
}

impl Sql {
    fn new(conn: &AnyConnection) -> Self {
        Self {
            postgres: matches!(conn, AnyConnection::Postgresql(_)),
            text: String::new(),
            params: Vec::new(),
        }
    }

    /// Appends a fixed fragment (never input).
    fn push(&mut self, fragment: &str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    fn placeholder(&mut self, param: Param) -> &mut Self {
        self.params.push(param);
        let sigil = if self.postgres { '$' } else { '?' };
        self.text.push(sigil);
        self.text.push_str(&self.params.len().to_string());
        self
    }

    /// Appends a bound integer.
    fn int(&mut self, value: i64) -> &mut Self {
        self.placeholder(Param::Int(value))
    }

    /// Appends a bound text constant.
    fn text(&mut self, value: &'static str) -> &mut Self {
        self.placeholder(Param::Text(value))
    }

    fn load<T>(self, conn: &mut AnyConnection) -> Result<Vec<T>, StoreError>
    where
        T: QueryableByName<MultiBackend> + 'static,
    {
        let mut query = diesel::sql_query(self.text).into_boxed::<MultiBackend>();
        for param in self.params {
            query = match param {
                Param::Int(v) => query.bind::<BigInt, _>(v),
                Param::Text(v) => query.bind::<Text, _>(v),
            };
        }
        Ok(query.load(conn)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ascending_and_know_when_they_are_uniform() {
        assert!(Buckets::new(vec![], 10).is_none());
        assert!(Buckets::new(vec![5, 3], 10).is_none());
        assert!(Buckets::new(vec![0, 10], 10).is_none());
        let days = Buckets::new(vec![0, 10, 20], 25).unwrap();
        assert_eq!(days.uniform_width(), Some(10));
        let months = Buckets::new(vec![0, 31, 59], 90).unwrap();
        assert_eq!(months.uniform_width(), None);
        assert_eq!(Buckets::new(vec![7], 9).unwrap().uniform_width(), Some(2));
        assert_eq!(
            days.spread([(0, 4), (2, 1), (9, 7), (-1, 3)]),
            vec![4, 0, 1]
        );
    }
}
