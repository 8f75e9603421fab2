//! Pipelines and what they are made of: declarations, commands, operands and terms
//! (literals, fields, variables, parenthesized pipelines). Part of the parser.

use super::{Parser, Result, MAX_PAREN_DEPTH, MAX_PIPELINE_CMDS};
use crate::ast::{Command, Operand, Pipe, Pos};
use crate::lex::Kind;
use crate::literal::{parse_number, unquote, unquote_char};

impl Parser<'_> {
    /// `declarations? command ('|' command)*` up to `end`.
    pub(super) fn pipeline(&mut self, context: &str, end: Kind) -> Result<Pipe> {
        let pos = self.peek_non_space().pos;
        let mut pipe = Pipe {
            pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        self.declarations(&mut pipe, context)?;
        loop {
            let it = self.next_non_space();
            match it.kind {
                k if k == end => {
                    self.check_pipeline(&pipe, context)?;
                    return Ok(pipe);
                }
                Kind::Bool
                | Kind::CharConstant
                | Kind::Complex
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.back_one();
                    pipe.cmds.push(self.command()?);
                    if pipe.cmds.len() > MAX_PIPELINE_CMDS {
                        return self.error("pipeline too long");
                    }
                }
                _ => return self.unexpected(&it, context),
            }
        }
    }

    /// `$x :=`, `$x =` and range's `$i, $e :=` at the start of a pipeline.
    fn declarations(&mut self, pipe: &mut Pipe, context: &str) -> Result<()> {
        loop {
            let v = self.peek_non_space();
            if v.kind != Kind::Variable {
                return Ok(());
            }
            let at = self.next;
            self.next();
            let next = self.peek_non_space();
            match next.kind {
                Kind::Assign | Kind::Declare => {
                    pipe.is_assign = next.kind == Kind::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    return Ok(());
                }
                Kind::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        let k = self.peek_non_space().kind;
                        if matches!(k, Kind::Variable | Kind::RightDelim | Kind::RightParen) {
                            continue;
                        }
                        return self.error("range can only initialize variables");
                    }
                    return self.error(format!("too many declarations in {context}"));
                }
                _ => {
                    self.back_to(at);
                    return Ok(());
                }
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> Result<()> {
        if pipe.cmds.is_empty() {
            return self.error(format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(
                Operand::Bool { .. }
                | Operand::Dot { .. }
                | Operand::Nil { .. }
                | Operand::Number { .. }
                | Operand::String { .. },
            ) = c.args.first()
            {
                return self.error(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> Result<Command> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                args.push(op);
            }
            let it = self.next();
            match it.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.back_one(),
                Kind::Pipe => {}
                _ => return self.unexpected(&it, "operand"),
            }
            break;
        }
        if args.is_empty() {
            return self.error("empty command");
        }
        Ok(Command { pos, args })
    }

    /// A term followed by any number of `.Field`s.
    fn operand(&mut self) -> Result<Option<Operand>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Kind::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == Kind::Field {
            fields.push(self.next().val[1..].to_string());
        }
        Ok(Some(match node {
            Operand::Field { mut idents, .. } => {
                idents.extend(fields);
                Operand::Field { pos, idents }
            }
            Operand::Variable { mut idents, .. } => {
                idents.extend(fields);
                Operand::Variable { pos, idents }
            }
            n @ (Operand::Bool { .. }
            | Operand::String { .. }
            | Operand::Number { .. }
            | Operand::Nil { .. }
            | Operand::Dot { .. }) => {
                let q = crate::gofmt::quote(&n.to_string());
                return self.error(format!("unexpected . after term {q}"));
            }
            n => Operand::Chain {
                pos,
                node: Box::new(n),
                fields,
            },
        }))
    }

    fn term(&mut self) -> Result<Option<Operand>> {
        let it = self.next_non_space();
        let pos: Pos = it.pos;
        Ok(Some(match it.kind {
            Kind::Identifier => {
                if !(self.is_func)(&it.val) {
                    return self.error(format!(
                        "function {} not defined",
                        crate::gofmt::quote(&it.val)
                    ));
                }
                Operand::Identifier { pos, name: it.val }
            }
            Kind::Dot => Operand::Dot { pos },
            Kind::Nil => Operand::Nil { pos },
            Kind::Variable => {
                let idents: Vec<String> = it.val.split('.').map(str::to_string).collect();
                if !self.vars.contains(&idents[0]) {
                    let q = crate::gofmt::quote(&idents[0]);
                    return self.error(format!("undefined variable {q}"));
                }
                Operand::Variable { pos, idents }
            }
            Kind::Field => Operand::Field {
                pos,
                idents: it.val[1..].split('.').map(str::to_string).collect(),
            },
            Kind::Bool => Operand::Bool {
                pos,
                val: it.val == "true",
            },
            Kind::CharConstant => {
                let num = unquote_char(&it.val).or_else(|e| self.error(e))?;
                Operand::Number { pos, num }
            }
            Kind::Complex => {
                return self.error(format!("complex constant {} is not supported", it.val))
            }
            Kind::Number => {
                let num = parse_number(&it.val).or_else(|e| self.error(e))?;
                Operand::Number { pos, num }
            }
            Kind::LeftParen => {
                if self.paren_depth >= MAX_PAREN_DEPTH {
                    return self.error("max expression depth exceeded");
                }
                self.paren_depth += 1;
                let p = self.pipeline("parenthesized pipeline", Kind::RightParen);
                self.paren_depth -= 1;
                Operand::Pipe(Box::new(p?))
            }
            Kind::String | Kind::RawString => {
                let text = unquote(&it.val).or_else(|e| self.error(e))?;
                Operand::String {
                    pos,
                    quoted: it.val,
                    text,
                }
            }
            _ => {
                self.back_one();
                return Ok(None);
            }
        }))
    }
}
