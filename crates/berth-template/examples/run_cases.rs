//! Runs JSON-lines template cases (name, tmpl, data, opt) from stdin through berth-template
//! and prints one JSON line per case (name, out, err); used by `tests/oracle/gen.py`.

use berth_template::{MissingKey, Template};
use std::io::BufRead;
fn main() {
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let c: serde_json::Value = serde_json::from_str(&line).unwrap();
        let name = c["name"].as_str().unwrap();
        let tmpl = c["tmpl"].as_str().unwrap();
        let data = c.get("data").cloned().unwrap_or(serde_json::Value::Null);
        let opt = c.get("opt").and_then(|o| o.as_str()).unwrap_or("");
        let mut res = serde_json::Map::new();
        res.insert("name".into(), name.into());
        match Template::parse(tmpl) {
            Err(e) => {
                res.insert("err".into(), e.to_string().into());
            }
            Ok(t) => {
                let t = match opt {
                    "missingkey=error" => t.missing_key(MissingKey::Error),
                    "missingkey=zero" => t.missing_key(MissingKey::Zero),
                    _ => t,
                };
                let mut out = String::new();
                if let Err(e) = t.execute_into(&mut out, &data) {
                    res.insert("err".into(), e.to_string().into());
                }
                res.insert("out".into(), out.into());
            }
        }
        println!("{}", serde_json::Value::Object(res));
    }
}
