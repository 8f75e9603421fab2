//! Docker's `--format` layer over templates: `json` (one JSON object per line), `table …`
//! (a header row from the caller's field names, columns aligned by Docker's tabwriter) and
//! any other template (one rendering per row); `\t` and `\n` written as two characters
//! become a tab and a newline. Errors read as Docker's: `template parsing error: …`.

use crate::exec::Funcs;
use crate::{Template, TemplateError};
use serde_json::Value;
use std::collections::HashMap;

/// A parsed `--format` value.
#[derive(Debug)]
pub enum Format {
    /// `--format json`: each row as one line of JSON.
    Json,
    /// `--format 'table …'`: a header row, then the rows, in aligned columns. A bare
    /// `table` holds an empty template: use [`Format::with_default`] for the command's
    /// default columns.
    Table(Template),
    /// Any other template, rendered once per row.
    Raw(Template),
}

/// A `--format` that failed to parse or to render, worded as Docker prints it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template parsing error: {0}")]
pub struct FormatError(pub TemplateError);

impl Format {
    /// Parses a `--format` value the way docker/cli's formatter does.
    pub fn parse(s: &str) -> Result<Format, FormatError> {
        if s == "json" {
            return Ok(Format::Json);
        }
        let (table, body) = match s.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let t = Template::parse(&body).map_err(FormatError)?;
        Ok(if table {
            Format::Table(t)
        } else {
            Format::Raw(t)
        })
    }

    /// Parses `s`, using the command's `default` format when `s` is empty or a bare
    /// `table`, as each docker command does (`docker ps` → `table {{.ID}}\t…`).
    pub fn with_default(s: &str, default: &str) -> Result<Format, FormatError> {
        if s.is_empty() || s == "table" {
            return Format::parse(default);
        }
        Format::parse(s)
    }

    /// Whether this format prints a header row and aligns columns.
    pub fn is_table(&self) -> bool {
        matches!(self, Format::Table(_))
    }

    /// Renders `rows` (one JSON object each), every one followed by a newline. For a table,
    /// the header row comes first: the template run on `headers` (field name → column title,
    /// e.g. `"ID" → "CONTAINER ID"`) with Docker's header functions, where `json`, `join`,
    /// `lower`… return the title unchanged and a failing header keeps what it printed.
    /// Nothing is returned on a row error, as Docker prints nothing then.
    pub fn render_rows(
        &self,
        rows: &[Value],
        headers: &HashMap<&str, &str>,
    ) -> Result<String, FormatError> {
        match self {
            Format::Json => {
                let mut out = String::new();
                for r in rows {
                    out.push_str(&crate::docker::json(&crate::value::Val::from_json(r)));
                    out.push('\n');
                }
                Ok(out)
            }
            Format::Raw(t) => render(t, rows),
            Format::Table(t) => {
                let mut text = header_row(t, headers);
                text.push('\n');
                text.push_str(&render(t, rows)?);
                Ok(crate::tabwriter::align(
                    &text,
                    crate::tabwriter::MIN_WIDTH,
                    crate::tabwriter::PADDING,
                ))
            }
        }
    }
}

fn render(t: &Template, rows: &[Value]) -> Result<String, FormatError> {
    let mut out = String::new();
    for r in rows {
        t.execute_into(&mut out, r).map_err(FormatError)?;
        out.push('\n');
    }
    Ok(out)
}

/// The header line: the template over the header map, errors ignored as Docker does.
fn header_row(t: &Template, headers: &HashMap<&str, &str>) -> String {
    let mut keys: Vec<&&str> = headers.keys().collect();
    keys.sort();
    let map: serde_json::Map<String, Value> = keys
        .into_iter()
        .map(|k| (k.to_string(), Value::String(headers[*k].to_string())))
        .collect();
    let data = Value::Object(map);
    let mut out = String::new();
    let _ignored = t.run(&mut out, &data, Funcs::Header);
    out
}
