//! Docker's `--format` conventions: tables with header rows and Docker's column alignment,
//! `--format json`, `\t` escapes, and Docker's error prefix. Expected outputs are those of
//! docker/cli's own formatter tests (TestContainerContextWrite and its golden file).

use berth_template::{Format, FormatError};
use serde_json::{json, Value};
use std::collections::HashMap;

/// docker/cli's container headers (`containerCtx.Header`).
fn container_headers() -> HashMap<&'static str, &'static str> {
    [
        ("ID", "CONTAINER ID"),
        ("Names", "NAMES"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Networks", "NETWORKS"),
        ("Platform", "PLATFORM"),
        ("HealthStatus", "HEALTH STATUS"),
    ]
    .into_iter()
    .collect()
}

/// The two containers of docker/cli's test, as `docker ps` rows.
fn rows() -> Vec<Value> {
    ["foobar_baz", "foobar_bar"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({"ID": format!("containerID{}", i + 1), "Image": "ubuntu", "Command": "\"\"",
                   "RunningFor": "24 hours ago", "Status": "", "Ports": "", "Names": name,
                   "Size": "0B", "State": "running"})
        })
        .collect()
}

const PS_DEFAULT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

fn render(format: &str) -> Result<String, FormatError> {
    Format::with_default(format, PS_DEFAULT)?.render_rows(&rows(), &container_headers())
}

#[test]
fn ps_default_table_is_aligned_as_docker_prints_it() {
    assert_eq!(
        render("table").unwrap(),
        "CONTAINER ID   IMAGE     COMMAND   CREATED        STATUS    PORTS     NAMES\n\
         containerID1   ubuntu    \"\"        24 hours ago                       foobar_baz\n\
         containerID2   ubuntu    \"\"        24 hours ago                       foobar_bar\n"
    );
    let with_size = format!("{PS_DEFAULT}\t{{{{.Size}}}}");
    assert_eq!(
        render(&with_size).unwrap(),
        "CONTAINER ID   IMAGE     COMMAND   CREATED        STATUS    PORTS     NAMES        SIZE\n\
         containerID1   ubuntu    \"\"        24 hours ago                       foobar_baz   0B\n\
         containerID2   ubuntu    \"\"        24 hours ago                       foobar_bar   0B\n"
    );
}

#[test]
fn one_column_tables_take_the_header_from_the_field() {
    assert_eq!(
        render("table {{.Image}}").unwrap(),
        "IMAGE\nubuntu\nubuntu\n"
    );
    assert_eq!(
        render("table {{.State}}").unwrap(),
        "STATE\nrunning\nrunning\n"
    );
    assert_eq!(
        render("table {{split .Image \":\"}}").unwrap(),
        "IMAGE\n[ubuntu]\n[ubuntu]\n"
    );
}

#[test]
fn header_functions_leave_titles_intact_but_pad_still_pads() {
    let f = r"table {{truncate .ID 5}}\t{{json .Image}} {{.RunningFor}}/{{title .Status}}/{{pad .Ports 2 2}}.{{upper .Names}} {{lower .Status}}";
    assert_eq!(
        render(f).unwrap(),
        "CONTAINER ID   IMAGE CREATED/STATUS/  PORTS  .NAMES STATUS\n\
         conta          \"ubuntu\" 24 hours ago//.FOOBAR_BAZ \n\
         conta          \"ubuntu\" 24 hours ago//.FOOBAR_BAR \n"
    );
}

#[test]
fn header_of_an_unknown_field_says_no_value_and_a_failing_header_keeps_its_start() {
    let out = render(r"table {{.ID}}\t{{.Nope}}").unwrap();
    assert!(out.starts_with("CONTAINER ID   <no value>\n"), "{out}");
    // `.ID 1` fails on the header map: Docker keeps what the header printed before it.
    let t = Format::parse(r"table {{.Image}}\t{{.Names}}{{.ID 1}}").unwrap();
    let err = t.render_rows(&rows(), &container_headers()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template parsing error: template: :1:23: executing \"\" at <.ID>: ID is not a method but has arguments"
    );
    assert_eq!(
        t.render_rows(&[], &container_headers()).unwrap(),
        "IMAGE     NAMES\n"
    );
}

#[test]
fn errors_carry_dockers_prefix_and_gos_position() {
    assert_eq!(
        render("{{InvalidFunction}}").unwrap_err().to_string(),
        "template parsing error: template: :1: function \"InvalidFunction\" not defined"
    );
    assert_eq!(
        render("{{nil}}").unwrap_err().to_string(),
        "template parsing error: template: :1:2: executing \"\" at <nil>: nil is not a command"
    );
    // A field of a string is an error; the position is that of `.Foo` (Go's chain node).
    assert_eq!(
        render("{{.Image}} {{.Image.Foo}}").unwrap_err().to_string(),
        "template parsing error: template: :1:19: executing \"\" at <.Image.Foo>: can't evaluate field Foo in type string"
    );
    // A missing field yields no value, and so does a field of it.
    assert_eq!(render("{{.Foo.Bar}}").unwrap(), "<no value>\n<no value>\n");
}

#[test]
fn raw_formats_render_one_line_per_row_with_tab_escapes_and_trimmed_spaces() {
    assert_eq!(render("{{.Image}}").unwrap(), "ubuntu\nubuntu\n");
    assert_eq!(
        render(r"  {{.ID}}\t{{.Names}}\n  ").unwrap(),
        "containerID1\tfoobar_baz\n\ncontainerID2\tfoobar_bar\n\n"
    );
    assert!(!Format::parse("{{.ID}}").unwrap().is_table());
    assert!(Format::parse("table{{.ID}}").unwrap().is_table());
}

#[test]
fn json_format_writes_one_object_per_line_in_the_rows_order() {
    let rows = vec![
        json!({"ID": "a1", "Names": "web", "Labels": "x=<y>&z"}),
        json!({"ID": "b2", "Size": 1.5}),
    ];
    let out = Format::parse("json")
        .unwrap()
        .render_rows(&rows, &HashMap::new())
        .unwrap();
    assert_eq!(
        out,
        "{\"ID\":\"a1\",\"Names\":\"web\",\"Labels\":\"x=<y>&z\"}\n{\"ID\":\"b2\",\"Size\":1.5}\n"
    );
    // `{{json .}}` is the same thing, spelled out.
    assert_eq!(
        Format::parse("{{json .}}")
            .unwrap()
            .render_rows(&rows, &HashMap::new())
            .unwrap(),
        out
    );
}

#[test]
fn empty_format_and_bare_table_use_the_commands_default() {
    let empty = render("").unwrap();
    assert_eq!(empty, render("table").unwrap());
    assert!(empty.starts_with("CONTAINER ID   IMAGE"));
    let no_rows = Format::with_default("", PS_DEFAULT)
        .unwrap()
        .render_rows(&[], &container_headers())
        .unwrap();
    assert_eq!(
        no_rows,
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    );
}

#[test]
fn wide_characters_count_as_two_columns_as_in_dockers_tabwriter() {
    let f = Format::parse(r"table {{.Name}}\t{{.Tag}}").unwrap();
    let rows = vec![
        json!({"Name": "日本語のイメージ", "Tag": "v1"}),
        json!({"Name": "a", "Tag": "v2"}),
    ];
    let h: HashMap<&str, &str> = [("Name", "REPOSITORY"), ("Tag", "TAG")]
        .into_iter()
        .collect();
    assert_eq!(
        f.render_rows(&rows, &h).unwrap(),
        "REPOSITORY         TAG\n日本語のイメージ   v1\na                  v2\n"
    );
}
