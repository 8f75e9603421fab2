//! Go's own text/template execution vectors, transcribed as data (template, JSON data,
//! expected output or exact error), must all give Go's results.

mod vectors;

#[test]
fn go_exec_vectors_give_gos_output_and_errors() {
    let failures = vectors::check(vectors::go_exec::GO_EXEC);
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        vectors::go_exec::GO_EXEC.len(),
        failures.join("\n")
    );
}

#[test]
fn berth_cases_match_go_text_template() {
    let failures = vectors::check(vectors::berth::BERTH);
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        vectors::berth::BERTH.len(),
        failures.join("\n")
    );
}
