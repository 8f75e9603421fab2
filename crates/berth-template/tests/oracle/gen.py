#!/usr/bin/env python3
"""Regenerates tests/vectors/go_exec.rs and tests/vectors/berth.rs: runs every case in
cases.py through Go's text/template (main.go, built with the Debian golang-go package)
and takes Go's output and exact error as the expectation; rows in OVERRIDE follow newer Go
or berth's data model instead and take berth's result, with the reason as a comment.
Not run by CI. Usage: python3 tests/oracle/gen.py (from the crate directory)."""
import json, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CRATE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from cases import GO, OURS

tmp = tempfile.mkdtemp()
ORACLE = os.path.join(tmp, "oracle")
env = dict(os.environ, GO111MODULE="off", GOPATH=os.path.join(tmp, "gopath"), GOCACHE=os.path.join(tmp, "gocache"))
subprocess.run(["go", "build", "-o", ORACLE, os.path.join(HERE, "main.go")], check=True, env=env)
subprocess.run(["cargo", "build", "-q", "--example", "run_cases"], check=True, cwd=CRATE)
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(CRATE, "..", "..", "target"))
MINE = os.path.join(target, "debug", "examples", "run_cases")


def jl(cases):
    lines = []
    for c in cases:
        d = {"name": c[0], "tmpl": c[1], "data": c[2]}
        if len(c) > 3 and isinstance(c[3], str):
            d["opt"] = c[3]
        lines.append(json.dumps(d))
    return "\n".join(lines) + "\n"


def run(binary, cases):
    p = subprocess.run([binary], input=jl(cases), capture_output=True, text=True, check=True)
    return [json.loads(l) for l in p.stdout.splitlines()]


OVERRIDE = {
 "with else with": "Go 1.23 added {{else with}} (Go's own vector expects this)",
 "with else with chain": "Go 1.23 added {{else with}} (Go's own vector expects this)",
 "range 5": "Go 1.22 ranges over integers (Go's own vector expects this)",
 "range int": "Go 1.22 ranges over integers",
 "issue56490": "Go 1.21 fixed range assignment (Go's own vector expects this)",
 "empty call after pipe invalid": "newer Go names the callee",
 "exec: call": "newer Go names the callee",
 "cmp eq `xy` 1": "newer Go names both types",
 "cmp eq 2 2.0": "newer Go names both types",
 "eq mixed": "newer Go names both types",
 "eq float int": "newer Go names both types",
 "json all": "object keys keep the order the caller built (Go sorts map keys)",
 "big ints": "integers above int64 stay uint64 (Go's decoder would make float64)",
 "parse: rparen": "newer Go's lexer reports the stray paren itself",
 "recursion": "berth bounds template depth at 1000 (Go: 100000)",
}
def rs(s):
    out = []
    for ch in s:
        if ch == '\\': out.append('\\\\')
        elif ch == '"': out.append('\\"')
        elif ch == '\n': out.append('\\n')
        elif ch == '\t': out.append('\\t')
        elif ch == '\r': out.append('\\r')
        elif ord(ch) < 0x20 or ord(ch) == 0x7f: out.append('\\u{%x}' % ord(ch))
        else: out.append(ch)
    return '"' + ''.join(out) + '"'
def rows(cases):
    oracle = run(ORACLE, cases)
    mine = run(MINE, cases)
    lines = []
    for c, o, m in zip(cases, oracle, mine):
        exp = o
        note = ""
        if c[0] in OVERRIDE:
            exp = m; note = "  // " + OVERRIDE[c[0]]
        opt = c[3] if len(c) > 3 and isinstance(c[3], str) else ""
        data = json.dumps(c[2], ensure_ascii=False)
        err = "None" if "err" not in exp else "Some(%s)" % rs(exp["err"])
        lines.append("    (%s, %s, %s, %s, %s, %s),%s" % (rs(c[0]), rs(c[1]), rs(data), rs(opt), rs(exp.get("out") or ""), err, note))
    return "\n".join(lines)
go_cases = [(g[0], g[1], g[2]) for g in GO]
hdr = '''// Generated from the corpus in the crate's test notes: expected outputs and errors are what
// Go's text/template printed for the same template and JSON data (Docker's functions
// defined as in docker/cli); rows marked with a comment follow newer Go or berth's model.

/// (name, template, data as JSON, option, output, error)
pub type Row = (&'static str, &'static str, &'static str, &'static str, &'static str, Option<&'static str>);
'''
VEC = os.path.join(CRATE, "tests", "vectors")
open(os.path.join(VEC, "go_exec.rs"), "w").write(hdr + "\n/// Go's exec_test.go vectors (execTests, cmpTests, TestInterfaceValues and others) that apply\n/// to JSON data, Go's T value written as JSON.\npub const GO_EXEC: &[Row] = &[\n" + rows(go_cases) + "\n];\n")
open(os.path.join(VEC, "berth.rs"), "w").write("// Generated like go_exec.rs: berth's own cases, checked against Go's text/template.\n\nuse super::go_exec::Row;\n\n/// Docker's functions, fmt verbs, JSON shapes, error positions and parse errors.\npub const BERTH: &[Row] = &[\n" + rows(list(OURS)) + "\n];\n")
mine = run(MINE, go_cases)
bad = [g[0] for g, m in zip(GO, mine) if ("err" not in m) != g[3] or ("err" not in m and m.get("out") != g[4])]
print(len(GO), "Go vectors;", len(GO) - len(bad), "give Go's own expected result", bad)
