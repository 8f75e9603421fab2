//! The evaluator: walks a parsed template over JSON data, appending to a `String`. Follows
//! Go's `text/template` exec rules (pipelines, variables, `range`/`break`/`continue`, field
//! lookup on maps, `missingkey`), and reports errors with Go's location and context
//! (`template: :1:2: executing "" at <.X>: …`). Depth and total work are bounded.

use crate::ast::{Branch, Command, List, Node, Operand, Pipe, Pos};
use crate::funcs::{self, Param};
use crate::value::{Elem, Typed, Val};
use crate::{MissingKey, Template};
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

    fn not_a_function(&self, args: &[Operand], fin: &Option<Typed<'d>>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            return self.fail(format!("can't give argument to non-function {}", args[0]));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Typed<'d>,
        cmd: &'t Command,
        fin: Option<Typed<'d>>,
    ) -> R<Typed<'d>> {
        let first = &cmd.args[0];
        match first {
            Operand::Field { idents, .. } => {
                self.at(At::Op(first));
                return self.eval_field_chain(dot, dot.clone(), idents, &cmd.args, fin);
            }
            Operand::Chain { node, fields, .. } => {
                return self.eval_chain(dot, first, node, fields, &cmd.args, fin)
            }
            Operand::Identifier { name, .. } => {
                return self.eval_function(dot, first, name, At::Cmd(cmd), &cmd.args, fin)
            }
            Operand::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                self.enter()?;
                let v = self.eval_pipeline(dot, p);
                self.depth -= 1;
                return Ok(Typed::concrete(v?));
            }
            Operand::Variable { idents, .. } => {
                return self.eval_variable(dot, first, idents, &cmd.args, fin)
            }
            _ => {}
        }
        self.at(At::Op(first));
        self.not_a_function(&cmd.args, &fin)?;
        Ok(Typed::concrete(match first {
            Operand::Bool { val, .. } => Val::Bool(*val),
            Operand::Dot { .. } => return Ok(dot.clone()),
            Operand::Nil { .. } => return self.fail("nil is not a command"),
            Operand::Number { .. } => self.ideal_constant(first)?,
            Operand::String { text, .. } => Val::str(text),
            _ => {
                return self.fail(format!(
                    "can't evaluate command {}",
                    crate::gofmt::quote(&first.to_string())
                ))
            }
        }))
    }

    /// A number with no type to fit: Go picks int, or float64 if spelled like one.
    fn ideal_constant(&mut self, op: &'t Operand) -> R<Val<'d>> {
        let Operand::Number { num, .. } = op else {
            return Ok(Val::Missing);
        };
        self.at(At::Op(op));
        let t = &num.text;
        let hex_int = t.len() > 2
            && t.starts_with('0')
            && (t.as_bytes()[1] | 0x20) == b'x'
            && !t.contains(['p', 'P']);
        let rune = t.starts_with('\'');
        if num.is_float && !hex_int && !rune && t.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Val::Float(num.float));
        }
        if num.is_int {
            return Ok(Val::Int(num.int));
        }
        if num.is_uint {
            return self.fail(format!("{t} overflows int"));
        }
        Ok(Val::Missing)
    }

    fn eval_chain(
        &mut self,
        dot: &Typed<'d>,
        op: &'t Operand,
        node: &'t Operand,
        fields: &'t [String],
        args: &'t [Operand],
        fin: Option<Typed<'d>>,
    ) -> R<Typed<'d>> {
        self.at(At::Op(op));
        if let Operand::Nil { .. } = node {
            return self.fail(format!("indirection through explicit nil in {op}"));
        }
        let recv = self.eval_arg(dot, Param::Value, node)?;
        self.at(At::Op(op));
        self.eval_field_chain(dot, recv, fields, args, fin)
    }

    fn eval_variable(
        &mut self,
        dot: &Typed<'d>,
        op: &'t Operand,
        idents: &'t [String],
        args: &'t [Operand],
        fin: Option<Typed<'d>>,
    ) -> R<Typed<'d>> {
        self.at(At::Op(op));
        let value = self.var_value(&idents[0])?;
        if idents.len() == 1 {
            self.not_a_function(args, &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(dot, value, &idents[1..], args, fin)
    }

    fn eval_field_chain(
        &mut self,
        _dot: &Typed<'d>,
        mut recv: Typed<'d>,
        idents: &'t [String],
        args: &'t [Operand],
        fin: Option<Typed<'d>>,
    ) -> R<Typed<'d>> {
        let n = idents.len();
        for id in &idents[..n - 1] {
            recv = self.eval_field(id, false, recv)?;
        }
        let has_args = args.len() > 1 || fin.is_some();
        self.eval_field(&idents[n - 1], has_args, recv)
    }

    /// `.name` on a receiver: a key of an object; anything else has no fields.
    fn eval_field(&mut self, name: &str, has_args: bool, recv: Typed<'d>) -> R<Typed<'d>> {
        if let Val::Missing = recv.val {
            if self.tmpl.missing_key == MissingKey::Error {
                return self.fail(format!(
                    "nil data; no entry for key {}",
                    crate::gofmt::quote(name)
                ));
            }
            return Ok(Typed::concrete(Val::Missing));
        }
        let typ = recv.static_type();
        if let Val::Nil = recv.val {
            return self.fail(format!("nil pointer evaluating {typ}.{name}"));
        }
        let Val::Json(Value::Object(m)) = recv.val else {
            return self.fail(format!("can't evaluate field {name} in type {typ}"));
        };
        if has_args {
            return self.fail(format!("{name} is not a method but has arguments"));
        }
        let elem = Elem::of_object(m);
        match m.get(name) {
            Some(v) => Ok(Typed {
                val: Val::from_json(v),
                iface: elem.is_iface(),
            }),
            None => match self.tmpl.missing_key {
                MissingKey::Default => Ok(Typed::concrete(Val::Missing)),
                MissingKey::Zero => Ok(Typed {
                    val: elem.zero(),
                    iface: elem.is_iface(),
                }),
                MissingKey::Error => self.fail(format!(
                    "map has no entry for key {}",
                    crate::gofmt::quote(name)
                )),
            },
        }
    }

    fn eval_function(
        &mut self,
        dot: &Typed<'d>,
        ident: &'t Operand,
        name: &'t str,
        node: At<'t>,
        args: &'t [Operand],
        fin: Option<Typed<'d>>,
    ) -> R<Typed<'d>> {
        self.at(At::Op(ident));
        funcs::call(self, dot, name, node, args, fin)
    }

    /// Evaluates an argument for a parameter of type `param`, with Go's type checks.
    pub(crate) fn eval_arg(
        &mut self,
        dot: &Typed<'d>,
        param: Param,
        op: &'t Operand,
    ) -> R<Typed<'d>> {
        self.at(At::Op(op));
        let v = match op {
            Operand::Dot { .. } => dot.clone(),
            Operand::Nil { .. } => {
                return match param {
                    Param::Any => Ok(Typed {
                        val: Val::Nil,
                        iface: true,
                    }),
                    Param::Value => Ok(Typed::concrete(Val::Missing)),
                    Param::StrSlice => Ok(Typed::concrete(Val::List(Vec::new().into()))),
                    p => self.fail(format!("cannot assign nil to {}", p.name())),
                };
            }
            Operand::Field { idents, .. } => {
                let recv = dot.clone();
                self.eval_field_chain(dot, recv, idents, std::slice::from_ref(op), None)?
            }
            Operand::Variable { idents, .. } => self.eval_variable(dot, op, idents, &[], None)?,
            Operand::Pipe(p) => {
                self.enter()?;
                let v = self.eval_pipeline(dot, p);
                self.depth -= 1;
                Typed::concrete(v?)
            }
            Operand::Identifier { name, .. } => {
                self.eval_function(dot, op, name, At::Op(op), &[], None)?
            }
            Operand::Chain { node, fields, .. } => {
                self.eval_chain(dot, op, node, fields, &[], None)?
            }
            Operand::Bool { val, .. } => match param {
                Param::Any | Param::Value => Typed::concrete(Val::Bool(*val)),
                p => return self.literal_mismatch(p, op),
            },
            Operand::Number { num, .. } => match param {
                Param::Any | Param::Value => Typed::concrete(self.ideal_constant(op)?),
                Param::Int if num.is_int => Typed::concrete(Val::Int(num.int)),
                p => return self.literal_mismatch(p, op),
            },
            Operand::String { text, .. } => match param {
                Param::Any | Param::Value | Param::Str => Typed::concrete(Val::str(text)),
                p => return self.literal_mismatch(p, op),
            },
        };
        self.validate(v, param)
    }

    /// A literal of the wrong kind for its parameter, in Go's words.
    fn literal_mismatch<T>(&self, p: Param, op: &Operand) -> R<T> {
        match p {
            Param::StrSlice => self.fail(format!("can't handle {op} for arg of type {}", p.name())),
            p => self.fail(format!("expected {}; found {op}", p.expected())),
        }
    }

    /// Go's `validateType`: the value must be assignable to the parameter's type.
    pub(crate) fn validate(&self, v: Typed<'d>, param: Param) -> R<Typed<'d>> {
        let ok = match (&v.val, param) {
            (Val::Missing, Param::Any) => {
                return Ok(Typed {
                    val: Val::Nil,
                    iface: true,
                })
            }
            (Val::Missing, Param::StrSlice) => {
                return Ok(Typed::concrete(Val::List(Vec::new().into())))
            }
            (Val::Missing, p) if p != Param::Value => {
                return self.fail(format!("invalid value; expected {}", p.name()));
            }
            (_, Param::Any | Param::Value) => true,
            (Val::Int(_), Param::Int) => true,
            (v, Param::Str) => v.as_str().is_some(),
            (v, Param::StrSlice) => v
                .elements()
                .is_some_and(|e| e.iter().all(|t| t.val.as_str().is_some())),
            _ => false,
        };
        if ok {
            return Ok(v);
        }
        self.fail(format!(
            "wrong type for value; expected {}; got {}",
            param.name(),
            v.val.type_name()
        ))
    }
}
