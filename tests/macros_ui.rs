//! Compile-time behaviour of `#[kinesis::handlers]` and `#[derive(Persist)]`:
//! what they accept (`tests/ui/pass`, compiled and run) and the errors they
//! give for unsupported uses (`tests/ui/fail`, compared with the `.stderr`
//! files next to them; regenerate with `TRYBUILD=overwrite` and review).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
