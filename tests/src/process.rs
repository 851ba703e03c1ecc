//! A server process started by a test or by the crash harness: stdin closed, stdout and
//! stderr both going to one file in a temporary directory of its own (so what it printed can
//! be read at any moment, complete, without reader threads), killed with SIGKILL on drop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use crate::server::{io, HarnessError};

/// How many lines of output an error message quotes.
pub const TAIL_LINES: usize = 40;

/// A child process and the file that collects its output.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// Set once the child has been waited for.
    status: Option<ExitStatus>,
    output: PathBuf,
    dir: tempfile::TempDir,
}

impl Process {
    /// A fresh temporary directory for a process's own files (its output, a ready file, a
    /// configuration file), to hand to [`Process::spawn`].
    pub fn scratch_dir() -> Result<tempfile::TempDir, HarnessError> {
        tempfile::Builder::new()
            .prefix("moodb-proc-")
            .tempdir()
            .map_err(io("creating a temporary directory for a server process"))
    }

    /// Spawns `cmd` with stdin closed and stdout and stderr appended to `dir/output.log`.
    pub fn spawn(mut cmd: Command, dir: tempfile::TempDir) -> Result<Process, HarnessError> {
        let output = dir.path().join("output.log");
        let file = File::create(&output).map_err(io("creating the server's output file"))?;
        let err = file
            .try_clone()
            .map_err(io("duplicating the output file"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(io(format!(
                "starting {} (is it built / installed?)",
                Path::new(cmd.get_program()).display()
            )))?;
        Ok(Process {
            child,
            status: None,
            output,
            dir,
        })
    }

    /// The process's own temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        std::fs::read(&self.output)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of [`Process::output`].
    pub fn output_tail(&self, lines: usize) -> String {
        let all = self.output();
        let kept: Vec<&str> = all.lines().collect();
        kept[kept.len().saturating_sub(lines)..].join("\n")
    }

    /// The exit status if the process has exited (it is reaped then), `None` while it runs.
    pub fn exit_status(&mut self) -> Result<Option<ExitStatus>, HarnessError> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(io("checking on the server process"))?;
        }
        Ok(self.status)
    }

    /// Whether the process is known to have exited (it has been waited for).
    pub fn reaped(&self) -> bool {
        self.status.is_some()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.exit_status(), Ok(None))
    }

    /// `kill -9`: the process gets no chance to sync or clean up. Waits for it.
    pub fn kill9(&mut self) -> Result<ExitStatus, HarnessError> {
        if let Some(status) = self.exit_status()? {
            return Ok(status);
        }
        self.child.kill().map_err(io("killing the server"))?;
        self.wait()
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> Result<ExitStatus, HarnessError> {
        if let Some(status) = self.exit_status()? {
            return Ok(status);
        }
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(io("sending SIGTERM"))?;
        if !sent.success() {
            self.child.kill().map_err(io("killing the server"))?;
        }
        self.wait()
    }

    fn wait(&mut self) -> Result<ExitStatus, HarnessError> {
        let status = self
            .child
            .wait()
            .map_err(io("waiting for the server process"))?;
        self.status = Some(status);
        Ok(status)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}
