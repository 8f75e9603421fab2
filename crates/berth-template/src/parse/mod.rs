//! The parser: lexer items to trees, one per template name (`{{define}}`/`{{block}}` add
//! more), with Go's checks (functions and variables must exist, `break` only in `range`)
//! and Go's error messages (`template: NAME:LINE: unexpected "}" in operand`). Nesting of
//! parentheses and control structures is bounded so no input can exhaust the stack.

use crate::ast::{is_empty_list, Branch, List, Node};
use crate::lex::{lex, Item, Kind};
use crate::literal::unquote;

mod pipeline;
use std::collections::HashMap;

/// How deep parentheses may nest (Go allows 10000; ours are evaluated recursively).
const MAX_PAREN_DEPTH: usize = 100;
/// How deep `if`/`range`/`with` may nest.
const MAX_CONTROL_DEPTH: usize = 100;
/// Commands in one pipeline, as Go's limit.
const MAX_PIPELINE_CMDS: usize = 100_000;

/// A parse failure: Go's complete message.
pub(crate) struct ParseError(pub String);

type Result<T> = std::result::Result<T, ParseError>;

/// What `text_or_action` found: a node, or the `{{end}}`/`{{else}}` closing a list.
enum Step {
    Node(Node),
    End,
    Else,
}

impl Step {
    fn describe(&self) -> &'static str {
        match self {
            Step::End => "{{end}}",
            Step::Else => "{{else}}",
            Step::Node(_) => "node",
        }
    }
}

pub(crate) struct Parser<'a> {
    name: &'a str,
    items: Vec<Item>,
    next: usize,
    /// The item the last `next()` returned, for `back_one`.
    last: usize,
    /// The furthest item read: Go reports the line of its newest token.
    seen: usize,
    vars: Vec<String>,
    range_depth: usize,
    paren_depth: usize,
    control_depth: usize,
    action_line: usize,
    is_func: &'a dyn Fn(&str) -> bool,
    trees: HashMap<String, List>,
}

/// Parses `text` as template `name` and the templates it defines.
pub(crate) fn parse(
    name: &str,
    text: &str,
    is_func: &dyn Fn(&str) -> bool,
) -> Result<HashMap<String, List>> {
    let mut p = Parser {
        name,
        items: lex(text, false),
        next: 0,
        last: 0,
        seen: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        paren_depth: 0,
        control_depth: 0,
        action_line: 0,
        is_func,
        trees: HashMap::new(),
    };
    let root = p.top()?;
    p.add(name.to_string(), root)?;
    Ok(p.trees)
}

impl Parser<'_> {
    fn fetch(&mut self, i: usize) -> Item {
        self.seen = self.seen.max(i);
        self.items[i].clone()
    }

    /// The next item; the final `Eof` or `Error` item repeats forever.
    fn next(&mut self) -> Item {
        self.last = self.next;
        if self.next < self.items.len() - 1 {
            self.next += 1;
        }
        self.fetch(self.last)
    }

    fn peek(&mut self) -> Item {
        self.fetch(self.next)
    }

    /// Goes back to item `to`, which was read before.
    fn back_to(&mut self, to: usize) {
        self.next = to;
    }

    /// Undoes the last `next()`.
    fn back_one(&mut self) {
        self.next = self.last;
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.kind != Kind::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let it = self.next_non_space();
        self.back_one();
        it
    }

    fn error<T>(&self, msg: impl std::fmt::Display) -> Result<T> {
        let line = self.items[self.seen].line;
        Err(ParseError(format!("template: {}:{line}: {msg}", self.name)))
    }

    fn unexpected<T>(&self, it: &Item, context: &str) -> Result<T> {
        if it.kind == Kind::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != it.line {
                extra = format!(" in action started at {}:{}", self.name, self.action_line);
                if it.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.error(format!("{}{extra}", it.val));
        }
        self.error(format!("unexpected {} in {context}", it.describe()))
    }

    fn expect(&mut self, kind: Kind, context: &str) -> Result<Item> {
        let it = self.next_non_space();
        if it.kind != kind {
            return self.unexpected(&it, context);
        }
        Ok(it)
    }

    fn add(&mut self, name: String, list: List) -> Result<()> {
        match self.trees.get(&name) {
            Some(old) if !is_empty_list(old) => {
                if !is_empty_list(&list) {
                    let q = crate::gofmt::quote(&name);
                    return self.error(format!("template: multiple definition of template {q}"));
                }
            }
            _ => {
                self.trees.insert(name, list);
            }
        }
        Ok(())
    }

    /// The top level: like `item_list`, but also takes `{{define}}` and runs to EOF.
    fn top(&mut self) -> Result<List> {
        let mut root = Vec::new();
        while self.peek().kind != Kind::Eof {
            if self.peek().kind == Kind::LeftDelim {
                let at = self.next;
                self.next();
                if self.next_non_space().kind == Kind::Define {
                    self.definition()?;
                    continue;
                }
                self.back_to(at);
            }
            match self.text_or_action()? {
                Step::Node(n) => root.push(n),
                s => return self.error(format!("unexpected {}", s.describe())),
            }
        }
        Ok(root)
    }

    /// Runs `f` with the fresh scope a new template gets: only `$`, outside any range.
    fn in_new_template<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        let r = f(self);
        self.vars = vars;
        self.range_depth = range_depth;
        r
    }

    fn definition(&mut self) -> Result<()> {
        const CONTEXT: &str = "define clause";
        let it = self.next_non_space();
        if it.kind != Kind::String && it.kind != Kind::RawString {
            return self.unexpected(&it, CONTEXT);
        }
        let name = unquote(&it.val).or_else(|e| self.error(e))?;
        self.expect(Kind::RightDelim, CONTEXT)?;
        let list = self.in_new_template(|p| {
            let (list, end) = p.item_list()?;
            if !matches!(end, Step::End) {
                return p.error(format!("unexpected {} in {CONTEXT}", end.describe()));
            }
            Ok(list)
        })?;
        self.add(name, list)
    }

    /// Nodes up to the `{{end}}` or `{{else}}` that closes them.
    fn item_list(&mut self) -> Result<(List, Step)> {
        let mut list = Vec::new();
        while self.peek_non_space().kind != Kind::Eof {
            match self.text_or_action()? {
                Step::Node(n) => list.push(n),
                end => return Ok((list, end)),
            }
        }
        self.error("unexpected EOF")
    }

    fn text_or_action(&mut self) -> Result<Step> {
        let it = self.next_non_space();
        match it.kind {
            Kind::Text => Ok(Step::Node(Node::Text {
                pos: it.pos,
                text: it.val,
            })),
            Kind::LeftDelim => {
                self.action_line = it.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => self.unexpected(&it, "input"),
        }
    }

    fn action(&mut self) -> Result<Step> {
        let it = self.next_non_space();
        let node = match it.kind {
            Kind::Block => self.block()?,
            Kind::Break | Kind::Continue => self.loop_control(&it)?,
            Kind::Else => return self.else_control(),
            Kind::End => {
                self.expect(Kind::RightDelim, "end")?;
                return Ok(Step::End);
            }
            Kind::If => Node::If(self.control("if")?),
            Kind::Range => Node::Range(self.control("range")?),
            Kind::With => Node::With(self.control("with")?),
            Kind::Template => self.template()?,
            _ => {
                self.back_one();
                let pos = self.peek().pos;
                Node::Action {
                    pos,
                    pipe: self.pipeline("command", Kind::RightDelim)?,
                }
            }
        };
        Ok(Step::Node(node))
    }

    fn loop_control(&mut self, kw: &Item) -> Result<Node> {
        let what = if kw.kind == Kind::Break {
            "{{break}}"
        } else {
            "{{continue}}"
        };
        let it = self.next_non_space();
        if it.kind != Kind::RightDelim {
            return self.unexpected(&it, what);
        }
        if self.range_depth == 0 {
            return self.error(format!("{what} outside {{{{range}}}}"));
        }
        Ok(if kw.kind == Kind::Break {
            Node::Break { pos: kw.pos }
        } else {
            Node::Continue { pos: kw.pos }
        })
    }

    fn else_control(&mut self) -> Result<Step> {
        let peek = self.peek_non_space();
        if peek.kind == Kind::If || peek.kind == Kind::With {
            return Ok(Step::Else);
        }
        self.expect(Kind::RightDelim, "else")?;
        Ok(Step::Else)
    }

    /// `if`, `range` and `with`, after the keyword; `else if`/`else with` chain.
    fn control(&mut self, context: &str) -> Result<Branch> {
        if self.control_depth >= MAX_CONTROL_DEPTH {
            return self.error("max control structure depth exceeded");
        }
        self.control_depth += 1;
        let mark = self.vars.len();
        let r = self.control_body(context);
        self.vars.truncate(mark);
        self.control_depth -= 1;
        r
    }

    fn control_body(&mut self, context: &str) -> Result<Branch> {
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        let in_range = context == "range";
        self.range_depth += usize::from(in_range);
        let listed = self.item_list();
        self.range_depth -= usize::from(in_range);
        let (list, next) = listed?;
        let mut else_list = None;
        if let Step::Else = next {
            let peek = self.peek();
            if context == "if" && peek.kind == Kind::If {
                self.next();
                else_list = Some(vec![Node::If(self.control("if")?)]);
            } else if context == "with" && peek.kind == Kind::With {
                self.next();
                else_list = Some(vec![Node::With(self.control("with")?)]);
            } else {
                let (l, end) = self.item_list()?;
                if !matches!(end, Step::End) {
                    return self.error(format!("expected end; found {}", end.describe()));
                }
                else_list = Some(l);
            }
        }
        Ok(Branch {
            pos: pipe.pos,
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&mut self, it: &Item, context: &str) -> Result<String> {
        match it.kind {
            Kind::String | Kind::RawString => unquote(&it.val).or_else(|e| self.error(e)),
            _ => self.unexpected(it, context),
        }
    }

    fn template(&mut self) -> Result<Node> {
        const CONTEXT: &str = "template clause";
        let it = self.next_non_space();
        let name = self.template_name(&it, CONTEXT)?;
        let after = self.next_non_space();
        let pipe = if after.kind != Kind::RightDelim {
            self.back_one();
            Some(self.pipeline(CONTEXT, Kind::RightDelim)?)
        } else {
            None
        };
        Ok(Node::Template {
            pos: it.pos,
            name,
            pipe,
        })
    }

    fn block(&mut self) -> Result<Node> {
        const CONTEXT: &str = "block clause";
        let it = self.next_non_space();
        let name = self.template_name(&it, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, Kind::RightDelim)?;
        let list = self.in_new_template(|p| {
            let (list, end) = p.item_list()?;
            if !matches!(end, Step::End) {
                return p.error(format!("unexpected {} in {CONTEXT}", end.describe()));
            }
            Ok(list)
        })?;
        self.add(name.clone(), list)?;
        Ok(Node::Template {
            pos: it.pos,
            name,
            pipe: Some(pipe),
        })
    }
}
