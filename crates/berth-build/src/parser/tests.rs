use super::*;

fn parse(s: &str) -> Ast {
    parse_ast(s.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(s: &str) -> ParseError {
    parse_ast(s.as_bytes(), &Limits::default()).unwrap_err()
}

#[test]
fn nodes_carry_their_line_ranges() {
    let ast = parse("FROM a\n\n# c\nRUN x \\\n  # inside\n  y\nCOPY <<EOF /f\nhi\nEOF\nUSER u");
    let lines: Vec<_> = ast
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(lines, vec![(1, 1), (4, 6), (7, 9), (10, 10)]);
    assert_eq!(ast.nodes[1].args, vec!["x   y"]);
}

#[test]
fn backtick_escape_directive() {
    let ast = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo");
    assert_eq!(ast.directives.escape, '`');
    assert_eq!(ast.nodes[1].args, vec!["dir c:\\   && echo"]);
}

#[test]
fn directive_after_instruction_is_a_comment() {
    let ast = parse("FROM a\n# escape=`\nRUN a \\\n b");
    assert_eq!(ast.directives.escape, '\\');
    assert_eq!(ast.nodes[1].args, vec!["a  b"]);
}

#[test]
fn empty_continuation_lines_warn() {
    let ast = parse("FROM a\nRUN a \\\n\n  b");
    assert_eq!(ast.nodes[1].args, vec!["a   b"]);
    assert_eq!(ast.warnings.len(), 1);
    assert_eq!(ast.warnings[0].line, 4);
}

#[test]
fn heredocs_read_their_bodies_in_order() {
    let ast = parse("FROM a\nRUN <<A cat - <<-'B'\none $x\nA\n\ttwo\n\tB\nRUN done");
    let h = &ast.nodes[1].heredocs;
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[0].name.as_str(), h[0].content.as_str(), h[0].expand),
        ("A", "one $x\n", true)
    );
    assert_eq!(
        (
            h[1].name.as_str(),
            h[1].content.as_str(),
            h[1].expand,
            h[1].chomp
        ),
        ("B", "\ttwo\n", false, true)
    );
    assert_eq!(ast.nodes[2].start_line, 7);
}

#[test]
fn heredoc_markers_in_exec_form_are_text() {
    let ast = parse("FROM a\nRUN [\"cat\", \"<<EOF\"]\nUSER x");
    assert!(ast.nodes[1].heredocs.is_empty());
    assert_eq!(ast.nodes.len(), 3);
}

#[test]
fn onbuild_heredoc_belongs_to_onbuild() {
    let ast = parse("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\n");
    assert_eq!(ast.nodes[1].heredocs.len(), 1);
    assert_eq!(ast.nodes[1].dump(), "onbuild (run \"<<EOF\")");
}

#[test]
fn unterminated_heredoc_names_its_line() {
    let e = parse_err("FROM a\n\nRUN <<EOF\nx\n");
    assert_eq!(e.line, 3);
    assert_eq!(e.to_string(), "Dockerfile:3: unterminated heredoc");
}

#[test]
fn empty_and_comment_only_files_are_errors() {
    assert_eq!(parse_err("").kind, ParseErrorKind::NoInstructions);
    assert_eq!(
        parse_err("# just\n\n# comments\n").kind,
        ParseErrorKind::NoInstructions
    );
}

#[test]
fn long_lines_and_invalid_utf8_are_errors() {
    let long = format!("FROM a\nRUN {}\n", "x".repeat(70_000));
    assert_eq!(parse_err(&long).line, 2);
    let e = parse_ast(b"FROM a\nRUN \xff\n", &Limits::default()).unwrap_err();
    assert_eq!((e.line, e.kind), (2, ParseErrorKind::InvalidUtf8));
}

#[test]
fn non_string_json_is_an_error() {
    let e = parse_err("FROM a\nCMD [\"a\", 1]");
    assert_eq!(e.line, 2);
    assert!(e
        .to_string()
        .contains("arrays must be comprised of strings only"));
}

#[test]
fn crlf_line_endings() {
    let ast = parse("FROM a\r\nRUN a \\\r\n b\r\nCOPY <<EOF /x\r\nbody\r\nEOF\r\n");
    assert_eq!(ast.nodes[1].args, vec!["a  b"]);
    assert_eq!(ast.nodes[2].heredocs[0].content, "body\r\n");
}
