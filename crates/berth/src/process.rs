//! Running a helper program (a credential helper, a token command) with a
//! time limit and a cap on what is read from it.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a program that finished gave back.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    /// At most the cap given to [`run_bounded`].
    pub(crate) stdout: Vec<u8>,
    /// At most the cap given to [`run_bounded`].
    pub(crate) stderr: Vec<u8>,
}

/// Why a program gave nothing back.
#[derive(Debug)]
pub(crate) enum RunFailure {
    /// It could not be started.
    Spawn(std::io::Error),
    /// It was still running after the time limit, and was killed.
    TimedOut(Duration),
    /// Waiting for it failed.
    Wait(std::io::Error),
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunFailure::Spawn(e) => write!(f, "cannot run it: {e}"),
            RunFailure::TimedOut(limit) => {
                write!(f, "it did not finish within {} s", limit.as_secs())
            }
            RunFailure::Wait(e) => write!(f, "cannot wait for it: {e}"),
        }
    }
}

/// Runs `command` with `input` on its stdin (`None`: no stdin), reading at
/// most `max_output` bytes of each of stdout and stderr. A program still
/// running after `timeout` is killed. A program that exits without reading
/// its input is answered by its exit status, not by the closed pipe.
pub(crate) fn run_bounded(
    command: &mut Command,
    input: Option<Vec<u8>>,
    timeout: Duration,
    max_output: u64,
) -> Result<Finished, RunFailure> {
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn_retrying(command).map_err(RunFailure::Spawn)?;
    // Every pipe on a thread of its own, so that none can fill up and stall
    // the program while another is being served.
    let writer = child.stdin.take().zip(input).map(|(mut stdin, input)| {
        std::thread::spawn(move || {
            // A broken pipe is the program not wanting its input.
            let _ = stdin.write_all(&input);
        })
    });
    let stdout = reader(child.stdout.take(), max_output);
    let stderr = reader(child.stderr.take(), max_output);
    let status = wait_until(&mut child, timeout)?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn reader(pipe: Option<impl Read + Send + 'static>, max: u64) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(p) = pipe {
            let mut p = p.take(max);
            let _ = p.read_to_end(&mut out);
            // Drain the rest so the program is not blocked on a full pipe.
            let _ = std::io::copy(&mut p.into_inner(), &mut std::io::sink());
        }
        out
    })
}

fn wait_until(child: &mut Child, timeout: Duration) -> Result<ExitStatus, RunFailure> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunFailure::TimedOut(timeout));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(RunFailure::Wait(e)),
        }
    }
}

/// Spawns `command`, trying again briefly on ETXTBSY: a program just
/// written is still open for writing in a process that forked meanwhile,
/// and that clears at once.
fn spawn_retrying(command: &mut Command) -> std::io::Result<Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(26) && attempts < 10 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script);
        c
    }

    #[test]
    fn input_in_output_out() {
        let done = run_bounded(
            &mut sh("cat; echo err >&2"),
            Some(b"hello".to_vec()),
            Duration::from_secs(10),
            1024,
        )
        .expect("runs");
        assert!(done.status.success());
        assert_eq!(done.stdout, b"hello");
        assert_eq!(done.stderr, b"err\n");
    }

    #[test]
    fn a_program_that_hangs_is_killed_at_the_limit() {
        let started = Instant::now();
        let e = run_bounded(
            &mut sh("exec sleep 30"),
            Some(b"x".to_vec()),
            Duration::from_millis(200),
            1024,
        )
        .expect_err("times out");
        assert!(matches!(e, RunFailure::TimedOut(_)), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn output_past_the_cap_is_drained_not_kept() {
        // 1 MiB on stdout: more than a pipe holds, so an undrained pipe
        // would keep the program from exiting.
        let done = run_bounded(
            &mut sh("head -c 1048576 /dev/zero"),
            None,
            Duration::from_secs(10),
            100,
        )
        .expect("runs");
        assert!(done.status.success());
        assert_eq!(done.stdout.len(), 100);
    }
}
