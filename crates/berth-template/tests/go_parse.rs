//! Go's parser vectors (parse_test.go): the tree each template parses to, printed as Go
//! prints it, and the errors malformed templates give, with their line numbers.

use berth_template::Template;

/// (name, input, parses, Go's tree string); Go's `parseTests` less the complex constant one.
const PARSE: &[(&str, &str, bool, &str)] = &[
    ("empty", "", true, ""),
    ("comment", "{{/*\n\n\n*/}}", true, ""),
    ("spaces", " \t\n", true, "\" \\t\\n\""),
    ("text", "some text", true, "\"some text\""),
    ("emptyAction", "{{}}", false, ""),
    ("field", "{{.X}}", true, "{{.X}}"),
    ("simple command", "{{printf}}", true, "{{printf}}"),
    ("$ invocation", "{{$}}", true, "{{$}}"),
    (
        "variable invocation",
        "{{with $x := 3}}{{$x 23}}{{end}}",
        true,
        "{{with $x := 3}}{{$x 23}}{{end}}",
    ),
    ("variable with fields", "{{$.I}}", true, "{{$.I}}"),
    (
        "multi-word command",
        "{{printf `%d` 23}}",
        true,
        "{{printf `%d` 23}}",
    ),
    ("pipeline", "{{.X|.Y}}", true, "{{.X | .Y}}"),
    (
        "pipeline with decl",
        "{{$x := .X|.Y}}",
        true,
        "{{$x := .X | .Y}}",
    ),
    (
        "nested pipeline",
        "{{.X (.Y .Z) (.A | .B .C) (.E)}}",
        true,
        "{{.X (.Y .Z) (.A | .B .C) (.E)}}",
    ),
    (
        "field applied to parentheses",
        "{{(.Y .Z).Field}}",
        true,
        "{{(.Y .Z).Field}}",
    ),
    (
        "simple if",
        "{{if .X}}hello{{end}}",
        true,
        "{{if .X}}\"hello\"{{end}}",
    ),
    (
        "if with else",
        "{{if .X}}true{{else}}false{{end}}",
        true,
        "{{if .X}}\"true\"{{else}}\"false\"{{end}}",
    ),
    (
        "if with else if",
        "{{if .X}}true{{else if .Y}}false{{end}}",
        true,
        "{{if .X}}\"true\"{{else}}{{if .Y}}\"false\"{{end}}{{end}}",
    ),
    (
        "if else chain",
        "+{{if .X}}X{{else if .Y}}Y{{else if .Z}}Z{{end}}+",
        true,
        "\"+\"{{if .X}}\"X\"{{else}}{{if .Y}}\"Y\"{{else}}{{if .Z}}\"Z\"{{end}}{{end}}{{end}}\"+\"",
    ),
    (
        "simple range",
        "{{range .X}}hello{{end}}",
        true,
        "{{range .X}}\"hello\"{{end}}",
    ),
    (
        "chained field range",
        "{{range .X.Y.Z}}hello{{end}}",
        true,
        "{{range .X.Y.Z}}\"hello\"{{end}}",
    ),
    (
        "nested range",
        "{{range .X}}hello{{range .Y}}goodbye{{end}}{{end}}",
        true,
        "{{range .X}}\"hello\"{{range .Y}}\"goodbye\"{{end}}{{end}}",
    ),
    (
        "range with else",
        "{{range .X}}true{{else}}false{{end}}",
        true,
        "{{range .X}}\"true\"{{else}}\"false\"{{end}}",
    ),
    (
        "range over pipeline",
        "{{range .X|.M}}true{{else}}false{{end}}",
        true,
        "{{range .X | .M}}\"true\"{{else}}\"false\"{{end}}",
    ),
    (
        "range []int",
        "{{range .SI}}{{.}}{{end}}",
        true,
        "{{range .SI}}{{.}}{{end}}",
    ),
    (
        "range 1 var",
        "{{range $x := .SI}}{{.}}{{end}}",
        true,
        "{{range $x := .SI}}{{.}}{{end}}",
    ),
    (
        "range 2 vars",
        "{{range $x, $y := .SI}}{{.}}{{end}}",
        true,
        "{{range $x, $y := .SI}}{{.}}{{end}}",
    ),
    (
        "range with break",
        "{{range .SI}}{{.}}{{break}}{{end}}",
        true,
        "{{range .SI}}{{.}}{{break}}{{end}}",
    ),
    (
        "range with continue",
        "{{range .SI}}{{.}}{{continue}}{{end}}",
        true,
        "{{range .SI}}{{.}}{{continue}}{{end}}",
    ),
    ("template", "{{template `x`}}", true, "{{template \"x\"}}"),
    (
        "template with arg",
        "{{template `x` .Y}}",
        true,
        "{{template \"x\" .Y}}",
    ),
    (
        "with",
        "{{with .X}}hello{{end}}",
        true,
        "{{with .X}}\"hello\"{{end}}",
    ),
    (
        "with with else",
        "{{with .X}}hello{{else}}goodbye{{end}}",
        true,
        "{{with .X}}\"hello\"{{else}}\"goodbye\"{{end}}",
    ),
    (
        "with with else with",
        "{{with .X}}hello{{else with .Y}}goodbye{{end}}",
        true,
        "{{with .X}}\"hello\"{{else}}{{with .Y}}\"goodbye\"{{end}}{{end}}",
    ),
    (
        "with else chain",
        "{{with .X}}X{{else with .Y}}Y{{else with .Z}}Z{{end}}",
        true,
        "{{with .X}}\"X\"{{else}}{{with .Y}}\"Y\"{{else}}{{with .Z}}\"Z\"{{end}}{{end}}{{end}}",
    ),
    ("trim left", "x \r\n\t{{- 3}}", true, "\"x\"{{3}}"),
    ("trim right", "{{3 -}}\n\n\ty", true, "{{3}}\"y\""),
    (
        "trim left and right",
        "x \r\n\t{{- 3 -}}\n\n\ty",
        true,
        "\"x\"{{3}}\"y\"",
    ),
    (
        "trim with extra spaces",
        "x\n{{-  3   -}}\ny",
        true,
        "\"x\"{{3}}\"y\"",
    ),
    ("comment trim left", "x \r\n\t{{- /* hi */}}", true, "\"x\""),
    ("comment trim right", "{{/* hi */ -}}\n\n\ty", true, "\"y\""),
    (
        "comment trim left and right",
        "x \r\n\t{{- /* */ -}}\n\n\ty",
        true,
        "\"x\"\"y\"",
    ),
    (
        "block definition",
        "{{block \"foo\" .}}hello{{end}}",
        true,
        "{{template \"foo\" .}}",
    ),
    (
        "newline in assignment",
        "{{ $x \n := \n 1 \n }}",
        true,
        "{{$x := 1}}",
    ),
    ("newline in empty action", "{{\n}}", false, ""),
    (
        "newline in pipeline",
        "{{\n\"x\"\n|\nprintf\n}}",
        true,
        "{{\"x\" | printf}}",
    ),
    ("newline in comment", "{{/*\nhello\n*/}}", true, ""),
    ("newline in comment", "{{-\n/*\nhello\n*/\n-}}", true, ""),
    (
        "spaces around continue",
        "{{range .SI}}{{.}}{{ continue }}{{end}}",
        true,
        "{{range .SI}}{{.}}{{continue}}{{end}}",
    ),
    (
        "spaces around break",
        "{{range .SI}}{{.}}{{ break }}{{end}}",
        true,
        "{{range .SI}}{{.}}{{break}}{{end}}",
    ),
    ("unclosed action", "hello{{range", false, ""),
    ("unmatched end", "{{end}}", false, ""),
    ("unmatched else", "{{else}}", false, ""),
    (
        "unmatched else after if",
        "{{if .X}}hello{{end}}{{else}}",
        false,
        "",
    ),
    (
        "multiple else",
        "{{if .X}}1{{else}}2{{else}}3{{end}}",
        false,
        "",
    ),
    ("missing end", "hello{{range .x}}", false, ""),
    (
        "missing end after else",
        "hello{{range .x}}{{else}}",
        false,
        "",
    ),
    ("undefined function", "hello{{undefined}}", false, ""),
    ("undefined variable", "{{$x}}", false, ""),
    (
        "variable undefined after end",
        "{{with $x := 4}}{{end}}{{$x}}",
        false,
        "",
    ),
    (
        "variable undefined in template",
        "{{template $v}}",
        false,
        "",
    ),
    ("declare with field", "{{with $x.Y := 4}}{{end}}", false, ""),
    ("template with field ref", "{{template .X}}", false, ""),
    ("template with var", "{{template $v}}", false, ""),
    ("invalid punctuation", "{{printf 3, 4}}", false, ""),
    (
        "multidecl outside range",
        "{{with $v, $u := 3}}{{end}}",
        false,
        "",
    ),
    (
        "too many decls in range",
        "{{range $u, $v, $w := 3}}{{end}}",
        false,
        "",
    ),
    (
        "dot applied to parentheses",
        "{{printf (printf .).}}",
        false,
        "",
    ),
    ("adjacent args", "{{printf 3`x`}}", false, ""),
    ("adjacent args with .", "{{printf `x`.}}", false, ""),
    (
        "extra end after if",
        "{{if .X}}a{{else if .Y}}b{{end}}{{end}}",
        false,
        "",
    ),
    (
        "break outside range",
        "{{range .}}{{end}} {{break}}",
        false,
        "",
    ),
    (
        "continue outside range",
        "{{range .}}{{end}} {{continue}}",
        false,
        "",
    ),
    (
        "break in range else",
        "{{range .}}{{else}}{{break}}{{end}}",
        false,
        "",
    ),
    (
        "continue in range else",
        "{{range .}}{{else}}{{continue}}{{end}}",
        false,
        "",
    ),
    ("bug0a", "{{$x := 0}}{{$x}}", true, "{{$x := 0}}{{$x}}"),
    ("bug0b", "{{$x += 1}}{{$x}}", false, ""),
    ("bug0c", "{{$x ! 2}}{{$x}}", false, ""),
    ("bug0d", "{{$x % 3}}{{$x}}", false, ""),
    ("bug0e", "{{range $x := $y := 3}}{{end}}", false, ""),
    ("bug1a", "{{$x:=.}}{{$x!2}}", false, ""),
    ("bug1b", "{{$x:=.}}{{$x+2}}", false, ""),
    ("bug1c", "{{$x:=.}}{{$x +2}}", true, "{{$x := .}}{{$x +2}}"),
    (
        "bug2a",
        "{{range $x := 0}}{{$x}}{{end}}",
        true,
        "{{range $x := 0}}{{$x}}{{end}}",
    ),
    (
        "bug2b",
        "{{range $x = 0}}{{$x}}{{end}}",
        true,
        "{{range $x = 0}}{{$x}}{{end}}",
    ),
    ("dot after integer", "{{1.E}}", false, ""),
    ("dot after float", "{{0.1.E}}", false, ""),
    ("dot after boolean", "{{true.E}}", false, ""),
    ("dot after char", "{{'a'.any}}", false, ""),
    ("dot after string", "{{\"hello\".guys}}", false, ""),
    ("dot after dot", "{{..E}}", false, ""),
    ("dot after nil", "{{nil.E}}", false, ""),
    ("wrong pipeline dot", "{{12|.}}", false, ""),
    ("wrong pipeline number", "{{.|12|printf}}", false, ""),
    ("wrong pipeline string", "{{.|printf|\"error\"}}", false, ""),
    ("wrong pipeline char", "{{12|printf|'e'}}", false, ""),
    ("wrong pipeline boolean", "{{.|true}}", false, ""),
    ("wrong pipeline nil", "{{'c'|nil}}", false, ""),
    ("empty pipeline", "{{printf \"%d\" ( ) }}", false, ""),
    (
        "block definition",
        "{{block \"foo\"}}hello{{end}}",
        false,
        "",
    ),
    ("paren nesting normal", "{{ (( 1 )) }}", true, "{{((1))}}"),
    (
        "paren nesting in pipeline",
        "{{ ((( 1 ))) | printf }}",
        true,
        "{{(((1))) | printf}}",
    ),
    (
        "paren nesting with other constructs",
        "{{ if ((( true ))) }}YES{{ end }}",
        true,
        "{{if (((true)))}}\"YES\"{{end}}",
    ),
];

#[test]
fn go_parse_vectors_give_gos_trees_and_errors() {
    let mut failures = Vec::new();
    for &(name, input, ok, want) in PARSE {
        match (Template::parse_named(name, input), ok) {
            (Ok(t), true) => {
                let got = t.tree_string(name).unwrap_or_default();
                if got != want {
                    failures.push(format!("{name}: {input:?}: tree {got:?}, want {want:?}"));
                }
            }
            (Err(e), false) if e.to_string().starts_with(&format!("template: {name}:")) => {}
            (r, _) => failures.push(format!("{name}: {input:?}: got {r:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        PARSE.len(),
        failures.join("\n")
    );
}

/// Go's `errorTests`: each error must contain Go's text (line numbers included).
const ERRORS: &[(&str, &str, &str)] = &[
    ("unclosed1", "line1\n{{", "unclosed1:2: unclosed action"),
    (
        "unclosed2",
        "line1\n{{define `x`}}line2\n{{",
        "unclosed2:3: unclosed action",
    ),
    (
        "unclosed3",
        "line1\n{{\"x\"\n\"y\"\n",
        "unclosed3:4: unclosed action started at unclosed3:2",
    ),
    (
        "unclosed4",
        "{{\n\n\n\n\n",
        "unclosed4:6: unclosed action started at unclosed4:1",
    ),
    (
        "var1",
        "line1\n{{\nx\n}}",
        "var1:3: function \"x\" not defined",
    ),
    ("function", "{{foo}}", "function \"foo\" not defined"),
    ("comment1", "{{/*}}", "comment1:1: unclosed comment"),
    (
        "comment2",
        "{{/*\nhello\n}}",
        "comment2:1: unclosed comment",
    ),
    ("lparen", "{{.X (1 2 3}}", "unclosed left paren"),
    ("rparen", "{{.X 1 2 3 ) }}", "unexpected right paren"),
    ("rparen2", "{{(.X 1 2 3", "unclosed action"),
    ("space", "{{`x`3}}", "in operand"),
    ("idchar", "{{a#}}", "'#'"),
    ("charconst", "{{'a}}", "unterminated character constant"),
    ("stringconst", "{{\"a}}", "unterminated quoted string"),
    ("rawstringconst", "{{`a}}", "unterminated raw quoted string"),
    ("number", "{{0xi}}", "number syntax"),
    (
        "multidefine",
        "{{define `a`}}a{{end}}{{define `a`}}b{{end}}",
        "multiple definition of template",
    ),
    ("eof", "{{range .X}}", "unexpected EOF"),
    (
        "variable",
        "{{$x := 23}}{{with $x.y := 3}}{{$x 23}}{{end}}",
        "unexpected \":=\"",
    ),
    ("multidecl", "{{$a,$b,$c := 23}}", "too many declarations"),
    ("undefvar", "{{$a}}", "undefined variable"),
    ("wrongdot", "{{true.any}}", "unexpected . after term"),
    (
        "wrongpipeline",
        "{{12|false}}",
        "non executable command in pipeline",
    ),
    (
        "emptypipeline",
        "{{ ( ) }}",
        "missing value for parenthesized pipeline",
    ),
    (
        "multilinerawstring",
        "{{ $v := `\n` }} {{",
        "multilinerawstring:2: unclosed action",
    ),
    ("rangeundefvar", "{{range $k}}{{end}}", "undefined variable"),
    (
        "rangeundefvars",
        "{{range $k, $v}}{{end}}",
        "undefined variable",
    ),
    (
        "rangemissingvalue1",
        "{{range $k,}}{{end}}",
        "missing value for range",
    ),
    (
        "rangemissingvalue2",
        "{{range $k, $v := }}{{end}}",
        "missing value for range",
    ),
    (
        "rangenotvariable1",
        "{{range $k, .}}{{end}}",
        "range can only initialize variables",
    ),
    (
        "rangenotvariable2",
        "{{range $k, 123 := .}}{{end}}",
        "range can only initialize variables",
    ),
    (
        "unterminated",
        "hello\n\n{{`unterminated\n\n\n\n}}\n some more\n\n",
        "unterminated:3: unterminated raw quoted string",
    ),
];

#[test]
fn go_error_vectors_name_the_line_and_cause() {
    let mut failures = Vec::new();
    for &(name, input, want) in ERRORS {
        match Template::parse_named(name, input) {
            Err(e) if e.to_string().contains(want) => {}
            r => failures.push(format!("{name}: {input:?}: got {r:?}, want {want:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        ERRORS.len(),
        failures.join("\n")
    );
}

#[test]
fn nesting_beyond_the_bounds_is_a_parse_error_not_a_crash() {
    let deep_parens = format!("{{{{{}1{}}}}}", "(".repeat(5000), ")".repeat(5000));
    let e = Template::parse(&deep_parens).unwrap_err().to_string();
    assert_eq!(e, "template: :1: max expression depth exceeded");
    let deep_ifs = format!("{}x{}", "{{if 1}}".repeat(5000), "{{end}}".repeat(5000));
    let e = Template::parse(&deep_ifs).unwrap_err().to_string();
    assert_eq!(e, "template: :1: max control structure depth exceeded");
    let ok = format!("{}x{}", "{{if 1}}".repeat(90), "{{end}}".repeat(90));
    assert_eq!(
        Template::parse(&ok)
            .unwrap()
            .execute(&serde_json::Value::Null)
            .unwrap(),
        "x"
    );
}
