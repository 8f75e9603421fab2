//! Evaluation of commands and their operands: fields of objects, variables, chains,
//! literals and function arguments with Go's type checks. Part of the evaluator; reads
//! data and never writes output.

use super::{At, Exec, R};
use crate::ast::{Command, Operand};
use crate::funcs::{self, Param};
use crate::value::{Elem, Typed, Val};
use crate::MissingKey;
use serde_json::Value;

impl<'t, 'd> Exec<'t, 'd> {
    fn not_a_function(&self, args: &[Operand], fin: &Option<Typed<'d>>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            return self.fail(format!("can't give argument to non-function {}", args[0]));
        }
        Ok(())
    }

    pub(super) fn eval_command(
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
