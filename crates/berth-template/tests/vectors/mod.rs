//! Test vectors shared by the table tests, and the runner that checks one table.

#![allow(dead_code)]

pub mod berth;
pub mod go_exec;

use berth_template::{MissingKey, Template};

/// Runs every row; returns the failures, each described in one line.
pub fn check(rows: &[go_exec::Row]) -> Vec<String> {
    let mut failures = Vec::new();
    for &(name, tmpl, data, opt, want_out, want_err) in rows {
        let data: serde_json::Value = serde_json::from_str(data).expect("vector data is JSON");
        let (out, err) = match Template::parse(tmpl) {
            Err(e) => (String::new(), Some(e.to_string())),
            Ok(t) => {
                let t = match opt {
                    "missingkey=error" => t.missing_key(MissingKey::Error),
                    "missingkey=zero" => t.missing_key(MissingKey::Zero),
                    _ => t,
                };
                let mut out = String::new();
                let err = t.execute_into(&mut out, &data).err().map(|e| e.to_string());
                (out, err)
            }
        };
        if out != want_out || err.as_deref() != want_err {
            failures.push(format!(
                "{name}: {tmpl:?}\n    want {want_out:?} {want_err:?}\n    got  {out:?} {err:?}"
            ));
        }
    }
    failures
}
