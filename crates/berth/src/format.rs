//! How berth prints things the way Docker does: decimal sizes (`4.26MB`), ages (`2 days ago`),
//! padded tables, and the small part of Go's templates people put in `--format`.

use serde_json::Value;

pub use berth_sys::units::human_size;

pub use berth_sys::time::{now_secs as now, parse_rfc3339};

/// Docker's `units.HumanDuration` + " ago".
pub fn ago(rfc3339: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(parse_rfc3339) else {
        return "N/A".into();
    };
    let secs = (now() - t).max(0);
    let s = match secs {
        0 => "Less than a second".to_string(),
        1..=59 => format!("{secs} seconds"),
        60..=119 => "About a minute".to_string(),
        120..=3599 => format!("{} minutes", secs / 60),
        3600..=7199 => "About an hour".to_string(),
        7200..=172_799 => format!("{} hours", secs / 3600),
        172_800..=1_209_599 => format!("{} days", secs / 86400),
        1_209_600..=5_183_999 => format!("{} weeks", secs / 604_800),
        5_184_000..=63_071_999 => format!("{} months", secs / 2_592_000),
        _ => format!("{} years", secs / 31_536_000),
    };
    format!("{s} ago")
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

/// Prints rows (JSON objects) with `--format` when given, else as a table of `columns`
/// (header, key) — the shape of every listing command.
pub fn print_rows(
    rows: &[Value],
    format: Option<&str>,
    columns: &[(&str, &str)],
) -> Result<(), String> {
    if let Some(f) = format {
        for r in rows {
            println!("{}", render(f, r)?);
        }
        return Ok(());
    }
    let header: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|(_, k)| r[*k].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .collect();
    print_table(&header, &table);
    Ok(())
}

/// Renders a Go-template-like `--format` against a JSON object: `{{.Field}}`, `{{json .}}`,
/// `{{json .Field}}`, and `table` prefix (handled by the caller via `is_table`). `\t` becomes a tab.
pub fn render(template: &str, v: &Value) -> Result<String, String> {
    let t = template
        .strip_prefix("table")
        .map(str::trim_start)
        .unwrap_or(template);
    let t = t.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = t.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| format!("template {template:?}: unclosed action"))?
            + start;
        let action = rest[start + 2..end].trim();
        out.push_str(
            &eval(action, v)
                .ok_or_else(|| format!("template {template:?}: can't evaluate {action:?}"))?,
        );
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup<'a>(path: &str, v: &'a Value) -> Option<&'a Value> {
    if path == "." {
        return Some(v);
    }
    let mut cur = v;
    for part in path.trim_start_matches('.').split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn eval(action: &str, v: &Value) -> Option<String> {
    if let Some(arg) = action.strip_prefix("json ") {
        return serde_json::to_string(lookup(arg.trim(), v)?).ok();
    }
    if !action.starts_with('.') {
        return None;
    }
    Some(match lookup(action, v)? {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|x| x
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string()))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            render("table {{.Repository}}\\t{{json .Labels}}", &v).unwrap(),
            "busybox\t{\"a\":\"b\"}"
        );
        assert!(render("{{.Nope}}", &v).is_err());
    }
}
