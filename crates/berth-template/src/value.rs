//! Values as the evaluator sees them: JSON data borrowed from the caller, plus the scalars
//! and lists that literals and functions make. JSON maps to Go's decoded shapes (objects are
//! maps, arrays slices, integers `int`, other numbers `float64`); a container whose elements
//! are all strings (or all integers) acts as Go's typed `map[string]string`/`[]string`
//! (`…int`), which is what Docker's own structs hold. Nothing here formats or errors.

use serde_json::Value;
use std::rc::Rc;

/// One value. `Missing` is Go's invalid `reflect.Value` (a missing map key, or the end of a
/// pipeline that produced nil); `Nil` is a nil interface (a JSON `null` still inside its
/// container, or the literal `nil`).
#[derive(Clone, Debug)]
pub(crate) enum Val<'a> {
    Missing,
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(Rc<str>),
    /// A JSON string, array or object borrowed from the data.
    Json(&'a Value),
    /// A list made during execution (`split`, `slice` of an array).
    List(Rc<[Val<'a>]>),
}

/// A value with the static type Go would see: `iface` is set for values taken out of an
/// untyped container (`[]interface {}`, `map[string]interface {}`) and not yet unwrapped by
/// a pipeline. It only changes error messages and the nil-versus-missing distinction.
#[derive(Clone, Debug)]
pub(crate) struct Typed<'a> {
    pub val: Val<'a>,
    pub iface: bool,
}

impl<'a> Typed<'a> {
    pub fn concrete(val: Val<'a>) -> Self {
        Typed { val, iface: false }
    }

    /// Go's pipeline step "dig down one level into an interface": a nil interface becomes
    /// the invalid value, anything else loses its interface type.
    pub fn unwrap_iface(self) -> Val<'a> {
        match self.val {
            Val::Nil if self.iface => Val::Missing,
            v => v,
        }
    }

    /// The type name Go's messages use for this value as a receiver.
    pub fn static_type(&self) -> String {
        if self.iface {
            "interface {}".to_string()
        } else {
            self.val.type_name()
        }
    }
}

/// What the elements of a container are, as far as Go's type would say.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Elem {
    Str,
    Int,
    Any,
}

impl Elem {
    fn of<'v>(mut items: impl Iterator<Item = &'v Value>, empty: Elem) -> Elem {
        let Some(first) = items.next() else {
            return empty;
        };
        let kind = |v: &Value| match v {
            Value::String(_) => Elem::Str,
            Value::Number(n) if n.is_i64() => Elem::Int,
            _ => Elem::Any,
        };
        let k = kind(first);
        if k != Elem::Any && items.all(|v| kind(v) == k) {
            k
        } else {
            Elem::Any
        }
    }

    /// Elements of a JSON array: `[]string`, `[]int` or `[]interface {}` (when empty).
    pub fn of_array(a: &[Value]) -> Elem {
        Elem::of(a.iter(), Elem::Any)
    }

    /// Values of a JSON object; an empty object counts as `map[string]string`, the type of
    /// Docker's label and option maps, the ones templates index.
    pub fn of_object(m: &serde_json::Map<String, Value>) -> Elem {
        Elem::of(m.values(), Elem::Str)
    }

    /// The zero value Go's `index` returns for a missing key, and `missingkey=zero` prints.
    pub fn zero<'a>(self) -> Val<'a> {
        match self {
            Elem::Str => Val::Str(Rc::from("")),
            Elem::Int => Val::Int(0),
            Elem::Any => Val::Nil,
        }
    }

    pub fn is_iface(self) -> bool {
        self == Elem::Any
    }

    fn name(self) -> &'static str {
        match self {
            Elem::Str => "string",
            Elem::Int => "int",
            Elem::Any => "interface {}",
        }
    }
}

impl<'a> Val<'a> {
    pub fn from_json(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Nil,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Val::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Val::Uint(u)
                } else {
                    Val::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            _ => Val::Json(v),
        }
    }

    /// `Nil` as the invalid value (what Go makes of a nil interface handed over whole).
    pub fn unwrap_nil(self) -> Val<'a> {
        match self {
            Val::Nil => Val::Missing,
            v => v,
        }
    }

    pub fn str(s: &str) -> Val<'a> {
        Val::Str(Rc::from(s))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            Val::Json(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Val::Missing | Val::Nil)
    }

    /// The elements of an array or list, each with the static type of the container.
    pub fn elements(&self) -> Option<Vec<Typed<'a>>> {
        match self {
            Val::Json(Value::Array(a)) => {
                let iface = Elem::of_array(a).is_iface();
                Some(
                    a.iter()
                        .map(|v| Typed {
                            val: Val::from_json(v),
                            iface,
                        })
                        .collect(),
                )
            }
            Val::List(l) => Some(l.iter().map(|v| Typed::concrete(v.clone())).collect()),
            _ => None,
        }
    }

    /// Go's truth: false, 0, nil, and empty strings, arrays and maps are false.
    pub fn truth(&self) -> bool {
        match self {
            Val::Missing | Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Uint(u) => *u != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::Json(Value::String(s)) => !s.is_empty(),
            Val::Json(Value::Array(a)) => !a.is_empty(),
            Val::Json(Value::Object(m)) => !m.is_empty(),
            Val::Json(_) => true,
            Val::List(l) => !l.is_empty(),
        }
    }

    /// Length of a string (bytes), array, list or object; `None` for anything else.
    pub fn len(&self) -> Option<usize> {
        match self {
            Val::Str(s) => Some(s.len()),
            Val::Json(Value::String(s)) => Some(s.len()),
            Val::Json(Value::Array(a)) => Some(a.len()),
            Val::Json(Value::Object(m)) => Some(m.len()),
            Val::List(l) => Some(l.len()),
            _ => None,
        }
    }

    /// Go's name for the value's type, as `%T` and error messages print it.
    pub fn type_name(&self) -> String {
        match self {
            Val::Missing => "<nil>".into(),
            Val::Nil => "interface {}".into(),
            Val::Bool(_) => "bool".into(),
            Val::Int(_) => "int".into(),
            Val::Uint(_) => "uint64".into(),
            Val::Float(_) => "float64".into(),
            Val::Str(_) | Val::Json(Value::String(_)) => "string".into(),
            Val::Json(Value::Array(a)) => format!("[]{}", Elem::of_array(a).name()),
            Val::Json(Value::Object(m)) => format!("map[string]{}", Elem::of_object(m).name()),
            Val::Json(_) => "interface {}".into(),
            Val::List(l) => {
                if !l.is_empty() && l.iter().all(|v| v.as_str().is_some()) {
                    "[]string".into()
                } else {
                    "[]interface {}".into()
                }
            }
        }
    }

    /// A JSON copy, for Docker's `json` function.
    pub fn to_json(&self) -> Value {
        match self {
            Val::Missing | Val::Nil => Value::Null,
            Val::Bool(b) => Value::Bool(*b),
            Val::Int(i) => Value::from(*i),
            Val::Uint(u) => Value::from(*u),
            Val::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Val::Str(s) => Value::String(s.to_string()),
            Val::Json(v) => (*v).clone(),
            Val::List(l) => Value::Array(l.iter().map(Val::to_json).collect()),
        }
    }
}
