//! The parse tree, shaped like Go's `text/template/parse` nodes, and its `Display`, which
//! prints a node the way Go's `String()` does: error messages quote nodes in that form
//! (`executing "" at <index .Names 0>`). Holds data only; no evaluation here.

use std::fmt::{self, Display, Formatter, Write};

/// A byte offset into the template source.
pub(crate) type Pos = usize;

/// A list of nodes: the body of a template or of a control structure.
pub(crate) type List = Vec<Node>;

#[derive(Debug)]
pub(crate) enum Node {
    Text {
        pos: Pos,
        text: String,
    },
    Action {
        pos: Pos,
        pipe: Pipe,
    },
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: Pos,
        name: String,
        pipe: Option<Pipe>,
    },
    Break {
        pos: Pos,
    },
    Continue {
        pos: Pos,
    },
}

/// `if`, `range` and `with`: a pipeline, a body and an optional `else` body.
#[derive(Debug)]
pub(crate) struct Branch {
    pub pos: Pos,
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

/// `$x := cmd | cmd …`: declared (or assigned) variables and the commands.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub pos: Pos,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

/// One command: an operand followed by arguments, in the manner of a shell.
#[derive(Debug)]
pub(crate) struct Command {
    pub pos: Pos,
    pub args: Vec<Operand>,
}

/// A number literal as Go's parser classifies it: which Go types can hold it exactly.
#[derive(Debug, Clone, Default)]
pub(crate) struct Number {
    pub text: String,
    pub is_int: bool,
    pub is_uint: bool,
    pub is_float: bool,
    pub int: i64,
    pub uint: u64,
    pub float: f64,
}

#[derive(Debug)]
pub(crate) enum Operand {
    /// `.A.B`: the names without dots.
    Field {
        pos: Pos,
        idents: Vec<String>,
    },
    /// `$x.A.B`: the first name is the variable, with its `$`.
    Variable {
        pos: Pos,
        idents: Vec<String>,
    },
    /// `(pipeline).A.B` and other terms followed by fields.
    Chain {
        pos: Pos,
        node: Box<Operand>,
        fields: Vec<String>,
    },
    Identifier {
        pos: Pos,
        name: String,
    },
    Dot {
        pos: Pos,
    },
    Nil {
        pos: Pos,
    },
    Bool {
        pos: Pos,
        val: bool,
    },
    Number {
        pos: Pos,
        num: Number,
    },
    /// The string as written (with quotes) and its value.
    String {
        pos: Pos,
        quoted: String,
        text: String,
    },
    Pipe(Box<Pipe>),
}

impl Operand {
    pub fn pos(&self) -> Pos {
        match self {
            Operand::Field { pos, .. }
            | Operand::Variable { pos, .. }
            | Operand::Chain { pos, .. }
            | Operand::Identifier { pos, .. }
            | Operand::Dot { pos }
            | Operand::Nil { pos }
            | Operand::Bool { pos, .. }
            | Operand::Number { pos, .. }
            | Operand::String { pos, .. } => *pos,
            Operand::Pipe(p) => p.pos,
        }
    }
}

impl Node {
    pub fn pos(&self) -> Pos {
        match self {
            Node::Text { pos, .. }
            | Node::Action { pos, .. }
            | Node::Template { pos, .. }
            | Node::Break { pos }
            | Node::Continue { pos } => *pos,
            Node::If(b) | Node::Range(b) | Node::With(b) => b.pos,
        }
    }
}

/// Go's `IsEmptyTree`: only spaces (and comments, which are not kept).
pub(crate) fn is_empty_list(list: &List) -> bool {
    list.iter()
        .all(|n| matches!(n, Node::Text { text, .. } if text.trim().is_empty()))
}

/// Writes a list the way Go's `ListNode.String` does; `quote_text` is Go's test mode
/// (`textFormat = "%q"`), which quotes text nodes.
pub(crate) fn write_list(f: &mut impl Write, list: &List, quote_text: bool) -> fmt::Result {
    for n in list {
        write_node(f, n, quote_text)?;
    }
    Ok(())
}

fn write_node(f: &mut impl Write, n: &Node, quote_text: bool) -> fmt::Result {
    match n {
        Node::Text { text, .. } if quote_text => f.write_str(&crate::gofmt::quote(text)),
        Node::Text { text, .. } => f.write_str(text),
        Node::Action { pipe, .. } => write!(f, "{{{{{pipe}}}}}"),
        Node::If(b) => write_branch(f, "if", b, quote_text),
        Node::Range(b) => write_branch(f, "range", b, quote_text),
        Node::With(b) => write_branch(f, "with", b, quote_text),
        Node::Template {
            name, pipe: None, ..
        } => {
            write!(f, "{{{{template {}}}}}", crate::gofmt::quote(name))
        }
        Node::Template {
            name,
            pipe: Some(p),
            ..
        } => {
            write!(f, "{{{{template {} {p}}}}}", crate::gofmt::quote(name))
        }
        Node::Break { .. } => f.write_str("{{break}}"),
        Node::Continue { .. } => f.write_str("{{continue}}"),
    }
}

fn write_branch(f: &mut impl Write, name: &str, b: &Branch, quote_text: bool) -> fmt::Result {
    write!(f, "{{{{{name} {}}}}}", b.pipe)?;
    write_list(f, &b.list, quote_text)?;
    if let Some(e) = &b.else_list {
        f.write_str("{{else}}")?;
        write_list(f, e, quote_text)?;
    }
    f.write_str("{{end}}")
}

impl Display for Node {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_node(f, self, false)
    }
}

impl Display for Pipe {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl Display for Command {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match a {
                Operand::Pipe(p) => write!(f, "({p})")?,
                a => write!(f, "{a}")?,
            }
        }
        Ok(())
    }
}

impl Display for Operand {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Field { idents, .. } => {
                for id in idents {
                    write!(f, ".{id}")?;
                }
                Ok(())
            }
            Operand::Variable { idents, .. } => f.write_str(&idents.join(".")),
            Operand::Chain { node, fields, .. } => {
                match node.as_ref() {
                    Operand::Pipe(p) => write!(f, "({p})")?,
                    n => write!(f, "{n}")?,
                }
                for id in fields {
                    write!(f, ".{id}")?;
                }
                Ok(())
            }
            Operand::Identifier { name, .. } => f.write_str(name),
            Operand::Dot { .. } => f.write_str("."),
            Operand::Nil { .. } => f.write_str("nil"),
            Operand::Bool { val, .. } => write!(f, "{val}"),
            Operand::Number { num, .. } => f.write_str(&num.text),
            Operand::String { quoted, .. } => f.write_str(quoted),
            Operand::Pipe(p) => write!(f, "{p}"),
        }
    }
}
