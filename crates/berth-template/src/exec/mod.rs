//! The evaluator: walks a parsed template over JSON data, appending to a `String`. Follows
//! Go's `text/template` exec rules (pipelines, variables, `range`/`break`/`continue`, field
//! lookup on maps, `missingkey`), and reports errors with Go's location and context
//! (`template: :1:2: executing "" at <.X>: …`). Depth and total work are bounded.

use crate::ast::{Branch, Command, List, Node, Operand, Pipe, Pos};

mod eval;
use crate::value::{Elem, Typed, Val};
use crate::Template;
use serde_json::Value;

/// Nesting of template calls, control bodies and parenthesized pipelines (Go allows 100000
/// template calls on a growable stack; ours is the thread's).
pub(crate) const MAX_DEPTH: usize = 1000;
/// Nodes visited plus range iterations in one execution.
pub(crate) const MAX_STEPS: u64 = 20_000_000;
/// Bytes of output from one execution.
pub(crate) const MAX_OUTPUT: usize = 256 << 20;

/// Which function set the template runs with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Funcs {
    Docker,
    Header,
}

/// The node execution is at, for error messages.
#[derive(Clone, Copy)]
pub(crate) enum At<'t> {
    Node(&'t Node),
    Pipe(&'t Pipe),
    Cmd(&'t Command),
    Op(&'t Operand),
}

impl At<'_> {
    fn pos(&self) -> Pos {
        match self {
            At::Node(n) => n.pos(),
            At::Pipe(p) => p.pos,
            At::Cmd(c) => c.pos,
            At::Op(o) => o.pos(),
        }
    }

    fn context(&self) -> String {
        match self {
            At::Node(n) => n.to_string(),
            At::Pipe(p) => p.to_string(),
            At::Cmd(c) => c.to_string(),
            At::Op(o) => o.to_string(),
        }
    }
}

/// An execution failure, already in Go's words.
pub(crate) struct Fail(pub String);

pub(crate) type R<T> = Result<T, Fail>;

/// What a walked list asks of the enclosing `range`.
#[derive(PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Exec<'t, 'd> {
    tmpl: &'t Template,
    pub(crate) funcs: Funcs,
    current: &'t str,
    vars: Vec<(&'t str, Typed<'d>)>,
    depth: usize,
    steps: u64,
    pub(crate) out: &'t mut String,
    at: Option<At<'t>>,
}

impl<'t, 'd> Exec<'t, 'd> {
    pub(crate) fn new(tmpl: &'t Template, funcs: Funcs, out: &'t mut String) -> Self {
        Exec {
            tmpl,
            funcs,
            current: &tmpl.name,
            vars: Vec::new(),
            depth: 0,
            steps: 0,
            out,
            at: None,
        }
    }

    /// Runs the top-level template with `data` as dot and `$`.
    pub(crate) fn run(&mut self, data: &'d Value) -> R<()> {
        let tmpl = self.tmpl;
        let Some(root) = tmpl.trees.get(&tmpl.name) else {
            let q = crate::gofmt::quote(&tmpl.name);
            return Err(Fail(format!(
                "template: {}: {q} is an incomplete or empty template",
                tmpl.name
            )));
        };
        // Go's reflect.ValueOf(nil) is the invalid value, not a nil interface.
        let dot = Typed::concrete(Val::from_json(data).unwrap_nil());
        self.vars = vec![("$", dot.clone())];
        self.walk(&dot, root)?;
        Ok(())
    }

    pub(crate) fn at(&mut self, at: At<'t>) {
        self.at = Some(at);
    }

    /// An error at the current node, formatted as Go's `state.errorf`.
    pub(crate) fn fail<T>(&self, msg: impl std::fmt::Display) -> R<T> {
        let name = &self.tmpl.name;
        let Some(at) = self.at else {
            return Err(Fail(format!("template: {name}: {msg}")));
        };
        let pos = at.pos().min(self.tmpl.source.len());
        let before = &self.tmpl.source.as_bytes()[..pos];
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        let col = match before.iter().rposition(|b| *b == b'\n') {
            Some(nl) => pos - nl - 1,
            None => pos,
        };
        let cur = crate::gofmt::quote(self.current);
        Err(Fail(format!(
            "template: {name}:{line}:{col}: executing {cur} at <{}>: {msg}",
            at.context()
        )))
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return self.fail(format!(
                "exceeded maximum template work ({MAX_STEPS} steps)"
            ));
        }
        if self.out.len() > MAX_OUTPUT {
            return self.fail(format!(
                "exceeded maximum template output ({MAX_OUTPUT} bytes)"
            ));
        }
        Ok(())
    }

    fn enter(&mut self) -> R<()> {
        if self.depth >= MAX_DEPTH {
            return self.fail(format!("exceeded maximum template depth ({MAX_DEPTH})"));
        }
        self.depth += 1;
        Ok(())
    }

    fn walk(&mut self, dot: &Typed<'d>, list: &'t List) -> R<Flow> {
        for node in list {
            let flow = self.walk_node(dot, node)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_node(&mut self, dot: &Typed<'d>, node: &'t Node) -> R<Flow> {
        self.step()?;
        self.at(At::Node(node));
        match node {
            Node::Text { text, .. } => self.out.push_str(text),
            Node::Action { pipe, .. } => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.at(At::Node(node));
                    if v.is_nil() {
                        self.out.push_str("<no value>");
                    } else {
                        crate::gofmt::write_value(self.out, &v, 'v', &Default::default());
                    }
                }
            }
            Node::If(b) => return self.walk_if_or_with(dot, b, false),
            Node::With(b) => return self.walk_if_or_with(dot, b, true),
            Node::Range(b) => return self.walk_range(dot, node, b),
            Node::Template { name, pipe, .. } => {
                self.walk_template(dot, node, name, pipe.as_ref())?
            }
            Node::Break { .. } => return Ok(Flow::Break),
            Node::Continue { .. } => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, dot: &Typed<'d>, b: &'t Branch, with: bool) -> R<Flow> {
        self.enter()?;
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if val.truth() {
            if with {
                self.walk(&Typed::concrete(val), &b.list)?
            } else {
                self.walk(dot, &b.list)?
            }
        } else if let Some(e) = &b.else_list {
            self.walk(dot, e)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Typed<'d>, node: &'t Node, b: &'t Branch) -> R<Flow> {
        self.at(At::Node(node));
        self.enter()?;
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let inner = self.vars.len();
        let items: Vec<(Typed<'d>, Typed<'d>)> = match &val {
            Val::Json(Value::Object(m)) => {
                let iface = Elem::of_object(m).is_iface();
                let mut keys: Vec<&'d String> = m.keys().collect();
                keys.sort();
                keys.into_iter()
                    .map(|k| {
                        (
                            Typed::concrete(Val::str(k)),
                            Typed {
                                val: Val::from_json(&m[k]),
                                iface,
                            },
                        )
                    })
                    .collect()
            }
            Val::Int(_) | Val::Uint(_) => {
                if b.pipe.decl.len() > 1 {
                    return self.fail(format!(
                        "can't use {} to iterate over more than one variable",
                        crate::gofmt::display(&val)
                    ));
                }
                let n = match val {
                    Val::Int(i) => i.max(0) as u64,
                    Val::Uint(u) => u,
                    _ => 0,
                };
                (0..n)
                    .map(|i| {
                        (
                            Typed::concrete(Val::Int(i as i64)),
                            Typed::concrete(Val::Int(i as i64)),
                        )
                    })
                    .collect()
            }
            Val::Missing | Val::Nil => Vec::new(),
            v => match v.elements() {
                Some(e) => e
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| (Typed::concrete(Val::Int(i as i64)), e))
                    .collect(),
                None => {
                    return self.fail(format!(
                        "range can't iterate over {}",
                        crate::gofmt::display(v)
                    ));
                }
            },
        };
        let ran = !items.is_empty();
        for (index, elem) in items {
            self.step()?;
            self.bind_range_vars(&b.pipe, index, elem.clone())?;
            let flow = self.walk(&elem, &b.list)?;
            self.vars.truncate(inner);
            if flow == Flow::Break {
                break;
            }
        }
        if !ran {
            if let Some(e) = &b.else_list {
                self.walk(dot, e)?;
            }
        }
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(Flow::Normal)
    }

    fn bind_range_vars(&mut self, pipe: &'t Pipe, index: Typed<'d>, elem: Typed<'d>) -> R<()> {
        let n = self.vars.len();
        match (pipe.decl.len(), pipe.is_assign) {
            (0, _) => {}
            (1, true) => self.set_var(&pipe.decl[0], elem)?,
            (1, false) => self.vars[n - 1].1 = elem,
            (_, true) => {
                self.set_var(&pipe.decl[0], index)?;
                self.set_var(&pipe.decl[1], elem)?;
            }
            (_, false) => {
                self.vars[n - 1].1 = elem;
                self.vars[n - 2].1 = index;
            }
        }
        Ok(())
    }

    fn walk_template(
        &mut self,
        dot: &Typed<'d>,
        node: &'t Node,
        name: &'t str,
        pipe: Option<&'t Pipe>,
    ) -> R<()> {
        self.at(At::Node(node));
        let tmpl = self.tmpl;
        let Some(tree) = tmpl.trees.get(name) else {
            return self.fail(format!(
                "template {} not defined",
                crate::gofmt::quote(name)
            ));
        };
        self.enter()?;
        let new_dot = match pipe {
            Some(p) => Typed::concrete(self.eval_pipeline(dot, p)?),
            None => Typed::concrete(Val::Missing),
        };
        let vars = std::mem::replace(&mut self.vars, vec![("$", new_dot.clone())]);
        let current = std::mem::replace(&mut self.current, name);
        let r = self.walk(&new_dot, tree);
        self.vars = vars;
        self.current = current;
        self.depth -= 1;
        r.map(|_| ())
    }

    fn set_var(&mut self, name: &str, v: Typed<'d>) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => self.fail(format!("undefined variable: {name}")),
        }
    }

    fn var_value(&self, name: &str) -> R<Typed<'d>> {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => self.fail(format!("undefined variable: {name}")),
        }
    }

    /// Evaluates a pipeline; declared variables are pushed (or assigned) and stay.
    pub(crate) fn eval_pipeline(&mut self, dot: &Typed<'d>, pipe: &'t Pipe) -> R<Val<'d>> {
        self.at(At::Pipe(pipe));
        let mut value: Option<Typed<'d>> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            value = Some(Typed::concrete(v.unwrap_iface()));
        }
        let result = value.map_or(Val::Missing, |t| t.val);
        for name in &pipe.decl {
            let t = Typed::concrete(result.clone());
            if pipe.is_assign {
                self.set_var(name, t)?;
            } else {
                self.vars.push((name, t));
            }
        }
        Ok(result)
    }
}
