//! How berth prints things the way Docker does: decimal sizes (`4.26MB`), ages (`2 days ago`),
//! padded tables, and `--format` (Go templates, through `berth-template`).

use berth_template::{Format, MissingKey, Template};
use serde_json::Value;
use std::collections::HashMap;

pub use berth_sys::units::human_size;

pub use berth_sys::time::{human_duration, now_secs as now, parse_rfc3339};

/// Docker's `units.HumanDuration` + " ago".
pub fn ago(rfc3339: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(parse_rfc3339) else {
        return "N/A".into();
    };
    format!("{} ago", human_duration((now() - t).max(0)))
}

/// Prints rows as a table whose columns are padded to their widest cell (at least 10) plus three
/// spaces, as Docker's tabwriter does.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    // Docker's tabwriter: minimum cell width 10, padding 3.
    let mut widths: Vec<usize> = header.iter().map(|h| h.len().max(10)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Prints rows (JSON objects) in Docker's `--format` (a Go template, `table …` with a header
/// row, or `json`), by default as a table of `columns` (header, key) — the shape of every
/// listing command.
pub fn print_rows(
    rows: &[Value],
    format: Option<&str>,
    columns: &[(&str, &str)],
) -> Result<(), String> {
    let default = format!(
        "table {}",
        columns
            .iter()
            .map(|(_, k)| format!("{{{{.{k}}}}}"))
            .collect::<Vec<_>>()
            .join("\t")
    );
    let f = Format::with_default(format.unwrap_or(""), &default).map_err(|e| e.to_string())?;
    let headers: HashMap<&str, &str> = columns.iter().map(|(h, k)| (*k, *h)).collect();
    print!(
        "{}",
        f.render_rows(rows, &headers).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Renders Docker's inspect `--format` against one document: a Go template in which an
/// unknown key is an error, as in Docker.
pub fn render(template: &str, v: &Value) -> Result<String, String> {
    let t = Template::parse(template)
        .map_err(|e| format!("template parsing error: {e}"))?
        .missing_key(MissingKey::Error);
    t.execute(v).map_err(|e| e.to_string())
}

/// Prints inspect documents as Docker does: each through `--format` when one is given, else
/// one pretty JSON array.
pub fn print_documents(format: Option<&str>, docs: Vec<Value>) -> Result<(), String> {
    match format {
        Some(t) => {
            for d in &docs {
                println!("{}", render(t, d)?);
            }
        }
        None => println!(
            "{}",
            serde_json::to_string_pretty(&Value::Array(docs)).expect("serializes")
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_dockers() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(119), "About a minute");
        assert_eq!(human_duration(3599), "59 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5399), "About an hour");
        assert_eq!(human_duration(5400), "2 hours");
        assert_eq!(human_duration(47 * 3600), "47 hours");
        assert_eq!(human_duration(48 * 3600), "2 days");
    }

    #[test]
    fn rfc3339_round_trip_and_templates() {
        assert_eq!(parse_rfc3339("1970-01-02T00:00:00Z"), Some(86400));
        assert_eq!(
            parse_rfc3339("2026-11-28T05:40:04.123+01:00"),
            Some(1_795_844_404 - 3600)
        );
        let v = serde_json::json!({"Repository": "busybox", "Tag": "latest", "Labels": {"a": "b"}});
        assert_eq!(
            render("{{.Repository}}:{{.Tag}}", &v).unwrap(),
            "busybox:latest"
        );
        assert_eq!(
            render("{{.Repository}}\t{{json .Labels}}", &v).unwrap(),
            "busybox\t{\"a\":\"b\"}"
        );
        assert!(render("{{.Nope}}", &v).is_err());
    }
}
