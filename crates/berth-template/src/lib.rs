//! berth-template: Go's `text/template` for `--format`, over `serde_json::Value` data, with
//! Docker's extra functions and its table/json output conventions ([`Format`]).
//! It parses and executes templates and formats rows; it never prints, reads files or
//! calls out. Errors carry Go's messages and positions; no input panics or recurses without
//! bound. The README beside this crate lists what is supported, the data model (how JSON maps
//! to Go's types) and the few deliberate differences from Go.
//!
//! ```
//! use berth_template::{Format, Template};
//! use serde_json::json;
//!
//! let t = Template::parse("{{range .Names}}{{upper .}} {{end}}").unwrap();
//! assert_eq!(t.execute(&json!({"Names": ["web", "db"]})).unwrap(), "WEB DB ");
//!
//! let f = Format::parse("table {{.ID}}\\t{{.Image}}").unwrap();
//! let headers = [("ID", "CONTAINER ID"), ("Image", "IMAGE")].into_iter().collect();
//! let out = f.render_rows(&[json!({"ID": "3f4e", "Image": "busybox"})], &headers).unwrap();
//! assert_eq!(out, "CONTAINER ID   IMAGE\n3f4e           busybox\n");
//! ```
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

mod ast;
mod docker;
mod escape;
mod exec;
mod format;
mod funcs;
mod gofloat;
mod gofmt;
mod lex;
mod literal;
mod parse;
mod quote;
mod tabwriter;
mod value;

use std::collections::HashMap;

pub use format::{Format, FormatError};

/// What a field that is not in an object yields (Go's `missingkey` option).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// `<no value>` when printed, false in `if`: Go's default, and Docker's for lists.
    #[default]
    Default,
    /// The zero value of the object's element type (`""` for string maps), else no value.
    Zero,
    /// An error naming the key: what `docker inspect --format` effectively does.
    Error,
}

/// Why a template could not be parsed or executed; the message is Go's, position included
/// (`template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    kind: ErrorKind,
    message: String,
}

/// Whether a [`TemplateError`] came from parsing or from execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Parse,
    Exec,
}

impl TemplateError {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// A parsed template with the templates it defines, ready to run on JSON data.
#[derive(Debug)]
pub struct Template {
    name: String,
    source: String,
    trees: HashMap<String, ast::List>,
    missing_key: MissingKey,
}

impl Template {
    /// Parses `text` as Docker does (`templates.Parse`): an unnamed template with Go's
    /// builtins and Docker's functions.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        Template::parse_named("", text)
    }

    /// Parses `text` as the template `name` (the name appears in error messages).
    pub fn parse_named(name: &str, text: &str) -> Result<Template, TemplateError> {
        let trees = parse::parse(name, text, &funcs::is_func).map_err(|e| TemplateError {
            kind: ErrorKind::Parse,
            message: e.0,
        })?;
        Ok(Template {
            name: name.to_string(),
            source: text.to_string(),
            trees,
            missing_key: MissingKey::Default,
        })
    }

    /// Sets what a missing object key yields.
    pub fn missing_key(mut self, missing_key: MissingKey) -> Template {
        self.missing_key = missing_key;
        self
    }

    /// Runs the template with `data` as dot, returning the output.
    pub fn execute(&self, data: &serde_json::Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        self.execute_into(&mut out, data)?;
        Ok(out)
    }

    /// Runs the template, appending to `out`; on error, what was written before it stays,
    /// as with Go's writer.
    pub fn execute_into(
        &self,
        out: &mut String,
        data: &serde_json::Value,
    ) -> Result<(), TemplateError> {
        self.run(out, data, exec::Funcs::Docker)
    }

    fn run(
        &self,
        out: &mut String,
        data: &serde_json::Value,
        funcs: exec::Funcs,
    ) -> Result<(), TemplateError> {
        exec::Exec::new(self, funcs, out)
            .run(data)
            .map_err(|e| TemplateError {
                kind: ErrorKind::Exec,
                message: e.0,
            })
    }

    /// The names of the templates defined (the top-level one included), sorted.
    pub fn defined(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.trees.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Go's parse-tree rendering (`Tree.Root.String()`), text nodes quoted as Go's tests
    /// print them; for tests and debugging.
    #[doc(hidden)]
    pub fn tree_string(&self, name: &str) -> Option<String> {
        let mut s = String::new();
        ast::write_list(&mut s, self.trees.get(name)?, true).ok()?;
        Some(s)
    }
}

#[doc(hidden)]
pub mod testing {
    //! Access to internals for the crate's own tests (Go's lexer vectors).

    /// Lexes `text` with comments emitted; each item as (kind name, value).
    pub fn lex(text: &str) -> Vec<(String, String)> {
        crate::lex::lex(text, true)
            .into_iter()
            .map(|i| (format!("{:?}", i.kind), i.val))
            .collect()
    }

    /// Lexes `text`; each item as (kind name, byte offset, value, line).
    pub fn lex_pos(text: &str) -> Vec<(String, usize, String, usize)> {
        crate::lex::lex(text, true)
            .into_iter()
            .map(|i| (format!("{:?}", i.kind), i.pos, i.val, i.line))
            .collect()
    }
}
