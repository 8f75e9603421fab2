//! The functions templates can call: Go's builtins (`and`, `or`, `not`, `len`, `index`,
//! `slice`, `eq`…`ge`, `print*`, `html`, `js`, `urlquery`, `call`) and Docker's (`json`,
//! `split`, `join`, `title`, `lower`, `upper`, `pad`, `truncate`, with the header variants).
//! Each has Go's signature, so argument counts and types fail as they do in Go.

use crate::ast::Operand;
use crate::exec::{At, Exec, Funcs, R};
use crate::gofmt;
use crate::value::{Elem, Typed, Val};
use serde_json::Value;
use std::cmp::Ordering;

/// A parameter's Go type, as far as argument checking goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Param {
    /// `interface{}`: anything; a missing value arrives as nil.
    Any,
    /// `reflect.Value`: anything, a missing value stays missing.
    Value,
    Str,
    Int,
    StrSlice,
}

impl Param {
    pub fn name(self) -> &'static str {
        match self {
            Param::Any => "interface {}",
            Param::Value => "reflect.Value",
            Param::Str => "string",
            Param::Int => "int",
            Param::StrSlice => "[]string",
        }
    }

    /// The word Go's literal checks use (`expected integer; found "x"`).
    pub fn expected(self) -> &'static str {
        match self {
            Param::Int => "integer",
            Param::Str => "string",
            p => p.name(),
        }
    }
}

/// Fixed parameters and the type of the variadic rest, if any.
struct Sig(&'static [Param], Option<Param>);

use Param::{Any, Int, Str, StrSlice, Value as V};

fn signature(funcs: Funcs, name: &str) -> Option<Sig> {
    let header = funcs == Funcs::Header;
    Some(match name {
        "and" | "or" | "index" | "slice" | "eq" => Sig(&[V], Some(V)),
        "call" => Sig(&[V], Some(V)),
        "not" | "len" => Sig(&[V], None),
        "ne" | "lt" | "le" | "gt" | "ge" => Sig(&[V, V], None),
        "html" | "js" | "urlquery" | "print" | "println" => Sig(&[], Some(Any)),
        "printf" => Sig(&[Str], Some(Any)),
        "json" if header => Sig(&[Str], None),
        "json" => Sig(&[Any], None),
        "split" => Sig(&[Str, Str], None),
        "join" if header => Sig(&[Str, Str], None),
        "join" => Sig(&[StrSlice, Str], None),
        "title" | "lower" | "upper" => Sig(&[Str], None),
        "pad" => Sig(&[Str, Int, Int], None),
        "truncate" => Sig(&[Str, Int], None),
        _ => return None,
    })
}

/// Whether `name` is a function a template may call.
pub(crate) fn is_func(name: &str) -> bool {
    signature(Funcs::Docker, name).is_some()
}

/// Go's `evalCall` for a named function: checks the argument count, evaluates arguments
/// (lazily for `and`/`or`), calls, and wraps a failure as `error calling NAME: …`.
pub(crate) fn call<'t, 'd>(
    ex: &mut Exec<'t, 'd>,
    dot: &Typed<'d>,
    name: &'t str,
    node: At<'t>,
    args: &'t [Operand],
    fin: Option<Typed<'d>>,
) -> R<Typed<'d>> {
    let Some(Sig(fixed, variadic)) = signature(ex.funcs, name) else {
        return ex.fail(format!("{} is not a defined function", gofmt::quote(name)));
    };
    let args = args.get(1..).unwrap_or(&[]);
    let num_in = args.len() + usize::from(fin.is_some());
    if variadic.is_some() {
        if num_in < fixed.len() {
            return ex.fail(format!(
                "wrong number of args for {name}: want at least {} got {}",
                fixed.len(),
                args.len()
            ));
        }
    } else if num_in != fixed.len() {
        return ex.fail(format!(
            "wrong number of args for {name}: want {} got {num_in}",
            fixed.len()
        ));
    }
    if name == "call" {
        // Data holds no functions, so every call fails, as Go's would on a non-function.
        let (callee, v) = match args.first() {
            Some(a) => (a.to_string(), ex.eval_arg(dot, V, a)?.val),
            None => {
                let v = fin.map_or(Val::Missing, |t| t.val);
                (format!("<{} Value>", v.type_name()), v)
            }
        };
        ex.at(node);
        if v.is_nil() {
            return ex.fail("error calling call: call of nil");
        }
        return ex.fail(format!(
            "error calling call: non-function {callee} of type {}",
            v.type_name()
        ));
    }
    if name == "and" || name == "or" {
        let mut v = Typed::concrete(Val::Missing);
        for a in args {
            v = ex.eval_arg(dot, V, a)?;
            if v.val.truth() == (name == "or") {
                return Ok(v);
            }
        }
        return Ok(fin.unwrap_or(v));
    }
    let mut argv = Vec::with_capacity(num_in);
    for (i, a) in args.iter().enumerate() {
        let p = fixed.get(i).copied().or(variadic).unwrap_or(Any);
        argv.push(ex.eval_arg(dot, p, a)?);
    }
    if let Some(f) = fin {
        let p = fixed.get(num_in - 1).copied().or(variadic).unwrap_or(Any);
        argv.push(ex.validate(f, p)?);
    }
    match builtin(ex.funcs, name, argv) {
        Ok(v) => Ok(v),
        Err(e) => {
            ex.at(node);
            ex.fail(format!("error calling {name}: {e}"))
        }
    }
}

type Out<'d> = Result<Typed<'d>, String>;

fn done(v: Val) -> Out {
    Ok(Typed::concrete(v))
}

fn builtin<'d>(funcs: Funcs, name: &str, argv: Vec<Typed<'d>>) -> Out<'d> {
    let vals: Vec<Val<'d>> = argv.iter().map(|t| t.val.clone()).collect();
    let s = |i: usize| vals[i].as_str().unwrap_or_default().to_string();
    let int = |i: usize| if let Val::Int(n) = vals[i] { n } else { 0 };
    if funcs == Funcs::Header
        && matches!(
            name,
            "json" | "split" | "join" | "title" | "lower" | "upper" | "truncate"
        )
    {
        return done(Val::str(&s(0)));
    }
    match name {
        "not" => done(Val::Bool(!vals[0].truth())),
        "len" => length(&argv[0]),
        "index" => index(argv),
        "slice" => slice(&vals),
        "eq" => eq(&vals[0], &vals[1..]).map(|b| Typed::concrete(Val::Bool(b))),
        "ne" => eq(&vals[0], &vals[1..]).map(|b| Typed::concrete(Val::Bool(!b))),
        "lt" => lt(&vals[0], &vals[1]).map(|b| Typed::concrete(Val::Bool(b))),
        "le" => le(&vals[0], &vals[1]).map(|b| Typed::concrete(Val::Bool(b))),
        "gt" => le(&vals[0], &vals[1]).map(|b| Typed::concrete(Val::Bool(!b))),
        "ge" => lt(&vals[0], &vals[1]).map(|b| Typed::concrete(Val::Bool(!b))),
        "print" => done(Val::str(&gofmt::sprint(&vals))),
        "println" => done(Val::str(&gofmt::sprintln(&vals))),
        "printf" => done(Val::str(&gofmt::sprintf(&s(0), &vals[1..]))),
        "html" => done(Val::str(&crate::escape::html(&eval_args(&vals)))),
        "js" => done(Val::str(&crate::escape::js(&eval_args(&vals)))),
        "urlquery" => done(Val::str(&crate::escape::query(&eval_args(&vals)))),
        "json" => done(Val::str(&crate::docker::json(&vals[0]))),
        "split" => done(crate::docker::split(&s(0), &s(1))),
        "join" => {
            let parts: Vec<String> = vals[0]
                .elements()
                .unwrap_or_default()
                .iter()
                .map(|t| t.val.as_str().unwrap_or_default().to_string())
                .collect();
            done(Val::str(&parts.join(&s(1))))
        }
        "title" => done(Val::str(&crate::docker::title(&s(0)))),
        "lower" => done(Val::str(&crate::docker::map_chars(&s(0), false))),
        "upper" => done(Val::str(&crate::docker::map_chars(&s(0), true))),
        "pad" => crate::docker::pad(&s(0), int(1), int(2)).map(|p| Typed::concrete(Val::str(&p))),
        "truncate" => crate::docker::truncate(&s(0), int(1)).map(|p| Typed::concrete(Val::str(&p))),
        _ => Err(format!("{} is not a defined function", gofmt::quote(name))),
    }
}

/// Go's `evalArgs`: one string as is, else `fmt.Sprint` with nil shown as `<no value>`.
fn eval_args(vals: &[Val]) -> String {
    if let [v] = vals {
        if let Some(s) = v.as_str() {
            return s.to_string();
        }
    }
    let shown: Vec<Val> = vals
        .iter()
        .map(|v| {
            if v.is_nil() {
                Val::str("<no value>")
            } else {
                v.clone()
            }
        })
        .collect();
    gofmt::sprint(&shown)
}

fn length<'d>(t: &Typed<'d>) -> Out<'d> {
    match &t.val {
        Val::Nil => Err("len of nil pointer".into()),
        Val::Missing => Err("reflect: call of reflect.Value.Type on zero Value".into()),
        v => match v.len() {
            Some(n) => done(Val::Int(n as i64)),
            None => Err(format!("len of type {}", v.type_name())),
        },
    }
}

/// An index argument: an integer within `0..=cap`.
fn index_arg(i: &Val, cap: usize) -> Result<usize, String> {
    let x: i128 = match i {
        Val::Int(n) => i128::from(*n),
        Val::Uint(n) => i128::from(*n),
        v if v.is_nil() => return Err("cannot index slice/array with nil".into()),
        v => {
            return Err(format!(
                "cannot index slice/array with type {}",
                v.type_name()
            ))
        }
    };
    if x < 0 || x > cap as i128 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn index<'d>(argv: Vec<Typed<'d>>) -> Out<'d> {
    let mut it = argv.into_iter();
    let mut item = it.next().map(|t| t.val).unwrap_or(Val::Missing);
    if item.is_nil() {
        return Err("index of untyped nil".into());
    }
    let mut item_t = Typed::concrete(item.clone());
    for idx in it {
        if let Val::Nil = item {
            return Err("index of nil pointer".into());
        }
        let idx = idx.val;
        item_t = match &item {
            Val::Json(Value::Object(m)) => {
                let key = match &idx {
                    v if v.is_nil() => return Err("value is nil; should be of type string".into()),
                    v => v.as_str().ok_or_else(|| {
                        format!("value has type {}; should be string", v.type_name())
                    })?,
                };
                let elem = Elem::of_object(m);
                match m.get(key) {
                    Some(v) => Typed {
                        val: Val::from_json(v),
                        iface: elem.is_iface(),
                    },
                    None => Typed {
                        val: elem.zero(),
                        iface: elem.is_iface(),
                    },
                }
            }
            v if v.as_str().is_some() => {
                let s = v.as_str().unwrap_or_default().as_bytes();
                let x = index_arg(&idx, s.len())?;
                let b = s.get(x).ok_or("reflect: string index out of range")?;
                Typed::concrete(Val::Uint(u64::from(*b)))
            }
            v => match v.elements() {
                Some(e) => {
                    let x = index_arg(&idx, e.len())?;
                    e.into_iter()
                        .nth(x)
                        .ok_or("reflect: slice index out of range")?
                }
                None => return Err(format!("can't index item of type {}", v.type_name())),
            },
        };
        item = item_t.val.clone();
    }
    Ok(item_t)
}

fn slice<'d>(vals: &[Val<'d>]) -> Out<'d> {
    let item = &vals[0];
    let idx = &vals[1..];
    if item.is_nil() {
        return Err("slice of untyped nil".into());
    }
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    let (len, elems) = if let Some(s) = item.as_str() {
        if idx.len() == 3 {
            return Err("cannot 3-index slice a string".into());
        }
        (s.len(), None)
    } else {
        match item.elements() {
            Some(e) => (e.len(), Some(e)),
            None => return Err(format!("can't slice item of type {}", item.type_name())),
        }
    };
    let mut bounds = [0, len, len];
    for (i, x) in idx.iter().enumerate() {
        bounds[i] = index_arg(x, len)?;
    }
    if bounds[0] > bounds[1] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        ));
    }
    if idx.len() == 3 && bounds[1] > bounds[2] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[1], bounds[2]
        ));
    }
    match elems {
        None => {
            let s = item.as_str().unwrap_or_default().as_bytes();
            done(Val::str(&String::from_utf8_lossy(&s[bounds[0]..bounds[1]])))
        }
        Some(e) => {
            let part: Vec<Val<'d>> = e[bounds[0]..bounds[1]]
                .iter()
                .map(|t| t.val.clone())
                .collect();
            done(Val::List(part.into()))
        }
    }
}

/// The kinds Go's comparison functions can order or compare.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum Basic {
    Bool,
    Int,
    Uint,
    Float,
    Str,
    Other,
}

fn basic(v: &Val) -> Basic {
    match v {
        Val::Bool(_) => Basic::Bool,
        Val::Int(_) => Basic::Int,
        Val::Uint(_) => Basic::Uint,
        Val::Float(_) => Basic::Float,
        v if v.as_str().is_some() => Basic::Str,
        _ => Basic::Other,
    }
}

fn int_uint_cmp(i: i64, u: u64) -> Ordering {
    if i < 0 {
        Ordering::Less
    } else {
        (i as u64).cmp(&u)
    }
}

/// Go's `eq`: true if the first argument equals any of the others.
fn eq(a: &Val, others: &[Val]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = basic(a);
    for b in others {
        let k2 = basic(b);
        let truth = if k1 != k2 {
            match (a, b) {
                (Val::Int(i), Val::Uint(u)) | (Val::Uint(u), Val::Int(i)) => {
                    int_uint_cmp(*i, *u).is_eq()
                }
                _ if !a.is_nil() && !b.is_nil() => {
                    return Err(format!(
                        "incompatible types for comparison: {} and {}",
                        a.type_name(),
                        b.type_name()
                    ));
                }
                _ => false,
            }
        } else {
            match (a, b) {
                (Val::Bool(x), Val::Bool(y)) => x == y,
                (Val::Int(x), Val::Int(y)) => x == y,
                (Val::Uint(x), Val::Uint(y)) => x == y,
                (Val::Float(x), Val::Float(y)) => x == y,
                _ if k1 == Basic::Str => a.as_str() == b.as_str(),
                _ if a.is_nil() || b.is_nil() => a.is_nil() == b.is_nil(),
                _ => {
                    return Err(format!(
                        "non-comparable type {}: {}",
                        gofmt::display(b),
                        b.type_name()
                    ));
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `lt`.
fn lt(a: &Val, b: &Val) -> Result<bool, String> {
    let (k1, k2) = (basic(a), basic(b));
    if k1 == Basic::Other || k2 == Basic::Other {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return match (a, b) {
            (Val::Int(i), Val::Uint(u)) => Ok(int_uint_cmp(*i, *u).is_lt()),
            (Val::Uint(u), Val::Int(i)) => Ok(int_uint_cmp(*i, *u).is_gt()),
            _ => Err(format!(
                "incompatible types for comparison: {} and {}",
                a.type_name(),
                b.type_name()
            )),
        };
    }
    Ok(match (a, b) {
        (Val::Int(x), Val::Int(y)) => x < y,
        (Val::Uint(x), Val::Uint(y)) => x < y,
        (Val::Float(x), Val::Float(y)) => x < y,
        (Val::Bool(_), _) => return Err("invalid type for comparison".into()),
        _ => a.as_str() < b.as_str(),
    })
}

fn le(a: &Val, b: &Val) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}
