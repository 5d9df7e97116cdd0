//! Runs a child process the way the suites that drive real programs (the
//! CLI binary, Node.js) need it: `stdin` written then closed, stdout and
//! stderr collected.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// Runs `cmd` to the end with `stdin` as its whole input.
#[allow(dead_code)] // Not every suite that shares this module feeds stdin.
pub fn output_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    let mut input = child.stdin.take().expect("stdin is piped");
    // A program may exit without reading its input (a usage error): then
    // the pipe is closed, which is no failure of the test.
    if let Err(e) = input.write_all(stdin) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing stdin: {e}"
        );
    }
    drop(input);
    child.wait_with_output().expect("the process finishes")
}

/// Installs Debian `package` with apt-get, unless `present()` already
/// holds, and checks `present()` afterwards. One install at a time: tests of
/// one binary run in parallel, and two apt-gets at once fail on dpkg's lock
/// (apt-get also waits up to two minutes for a lock held by another process).
/// `Err` carries apt-get's status and error output.
#[allow(dead_code)] // Not every suite that shares this module installs.
pub fn install_debian_package(package: &str, present: impl Fn() -> bool) -> Result<(), String> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if present() {
        return Ok(());
    }
    let script = format!(
        "apt-get -o DPkg::Lock::Timeout=120 update -qq && \
         DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq {package}"
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("apt-get could not be run: {e}"))?;
    if out.status.success() && present() {
        return Ok(());
    }
    Err(format!(
        "`apt-get install {package}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}
