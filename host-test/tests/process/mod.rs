//! Runs a child process the way the suites that drive real programs (the
//! CLI binary, Node.js) need it: `stdin` written then closed, stdout and
//! stderr collected.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// Runs `cmd` to the end with `stdin` as its whole input.
pub fn output_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(stdin).expect("writing stdin");
    drop(input);
    child.wait_with_output().expect("the process finishes")
}
