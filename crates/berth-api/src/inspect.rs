//! The container inspect document as Docker's clients decode it. The engine keeps `HostConfig`
//! as the options were given (`--tmpfs /run:size=1m`, `--ulimit nofile=10:20`, `--log-opt k=v`);
//! Go decodes these fields strictly, so each is given Docker's type here: maps for `Tmpfs` and
//! `LogConfig.Config`, objects for `Devices` and `Ulimits`, `MaximumRetryCount` in the restart
//! policy. A field already in Docker's shape is left as it is.

use serde_json::{json, Map, Value};

/// `["k=v", …]` (or `["k:v"]` with `sep`) as `{"k": "v"}`; a map stays a map.
fn to_map(v: &Value, sep: char) -> Value {
    match v {
        Value::Array(items) => Value::Object(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|s| {
                    let (k, v) = s.split_once(sep).unwrap_or((s, ""));
                    (k.to_string(), Value::from(v))
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Null => json!({}),
        other => other.clone(),
    }
}

/// `["/dev/x:/dev/y:rwm"]` as Docker's device mappings.
fn devices(v: &Value) -> Value {
    let Value::Array(items) = v else {
        return json!([]);
    };
    Value::Array(
        items
            .iter()
            .map(|d| match d.as_str() {
                Some(s) => {
                    let mut p = s.splitn(3, ':');
                    let host = p.next().unwrap_or("");
                    let inside = p.next().filter(|x| !x.is_empty()).unwrap_or(host);
                    let perms = p.next().unwrap_or("rwm");
                    json!({"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": perms})
                }
                None => d.clone(),
            })
            .collect(),
    )
}

/// `["nofile=10:20"]` as Docker's ulimits.
fn ulimits(v: &Value) -> Value {
    let Value::Array(items) = v else {
        return json!([]);
    };
    Value::Array(
        items
            .iter()
            .map(|u| match u.as_str() {
                Some(s) => {
                    let (name, limits) = s.split_once('=').unwrap_or((s, "0"));
                    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
                    json!({"Name": name, "Soft": soft.parse::<i64>().unwrap_or(0), "Hard": hard.parse::<i64>().unwrap_or(0)})
                }
                None => u.clone(),
            })
            .collect(),
    )
}

/// Gives the document's `HostConfig` Docker's types (see the module's comment).
pub fn docker_shapes(doc: &mut Value, restart_policy: &str) {
    let Some(hc) = doc.get_mut("HostConfig").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(t) = hc.get("Tmpfs") {
        let m = to_map(t, ':');
        hc.insert("Tmpfs".into(), m);
    }
    if let Some(d) = hc.get("Devices") {
        let d = devices(d);
        hc.insert("Devices".into(), d);
    }
    if let Some(u) = hc.get("Ulimits") {
        let u = ulimits(u);
        hc.insert("Ulimits".into(), u);
    }
    if let Some(lc) = hc.get_mut("LogConfig").and_then(Value::as_object_mut) {
        let c = to_map(lc.get("Config").unwrap_or(&Value::Null), '=');
        lc.insert("Config".into(), c);
    }
    let (name, count) = match restart_policy.split_once(':') {
        Some((n, c)) => (n, c.parse::<u64>().unwrap_or(0)),
        None => (restart_policy, 0),
    };
    hc.insert(
        "RestartPolicy".into(),
        json!({"Name": if name.is_empty() { "no" } else { name }, "MaximumRetryCount": count}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_config_fields_take_dockers_types() {
        let mut doc = json!({"HostConfig": {"Tmpfs": ["/run:size=1m", "/x"], "Devices": ["/dev/fuse"],
            "Ulimits": ["nofile=10:20"], "LogConfig": {"Type": "json-file", "Config": ["max-size=1m"]},
            "RestartPolicy": {"Name": "on-failure"}}});
        docker_shapes(&mut doc, "on-failure:3");
        let hc = &doc["HostConfig"];
        assert_eq!(hc["Tmpfs"], json!({"/run": "size=1m", "/x": ""}));
        assert_eq!(hc["Devices"][0]["PathInContainer"], "/dev/fuse");
        assert_eq!(
            hc["Ulimits"][0],
            json!({"Name": "nofile", "Soft": 10, "Hard": 20})
        );
        assert_eq!(hc["LogConfig"]["Config"], json!({"max-size": "1m"}));
        assert_eq!(
            hc["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        let again = doc.clone();
        docker_shapes(&mut doc, "on-failure:3");
        assert_eq!(doc, again, "a document in Docker's shape stays as it is");
    }
}
