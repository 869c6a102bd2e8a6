//! User analytics (seed 003): `GET /analytics/users`.

use super::*;
use crate::api::error::ApiError;
use crate::startup::AppState;
use crate::store::reports::{self, Logins, RoleFigure, UserEvent};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Datelike, Months, NaiveDate};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The query of `GET /analytics/users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AnalyticsQuery {
    /// `active_users` (the default), `new_registrations` or `login_frequency`.
    metric: Option<String>,
    /// The bucket: `day` (the default), `week`, `month` or `quarter`.
    period: Option<String>,
    /// `YYYY-MM-DD`.
    start_date: Option<String>,
    /// `YYYY-MM-DD` (today by default).
    end_date: Option<String>,
    /// `role` adds `by_role` to each bucket.
    group_by: Option<String>,
}

/// The first day of the bucket after the one starting on `bucket_start`, for `period`.
fn next_bucket(period: &str, bucket_start: NaiveDate) -> Option<NaiveDate> {
    let first_of_month = bucket_start.with_day(1)?;
    match period {
        "day" => bucket_start.succ_opt(),
        "week" => bucket_start.checked_add_days(chrono::Days::new(7)),
        "month" => first_of_month.checked_add_months(Months::new(1)),
        _ => {
            let quarter_month = (bucket_start.month0() / 3) * 3 + 1;
            first_of_month
                .with_month(quarter_month)?
                .checked_add_months(Months::new(3))
        }
    }
}

/// `GET /api/v1/analytics/users` (seed 003). `metric`: `active_users` (the default),
/// `new_registrations` or `login_frequency`; `period`: the bucket, `day` (the default), `week`
/// (7 days from `start_date`), `month` or `quarter` (calendar ones, the first cut at
/// `start_date`); the range defaults to the last 30 days, 12 weeks, 12 months or 4 quarters up
/// to today. `group_by=role` adds `by_role` to each data point: the metric's count per role
/// the users hold now. Active users are the distinct users with a successful login in the
/// bucket; returning ones registered before the bucket began.
#[utoipa::path(
    get,
    path = crate::paths::ANALYTICS_USERS,
    tag = "stats",
    params(AnalyticsQuery),
    responses(
        (status = 200, description = "The metric per bucket, and a summary", body = super::schema::Analytics),
        (status = 422, description = "A bad `metric`, `period`, `group_by` or date, or a range longer than 366 days", body = crate::api::openapi::ApiErrorBody),
    ),
    security(("bearer" = ["stats:read"])),
)]
pub(super) async fn analytics_users(
    state: web::Data<AppState>,
    http: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q: AnalyticsQuery = query(&http)?;
    let metric = one_of(
        "metric",
        q.metric.as_deref(),
        &["active_users", "new_registrations", "login_frequency"],
    )?
    .unwrap_or("active_users");
    let period = one_of(
        "period",
        q.period.as_deref(),
        &["day", "week", "month", "quarter"],
    )?
    .unwrap_or("day");
    let by_role = one_of("group_by", q.group_by.as_deref(), &["role"])?.is_some();
    let (start, end) = date_range(q.start_date.as_deref(), q.end_date.as_deref(), |end| {
        let back = |months| {
            end.with_day(1)
                .and_then(|d| d.checked_sub_months(Months::new(months)))
        };
        match period {
            "week" => end.checked_sub_days(chrono::Days::new(83)),
            "month" => back(11),
            "quarter" => back((end.month0() % 3) + 9),
            _ => None,
        }
        .unwrap_or(end - chrono::Days::new(29))
    })?;
    let mut starts = vec![start];
    while let Some(next) = next_bucket(period, starts[starts.len() - 1]).filter(|n| *n <= end) {
        starts.push(next);
    }
    let buckets = buckets_of(&starts, end);
    let whole = buckets_of(&[start], end);
    let figures = state
        .store
        .run(move |conn| {
            let registered = reports::users_per_bucket(conn, UserEvent::Created, &buckets)?;
            let deleted = reports::users_per_bucket(conn, UserEvent::Deleted, &buckets)?;
            let roles = if by_role {
                let names = reports::users_by_role(conn)?
                    .into_iter()
                    .map(|(r, _)| r)
                    .collect();
                let figures = if metric == "new_registrations" {
                    reports::registrations_by_role(conn, &buckets)?
                } else {
                    reports::logins_by_role(conn, &buckets)?
                };
                Some((names, figures))
            } else {
                None
            };
            Ok(Figures {
                base: reports::users_at(conn, buckets.start())?,
                registered,
                deleted,
                logins: reports::logins_per_bucket(conn, &buckets)?,
                overall: reports::logins_per_bucket(conn, &whole)?[0],
                roles,
            })
        })
        .await?;
    let (data, summary) = figures.report(metric, period, &starts);
    Ok(HttpResponse::Ok().json(json!({
        "metric": metric,
        "period": period,
        "start_date": start.to_string(),
        "end_date": end.to_string(),
        "group_by": by_role.then_some("role"),
        "data": data,
        "summary": summary,
    })))
}

/// What the analytics endpoint reads, per bucket unless said otherwise.
struct Figures {
    /// People existing when the range starts.
    base: i64,
    registered: Vec<i64>,
    deleted: Vec<i64>,
    logins: Vec<Logins>,
    /// Logins over the whole range.
    overall: Logins,
    /// All role names, and the per-role figures, when grouped by role.
    roles: Option<(Vec<String>, Vec<RoleFigure>)>,
}

/// `part / whole` in percent, one decimal; `null` when `whole` is zero.
fn percent(part: i64, whole: i64) -> Value {
    if whole == 0 {
        Value::Null
    } else {
        json!(round(part as f64 * 100.0 / whole as f64, 1))
    }
}

fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

fn mean(values: impl Iterator<Item = i64>, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        round(values.sum::<i64>() as f64 / n as f64, 1)
    }
}

impl Figures {
    /// The data points and the summary of `metric`.
    fn report(&self, metric: &str, period: &str, starts: &[NaiveDate]) -> (Vec<Value>, Value) {
        let n = starts.len();
        let mut total = self.base;
        let totals: Vec<i64> = (0..n)
            .map(|i| {
                total += self.registered[i] - self.deleted[i];
                total
            })
            .collect();
        let mut data: Vec<Map<String, Value>> = (0..n)
            .map(|i| {
                let l = self.logins[i];
                let point = match metric {
                    "new_registrations" => json!({
                        "count": self.registered[i],
                        "total_users": totals[i],
                    }),
                    "login_frequency" => json!({
                        "logins": l.logins,
                        "unique_users": l.users,
                        "average_per_user": if l.users == 0 { 0.0 } else {
                            round(l.logins as f64 / l.users as f64, 2)
                        },
                    }),
                    _ => json!({
                        "total_users": totals[i],
                        "active_users": l.users,
                        "new_users": self.registered[i],
                        "returning_users": l.users - l.new_users,
                    }),
                };
                let mut point = match point {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                point.insert("date".into(), json!(starts[i].to_string()));
                point
            })
            .collect();
        if let Some((names, figures)) = &self.roles {
            for (i, point) in data.iter_mut().enumerate() {
                let groups: Map<String, Value> = names
                    .iter()
                    .map(|name| {
                        let figure = figures.iter().find(|f| f.bucket == i && f.role == *name);
                        let value = figure.map_or(0, |f| match metric {
                            "active_users" => f.users,
                            _ => f.count,
                        });
                        (name.clone(), json!(value))
                    })
                    .collect();
                point.insert("by_role".into(), Value::Object(groups));
            }
        }
        let last_total = totals.last().copied().unwrap_or(self.base);
        let growth_rate = percent(last_total - self.base, self.base);
        let summary = match metric {
            "new_registrations" => json!({
                "total": self.registered.iter().sum::<i64>(),
                "average": mean(self.registered.iter().copied(), n),
                "growth_rate": growth_rate,
            }),
            "login_frequency" => json!({
                "total_logins": self.overall.logins,
                "unique_users": self.overall.users,
                "average_logins_per_user": if self.overall.users == 0 { 0.0 } else {
                    round(self.overall.logins as f64 / self.overall.users as f64, 2)
                },
                "average_logins": mean(self.logins.iter().map(|l| l.logins), n),
            }),
            _ => {
                let adjective = match period {
                    "week" => "weekly",
                    "month" => "monthly",
                    "quarter" => "quarterly",
                    _ => "daily",
                };
                json!({
                    format!("average_{adjective}_active"): mean(self.logins.iter().map(|l| l.users), n),
                    "peak_active": self.logins.iter().map(|l| l.users).max().unwrap_or(0),
                    "unique_active_users": self.overall.users,
                    "growth_rate": growth_rate,
                    "retention_rate": percent(self.overall.users - self.overall.new_users, self.base),
                })
            }
        };
        (data.into_iter().map(Value::Object).collect(), summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn calendar_buckets_start_on_month_and_quarter_boundaries() {
        assert_eq!(
            next_bucket("day", date("2025-02-28")),
            Some(date("2025-03-01"))
        );
        assert_eq!(
            next_bucket("week", date("2025-02-26")),
            Some(date("2025-03-05"))
        );
        assert_eq!(
            next_bucket("month", date("2025-01-17")),
            Some(date("2025-02-01"))
        );
        assert_eq!(
            next_bucket("quarter", date("2025-02-17")),
            Some(date("2025-04-01"))
        );
        assert_eq!(
            next_bucket("quarter", date("2025-12-01")),
            Some(date("2026-01-01"))
        );
    }
}
