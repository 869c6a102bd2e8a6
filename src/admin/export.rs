//! Tabular exports (seed 004's "Export", seed 001's audit-log export): a column list and a
//! batched row source in, a file download out, as CSV, JSON or XLSX.
//!
//! # How rows are read
//! The source is a function that returns the rows *after* a key, at most `limit` of them, in a
//! fixed total order (keyset paging). The export calls it once per batch, each time through
//! [`Store::run`] on a pooled connection, and passes the key of the last row it received. A
//! batch shorter than `limit` ends the export. Rows written while an export runs are picked up
//! only if they sort after the current position, and no row is sent twice.
//!
//! # Formats
//! - **CSV** (the `csv` crate: RFC 4180 quoting) and **JSON** (an array of objects, one member
//!   per column) are **streamed**: each batch is fetched, encoded and handed to the client before
//!   the next is fetched, so memory stays flat however large the table. The first batch is
//!   fetched before the response starts, so a failing database is still answered with a proper
//!   error; a failure after that aborts the body (the client sees a truncated transfer) and is
//!   logged.
//! - **XLSX** (`rust_xlsxwriter`) is **not streamed**: a workbook is a zip archive that is
//!   written at the end, and the crate's constant-memory mode needs its `constant_memory`
//!   feature, which we do not build. The workbook is filled batch by batch and sent when
//!   complete, so its size is capped at [`Export::xlsx_row_limit`] rows; a larger result is
//!   refused with `422 export_too_large` (before anything is sent), pointing at CSV.
//!
//! # Cells
//! A cell is a JSON value. JSON exports carry it as is. CSV and XLSX write `null` as an empty
//! cell, strings as text, numbers as numbers, booleans as `true`/`false`, and objects and
//! arrays as compact JSON text. Text that a spreadsheet would take for a formula (starting with
//! `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'` in CSV and XLSX (OWASP's
//! advice against CSV injection); JSON keeps the value untouched.
//!
//! # Example: a users export
//! ```ignore
//! const COLUMNS: &[&str] = &["id", "username", "email", "status", "created_at"];
//!
//! async fn export_users(
//!     state: web::Data<AppState>,
//!     auth: Authenticated,
//!     query: web::Query<ExportQuery>,
//! ) -> Result<HttpResponse, ApiError> {
//!     auth.require("users:read")?;
//!     let format = ExportFormat::parse(query.format.as_deref(), &[ExportFormat::Csv, ExportFormat::Xlsx])?;
//!     Export::new("users", COLUMNS)
//!         .respond(&state.store, format, move |conn, after: Option<(i64, String)>, limit| {
//!             let rows = users::export_batch(conn, after.as_ref(), limit)?; // ORDER BY created_at, id
//!             Ok(rows
//!                 .into_iter()
//!                 .map(|u| {
//!                     let cells = vec![
//!                         json!(u.id), json!(u.username), json!(u.email), json!(u.status),
//!                         json!(Timestamp(u.created_at)),
//!                     ];
//!                     ((u.created_at, u.id), cells)
//!                 })
//!                 .collect())
//!         })
//!         .await
//! }
//! ```

use std::borrow::Cow;
use std::future::ready;
use std::sync::Arc;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{
    self, ContentDisposition, DispositionParam, DispositionType, HeaderValue,
};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use serde_json::{Value, json};

use crate::api::error::{ApiError, FieldError};
use crate::store::{AnyConnection, Store, StoreError};

/// One cell of an exported row.
pub type Cell = Value;

/// A batch of rows as a source returns it: each row with its keyset key (what the next call
/// receives as `after` when the row is the last of its batch) and one cell per column.
pub type Batch<K> = Vec<(K, Vec<Cell>)>;

/// The rows per batch unless [`Export::batch_size`] says otherwise.
pub const DEFAULT_BATCH_SIZE: i64 = 500;

/// The most rows an XLSX export holds unless [`Export::xlsx_row_limit`] says otherwise: the
/// workbook is built in memory (roughly 100-200 bytes a cell).
pub const DEFAULT_XLSX_ROW_LIMIT: usize = 50_000;

/// Excel's limit on the rows of a sheet, less the header.
const XLSX_MAX_ROWS: usize = 1_048_575;

/// Excel's limit on the length of a text cell; longer text is cut there in XLSX exports.
const XLSX_MAX_TEXT: usize = 32_767;

/// The media type and file extension of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `text/csv`, streamed.
    Csv,
    /// `application/json`: an array of objects, streamed.
    Json,
    /// An Excel workbook, built in memory and size-capped.
    Xlsx,
}

impl ExportFormat {
    /// Every format.
    pub const ALL: &'static [ExportFormat] = &[Self::Csv, Self::Json, Self::Xlsx];

    /// The name in the `format` query member and the file extension.
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Xlsx => "xlsx",
        }
    }

    /// The `Content-Type` of the download.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Json => "application/json",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// Parses the `format` query member: CSV when absent, one of `allowed` otherwise (case
    /// does not matter); anything else is a 422 naming the field and the accepted values.
    pub fn parse(value: Option<&str>, allowed: &[ExportFormat]) -> Result<Self, ApiError> {
        let Some(value) = value else {
            return Ok(Self::Csv);
        };
        allowed
            .iter()
            .copied()
            .find(|f| f.name().eq_ignore_ascii_case(value.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|f| f.name()).collect();
                ApiError::validation(vec![FieldError::new(
                    "format",
                    format!("must be one of {}", names.join(", ")),
                )])
            })
    }
}

/// An export under construction: the file name stem, the columns and the batch sizes. See the
/// module documentation for an example.
#[derive(Debug, Clone)]
pub struct Export {
    stem: &'static str,
    columns: &'static [&'static str],
    batch_size: i64,
    xlsx_row_limit: usize,
}

impl Export {
    /// An export of `columns`, downloaded as `<stem>-<YYYY-MM-DD>.<ext>` (today, UTC). The
    /// stem names the XLSX worksheet too, so keep it short and plain (`users`, `audit-logs`).
    pub fn new(stem: &'static str, columns: &'static [&'static str]) -> Self {
        Self {
            stem,
            columns,
            batch_size: DEFAULT_BATCH_SIZE,
            xlsx_row_limit: DEFAULT_XLSX_ROW_LIMIT,
        }
    }

    /// Sets the rows fetched per batch (at least 1).
    pub fn batch_size(mut self, rows: i64) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// Sets the most rows an XLSX export may hold (at most Excel's 1,048,575 below the header).
    pub fn xlsx_row_limit(mut self, rows: usize) -> Self {
        self.xlsx_row_limit = rows.min(XLSX_MAX_ROWS);
        self
    }

    /// The download's file name for `format`, dated today (UTC).
    pub fn file_name(&self, format: ExportFormat) -> String {
        format!(
            "{}-{}.{}",
            self.stem,
            chrono::Utc::now().format("%Y-%m-%d"),
            format.name()
        )
    }

    /// Reads the rows from `fetch` batch by batch and answers with the download.
    ///
    /// `fetch(conn, after, limit)` returns at most `limit` rows that sort after the key
    /// `after` (from the start when `None`), in a fixed total order, each with one cell per
    /// column; fewer than `limit` rows means there are no more. It runs on the blocking pool,
    /// once per batch.
    pub async fn respond<K, F>(
        self,
        store: &Store,
        format: ExportFormat,
        fetch: F,
    ) -> Result<HttpResponse, ApiError>
    where
        K: Send + 'static,
        F: Fn(&mut AnyConnection, Option<K>, i64) -> Result<Batch<K>, StoreError>
            + Send
            + Sync
            + 'static,
    {
        let mut source = Source {
            store: store.clone(),
            fetch: Arc::new(fetch),
            after: None,
            limit: self.batch_size,
            width: self.columns.len(),
            done: false,
        };
        let first = source.next().await?;
        let mut response = HttpResponse::Ok();
        response
            .insert_header((header::CONTENT_TYPE, format.content_type()))
            .insert_header(ContentDisposition {
                disposition: DispositionType::Attachment,
                parameters: vec![DispositionParam::Filename(self.file_name(format))],
            })
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ));
        if format == ExportFormat::Xlsx {
            return Ok(response.body(self.workbook(source, first).await?));
        }
        let mut encoder = Encoder::new(format, self.columns);
        let head = encoder.open(first)?;
        let rest = stream::unfold(Some((source, encoder)), |state| async move {
            let (mut source, mut encoder) = state?;
            if source.done {
                return Some((Ok(encoder.close()), None));
            }
            match source.next().await.and_then(|rows| encoder.rows(rows)) {
                Ok(chunk) => Some((Ok(chunk), Some((source, encoder)))),
                Err(error) => {
                    // The status is sent: all that is left is to cut the body short.
                    tracing::error!(%error, "export aborted after it started");
                    Some((Err(error), None))
                }
            }
        });
        Ok(response.streaming(stream::once(ready(Ok::<_, StoreError>(head))).chain(rest)))
    }

    /// Fills a workbook from `first` and the rest of `source`, then writes it out.
    async fn workbook<K, F>(
        &self,
        mut source: Source<K, F>,
        first: Vec<Vec<Cell>>,
    ) -> Result<Vec<u8>, ApiError>
    where
        K: Send + 'static,
        F: Fn(&mut AnyConnection, Option<K>, i64) -> Result<Batch<K>, StoreError>
            + Send
            + Sync
            + 'static,
    {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        // A stem that is no valid sheet name keeps the default `Sheet1`.
        let _ = sheet.set_name(self.stem.chars().take(31).collect::<String>());
        let bold = Format::new().set_bold();
        for (col, name) in self.columns.iter().enumerate() {
            sheet
                .write_string_with_format(0, col as u16, *name, &bold)
                .map_err(xlsx_error)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(xlsx_error)?;
        let mut written = 0usize;
        let mut rows = first;
        loop {
            if written + rows.len() > self.xlsx_row_limit {
                return Err(too_large(self.xlsx_row_limit));
            }
            for cells in rows {
                written += 1;
                for (col, cell) in cells.iter().enumerate() {
                    write_xlsx_cell(sheet, written as u32, col as u16, cell).map_err(xlsx_error)?;
                }
            }
            if source.done {
                break;
            }
            rows = source.next().await?;
        }
        // Compressing the archive is CPU work: off the executor.
        tokio::task::spawn_blocking(move || workbook.save_to_buffer())
            .await
            .map_err(|e| anyhow::anyhow!("the workbook task failed: {e}"))?
            .map_err(xlsx_error)
    }
}

/// The batch source: the caller's fetch function and the keyset position.
struct Source<K, F> {
    store: Store,
    fetch: Arc<F>,
    after: Option<K>,
    limit: i64,
    width: usize,
    done: bool,
}

impl<K, F> Source<K, F>
where
    K: Send + 'static,
    F: Fn(&mut AnyConnection, Option<K>, i64) -> Result<Batch<K>, StoreError>
        + Send
        + Sync
        + 'static,
{
    /// The next batch's cells (empty once done).
    async fn next(&mut self) -> Result<Vec<Vec<Cell>>, StoreError> {
        if self.done {
            return Ok(Vec::new());
        }
        let (fetch, after, limit) = (self.fetch.clone(), self.after.take(), self.limit);
        let batch = self
            .store
            .run(move |conn| fetch(conn, after, limit))
            .await?;
        if (batch.len() as i64) < self.limit {
            self.done = true;
        }
        let mut rows = Vec::with_capacity(batch.len());
        for (key, cells) in batch {
            if cells.len() != self.width {
                return Err(StoreError::Corrupt(anyhow::anyhow!(
                    "an export row has {} cells for {} columns",
                    cells.len(),
                    self.width
                )));
            }
            self.after = Some(key);
            rows.push(cells);
        }
        Ok(rows)
    }
}

/// Encodes batches of rows as CSV or as the members of a JSON array.
struct Encoder {
    format: ExportFormat,
    columns: &'static [&'static str],
    rows_written: u64,
}

impl Encoder {
    fn new(format: ExportFormat, columns: &'static [&'static str]) -> Self {
        Self {
            format,
            columns,
            rows_written: 0,
        }
    }

    /// The start of the file (CSV header, `[`) followed by the first rows.
    fn open(&mut self, rows: Vec<Vec<Cell>>) -> Result<Bytes, StoreError> {
        let mut out = match self.format {
            ExportFormat::Json => b"[".to_vec(),
            _ => {
                let mut writer = csv::Writer::from_writer(Vec::new());
                writer.write_record(self.columns).map_err(csv_error)?;
                writer.into_inner().map_err(csv_error)?
            }
        };
        out.extend_from_slice(&self.rows(rows)?);
        Ok(Bytes::from(out))
    }

    /// The encoded rows.
    fn rows(&mut self, rows: Vec<Vec<Cell>>) -> Result<Bytes, StoreError> {
        let out = match self.format {
            ExportFormat::Json => {
                let mut out = Vec::new();
                for cells in rows {
                    out.extend_from_slice(if self.rows_written == 0 {
                        b"\n"
                    } else {
                        b",\n"
                    });
                    out.extend_from_slice(json_object(self.columns, cells).as_bytes());
                    self.rows_written += 1;
                }
                out
            }
            _ => {
                let mut writer = csv::Writer::from_writer(Vec::new());
                for cells in rows {
                    for cell in &cells {
                        writer
                            .write_field(text_cell(cell).as_ref())
                            .map_err(csv_error)?;
                    }
                    writer
                        .write_record(std::iter::empty::<&[u8]>())
                        .map_err(csv_error)?;
                    self.rows_written += 1;
                }
                writer.into_inner().map_err(csv_error)?
            }
        };
        Ok(Bytes::from(out))
    }

    /// The end of the file.
    fn close(&self) -> Bytes {
        match self.format {
            ExportFormat::Json if self.rows_written == 0 => Bytes::from_static(b"]\n"),
            ExportFormat::Json => Bytes::from_static(b"\n]\n"),
            _ => Bytes::new(),
        }
    }
}

/// A JSON object with one member per column, in column order.
fn json_object(columns: &[&str], cells: Vec<Cell>) -> String {
    let mut out = String::from("{");
    for (i, (name, cell)) in columns.iter().zip(cells).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::from(*name).to_string());
        out.push(':');
        out.push_str(&cell.to_string());
    }
    out.push('}');
    out
}

/// Whether a spreadsheet would read text as a formula (OWASP, "CSV Injection").
fn looks_like_formula(text: &str) -> bool {
    text.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// A cell as the text of a CSV field or an XLSX text cell: formula-looking text prefixed with
/// `'`.
fn text_cell(cell: &Cell) -> Cow<'_, str> {
    let text = match cell {
        Value::Null => return Cow::Borrowed(""),
        Value::Bool(b) => return Cow::Borrowed(if *b { "true" } else { "false" }),
        // A number is never a formula, even a negative one.
        Value::Number(n) => return Cow::Owned(n.to_string()),
        Value::String(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(other.to_string()),
    };
    if looks_like_formula(&text) {
        Cow::Owned(format!("'{text}"))
    } else {
        text
    }
}

/// Writes one cell of an XLSX row; integers beyond 2^53 become text so no digit is lost.
fn write_xlsx_cell(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    cell: &Cell,
) -> Result<(), XlsxError> {
    const EXACT: i64 = 1 << 53;
    match cell {
        Value::Null => {}
        Value::Bool(b) => {
            sheet.write_boolean(row, col, *b)?;
        }
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) if (-EXACT..=EXACT).contains(&i) => {
                sheet.write_number(row, col, i as f64)?;
            }
            (None, Some(f)) if n.as_u64().is_none() => {
                sheet.write_number(row, col, f)?;
            }
            _ => {
                sheet.write_string(row, col, n.to_string())?;
            }
        },
        other => {
            let text = text_cell(other);
            let text = match text.char_indices().nth(XLSX_MAX_TEXT) {
                Some((cut, _)) => &text[..cut],
                None => &text,
            };
            sheet.write_string(row, col, text)?;
        }
    }
    Ok(())
}

fn csv_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(anyhow::anyhow!("CSV encoding failed: {error}"))
}

fn xlsx_error(error: XlsxError) -> ApiError {
    ApiError::from(anyhow::anyhow!("XLSX encoding failed: {error}"))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "export_too_large",
        format!("An xlsx export holds at most {limit} rows; narrow the filters or use format=csv"),
    )
    .with_details(json!({"format": "xlsx", "max_rows": limit}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_of(rows: Vec<Vec<Cell>>) -> String {
        let mut encoder = Encoder::new(ExportFormat::Csv, &["a", "b"]);
        let mut out = encoder.open(rows).unwrap().to_vec();
        out.extend_from_slice(&encoder.close());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_parse_with_csv_as_the_default() {
        assert_eq!(
            ExportFormat::parse(None, ExportFormat::ALL).unwrap(),
            ExportFormat::Csv
        );
        assert_eq!(
            ExportFormat::parse(Some("XLSX"), ExportFormat::ALL).unwrap(),
            ExportFormat::Xlsx
        );
        let refused = ExportFormat::parse(Some("json"), &[ExportFormat::Csv]).unwrap_err();
        assert_eq!(refused.code(), "validation_error");
        assert_eq!(refused.body()["details"][0]["field"], "format");
        assert!(ExportFormat::parse(Some("pdf"), ExportFormat::ALL).is_err());
    }

    #[test]
    fn csv_quotes_and_neutralises_formulas() {
        let text = csv_of(vec![
            vec![json!("a, \"b\"\nc"), json!(null)],
            vec![json!("=1+1"), json!(-5)],
            vec![json!({"k": "v"}), json!(true)],
            vec![json!("@SUM(A1)"), json!("+x")],
        ]);
        assert_eq!(
            text,
            "a,b\n\"a, \"\"b\"\"\nc\",\n'=1+1,-5\n\"{\"\"k\"\":\"\"v\"\"}\",true\n'@SUM(A1),'+x\n"
        );
    }

    #[test]
    fn json_is_an_array_of_objects_in_column_order() {
        let mut encoder = Encoder::new(ExportFormat::Json, &["b", "a"]);
        let mut out = encoder
            .open(vec![vec![json!(1), json!("=x")]])
            .unwrap()
            .to_vec();
        out.extend_from_slice(
            &encoder
                .rows(vec![vec![json!(null), json!({"k": [1]})]])
                .unwrap(),
        );
        out.extend_from_slice(&encoder.close());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("[\n{\"b\":1,\"a\":\"=x\"},\n"), "{text}");
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            json!([{"b": 1, "a": "=x"}, {"b": null, "a": {"k": [1]}}])
        );

        let mut empty = Encoder::new(ExportFormat::Json, &["a"]);
        let mut out = empty.open(Vec::new()).unwrap().to_vec();
        out.extend_from_slice(&empty.close());
        assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), json!([]));
    }
}
