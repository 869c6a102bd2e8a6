//! Paging of every list: `page` + `limit` (seed 000), `size` as a synonym of `limit`
//! (seed 001), `offset` (seed 003), or an opaque `cursor` (seed 003) that stays consistent
//! while rows are inserted. `limit` above 100 is refused, not clamped.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::error::{ApiError, FieldError};

/// The largest page.
pub const MAX_LIMIT: i64 = 100;

/// The paging members of a list query.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct PageQuery {
    pub page: Option<i64>,
    pub limit: Option<i64>,
    pub size: Option<i64>,
    pub offset: Option<i64>,
    pub cursor: Option<String>,
}

/// A position after which a keyset page starts: the sort key of the last row and its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort field's value in the last row (text, number or null).
    pub key: Value,
    /// The last row's id (ties on the sort key are broken by id).
    pub id: String,
}

impl Cursor {
    /// The opaque text form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("plain data"))
    }

    fn decode(text: &str) -> Option<Self> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).ok()?).ok()
    }
}

/// The query of a list that has nothing but paging (roles, clients).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub page: Option<i64>,
    pub limit: Option<i64>,
    pub size: Option<i64>,
    pub offset: Option<i64>,
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The paging it asks for (50 items by default).
    pub fn paging(self) -> Result<Paging, ApiError> {
        PageQuery {
            page: self.page,
            limit: self.limit,
            size: self.size,
            offset: self.offset,
            cursor: self.cursor,
        }
        .paging(50)
    }
}

/// How a list is paged.
#[derive(Debug, Clone, PartialEq)]
pub enum Paging {
    /// By position: `offset` rows skipped (`page` is reported back).
    Offset { offset: i64, limit: i64, page: i64 },
    /// By key: rows after `after` (the first page when `None`).
    Cursor { after: Option<Cursor>, limit: i64 },
}

impl Paging {
    /// The page size.
    pub fn limit(&self) -> i64 {
        match self {
            Self::Offset { limit, .. } | Self::Cursor { limit, .. } => *limit,
        }
    }
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::bad_request(format!("{field} {message}"))
        .with_details(json!([FieldError::new(field, message)]))
}

impl PageQuery {
    /// Validates the paging members (`default_limit` when none is given).
    pub fn paging(&self, default_limit: i64) -> Result<Paging, ApiError> {
        let limit = match (self.limit, self.size) {
            (Some(l), Some(s)) if l != s => return Err(invalid("limit", "and size disagree")),
            (Some(l), _) | (None, Some(l)) => l,
            (None, None) => default_limit,
        };
        if limit < 1 {
            return Err(invalid("limit", "must be at least 1"));
        }
        if limit > MAX_LIMIT {
            return Err(invalid("limit", &format!("must be at most {MAX_LIMIT}")));
        }
        if let Some(cursor) = &self.cursor {
            if self.page.is_some() || self.offset.is_some() {
                return Err(invalid("cursor", "cannot be combined with page or offset"));
            }
            let after = if cursor.is_empty() {
                None
            } else {
                Some(
                    Cursor::decode(cursor)
                        .ok_or_else(|| invalid("cursor", "is not a cursor of this list"))?,
                )
            };
            return Ok(Paging::Cursor { after, limit });
        }
        let (offset, page) = match (self.page, self.offset) {
            (Some(_), Some(_)) => return Err(invalid("page", "cannot be combined with offset")),
            (Some(page), None) if page < 1 => return Err(invalid("page", "must be at least 1")),
            (Some(page), None) => ((page - 1).saturating_mul(limit), page),
            (None, Some(offset)) if offset < 0 => {
                return Err(invalid("offset", "must be at least 0"));
            }
            (None, Some(offset)) => (offset, offset / limit + 1),
            (None, None) => (0, 1),
        };
        Ok(Paging::Offset {
            offset,
            limit,
            page,
        })
    }
}

/// The `pagination` member of an offset-paged list (seed 000), with seed 003's `offset` and
/// `has_more` too.
pub fn offset_json(offset: i64, limit: i64, page: i64, total: i64) -> Value {
    json!({
        "page": page,
        "limit": limit,
        "offset": offset,
        "total": total,
        "pages": (total + limit - 1) / limit,
        "has_more": offset + limit < total,
    })
}

/// The `pagination` member of a cursor-paged list (seed 003).
pub fn cursor_json(limit: i64, next: Option<&Cursor>, total: i64) -> Value {
    json!({
        "limit": limit,
        "has_more": next.is_some(),
        "next_cursor": next.map(Cursor::encode),
        "total_estimate": total,
    })
}

/// Pages a short list held in memory (clients, API keys), ordered by `(time, id)` ascending:
/// by position, or after a cursor holding the last `(time, id)` seen, so that cursor pages
/// stay consistent while items are added. Returns the page and its `pagination` member.
pub fn page_in_memory<T>(
    mut items: Vec<T>,
    paging: &Paging,
    key_of: impl Fn(&T) -> (i64, &str),
) -> (Vec<T>, Value) {
    items.sort_by(|a, b| key_of(a).cmp(&key_of(b)));
    let total = items.len() as i64;
    match paging {
        Paging::Offset {
            offset,
            limit,
            page,
        } => {
            let page_items: Vec<T> = items
                .into_iter()
                .skip(*offset as usize)
                .take(*limit as usize)
                .collect();
            (page_items, offset_json(*offset, *limit, *page, total))
        }
        Paging::Cursor { after, limit } => {
            let start = match after {
                Some(cursor) => {
                    let position = (cursor.key.as_i64().unwrap_or(i64::MIN), cursor.id.as_str());
                    items
                        .iter()
                        .position(|item| key_of(item) > position)
                        .unwrap_or(items.len())
                }
                None => 0,
            };
            let more = items.len() > start + *limit as usize;
            let page_items: Vec<T> = items
                .into_iter()
                .skip(start)
                .take(*limit as usize)
                .collect();
            let next = page_items.last().filter(|_| more).map(|last| {
                let (time, id) = key_of(last);
                Cursor {
                    key: json!(time),
                    id: id.to_owned(),
                }
            });
            (page_items, cursor_json(*limit, next.as_ref(), total))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(page: Option<i64>, limit: Option<i64>, offset: Option<i64>) -> PageQuery {
        PageQuery {
            page,
            limit,
            offset,
            ..Default::default()
        }
    }

    #[test]
    fn page_limit_size_and_offset() {
        assert_eq!(
            q(None, None, None).paging(50).unwrap(),
            Paging::Offset {
                offset: 0,
                limit: 50,
                page: 1
            }
        );
        assert_eq!(
            q(Some(3), Some(20), None).paging(50).unwrap(),
            Paging::Offset {
                offset: 40,
                limit: 20,
                page: 3
            }
        );
        assert_eq!(
            q(None, Some(25), Some(50)).paging(50).unwrap(),
            Paging::Offset {
                offset: 50,
                limit: 25,
                page: 3
            }
        );
        let size = PageQuery {
            size: Some(10),
            ..Default::default()
        };
        assert_eq!(size.paging(50).unwrap().limit(), 10);
        assert!(
            q(None, Some(101), None).paging(50).is_err(),
            "refused, not clamped"
        );
        assert!(q(Some(0), None, None).paging(50).is_err());
        assert!(q(Some(1), None, Some(0)).paging(50).is_err());
    }

    #[test]
    fn in_memory_cursor_pages_see_each_item_once() {
        let items: Vec<(i64, String)> = (0..5).map(|i| (i / 2, format!("id{i}"))).collect();
        fn key(item: &(i64, String)) -> (i64, &str) {
            (item.0, &item.1)
        }
        let first = Paging::Cursor {
            after: None,
            limit: 2,
        };
        let (page, json) = page_in_memory(items.clone(), &first, key);
        assert_eq!(page.len(), 2);
        let next = Cursor::decode(json["next_cursor"].as_str().unwrap()).unwrap();
        let (page, json) = page_in_memory(
            items.clone(),
            &Paging::Cursor {
                after: Some(next),
                limit: 10,
            },
            key,
        );
        assert_eq!(page, items[2..].to_vec());
        assert_eq!(json["has_more"], false);
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let cursor = Cursor {
            key: json!(1700000000),
            id: "u1".into(),
        };
        let query = PageQuery {
            cursor: Some(cursor.encode()),
            limit: Some(5),
            ..Default::default()
        };
        assert_eq!(
            query.paging(50).unwrap(),
            Paging::Cursor {
                after: Some(cursor),
                limit: 5
            }
        );
        let bad = PageQuery {
            cursor: Some("!!".into()),
            ..Default::default()
        };
        assert!(bad.paging(50).is_err());
        let first = PageQuery {
            cursor: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(
            first.paging(50).unwrap(),
            Paging::Cursor {
                after: None,
                limit: 50
            }
        );
    }
}
