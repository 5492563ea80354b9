//! Running a command in a container with its standard streams attached.
//!
//! The exec session is created through podman-api and started on a raw
//! connection that podman takes over: this side writes the command's standard
//! input to it and reads back podman's frames of standard output and error
//! (an 8-byte header: the stream, three zero bytes, the length in big-endian,
//! then the bytes).
//!
//! # Why a command with standard input runs under `sh`
//!
//! Podman (up to 5.4 at least) relays the input to conmon while it relays the
//! output back. When a command ends with input still unread, conmon closes its
//! attach socket with that input queued, and podman's next read or write on the
//! socket fails with a reset. Podman then ends the attach on the spot: the
//! command's last output, still in the socket, is dropped, and the client sees
//! an exit code of 0 with the output missing. (A reset on a sequenced-packet
//! socket is reported before the data queued ahead of it.)
//!
//! So a command given standard input runs as `sh -c '"$@"; …; cat >/dev/null'`:
//! once it ends, `cat` reads what it left unread until the input ends, conmon
//! never closes with input queued, and podman relays every byte of output. The
//! exit code is the command's own. This needs `sh` and `cat` in the container.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use zeroize::Zeroizing;

use crate::error::{Error, ObjectKind, Result, from_status};
use crate::http::encode;
use crate::model::{ExecOutput, ExecSpec};
use crate::podman::Podman;

/// Runs `"$@"` and then reads its input to the end, exiting with the
/// command's status.
const DRAIN_SCRIPT: &str = r#""$@"; status=$?; cat >/dev/null 2>&1; exit "$status""#;

/// The command that runs `command` and then drains its input.
fn draining(command: &[String]) -> Vec<String> {
    let mut wrapped = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        DRAIN_SCRIPT.to_owned(),
        "sh".to_owned(),
    ];
    wrapped.extend(command.iter().cloned());
    wrapped
}

/// Whether a write to a command's standard input failed because podman no
/// longer reads it: it closed the stream (a broken pipe) or the connection (a
/// reset).
fn stopped_reading(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
    )
}

/// The line podman appends to the standard error stream when it gave up
/// relaying a command's streams (`Error: read unixpacket @->…/attach: …`): the
/// output before it may be incomplete.
pub(crate) fn relay_failure(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let last = text.trim_end_matches('\n').rsplit('\n').next()?;
    (last.starts_with("Error: ") && last.contains("/attach: ")).then(|| last.to_owned())
}

/// How far one exec's output has been read.
enum Frame {
    /// A frame of this stream, of this many bytes, follows.
    Header { stream: u8, len: usize },
    /// The output ended where a frame would start.
    End,
}

/// Reads the next frame header. A connection that ends (or is reset) exactly
/// between frames is the end of the output; one that ends inside a header is
/// an error.
async fn next_header<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Frame> {
    let mut header = [0u8; 8];
    let mut got = 0;
    while got < header.len() {
        let n = match reader.read(&mut header[got..]).await {
            Ok(n) => n,
            // Podman closes the connection with this side's unread input in it
            // when the command ends without reading everything; the kernel
            // reports that as a reset after the last byte podman sent.
            Err(e) if got == 0 && e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if got == 0 {
                return Ok(Frame::End);
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the output ended inside a frame header",
            ));
        }
        got += n;
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    Ok(Frame::Header {
        stream: header[0],
        len: usize::try_from(len).unwrap_or(usize::MAX),
    })
}

/// Why feeding a command's standard input stopped early.
enum FeedError {
    /// The caller's reader failed.
    Input(std::io::Error),
    /// The connection to podman failed (other than podman no longer reading).
    Connection(std::io::Error),
}

impl Podman {
    /// Runs `spec` in container `name`: its standard input read from `stdin`
    /// (when given), its standard output written to `stdout`, its standard
    /// error and exit code returned.
    pub(crate) async fn run_exec(
        &self,
        op: &'static str,
        name: &str,
        spec: &ExecSpec,
        stdin: Option<&mut (dyn AsyncRead + Unpin + Send)>,
        stdout: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<ExecOutput> {
        if spec.command().is_empty() {
            return Err(Error::Rejected {
                operation: op,
                name: Some(name.to_owned()),
                status: 400,
                message: "the command is empty".into(),
            });
        }
        let attach_stdin = stdin.is_some();
        let command = if attach_stdin {
            draining(spec.command())
        } else {
            spec.command().to_vec()
        };
        let exec = self
            .create_exec(op, name, spec, command, attach_stdin)
            .await?;
        let exec_id = exec.id().to_string();
        let attached = self
            .http()
            .attach(
                "POST",
                &format!("{}/exec/{}/start", self.native(), encode(&exec_id)),
                Some(("application/json", br#"{"Detach":false,"Tty":false}"#)),
            )
            .await
            .map_err(|e| self.connection_error(op, Some(name), e))?;
        let crate::http::Attached {
            status,
            mut body,
            input: mut writer,
        } = attached;
        if !(200..300).contains(&status) && status != 101 {
            let message = body
                .read_all()
                .await
                .map_err(|e| self.connection_error(op, Some(name), e))?;
            return Err(from_status(
                op,
                ObjectKind::Container,
                Some(name),
                status,
                &message,
            ));
        }
        let mut reader = body.into_stream();
        let stream_error = |stream: &'static str, source: std::io::Error| Error::ExecStream {
            container: name.to_owned(),
            stream,
            source,
        };

        let feed = async {
            if let Some(input) = stdin {
                // Zeroed when dropped: the input may be a password.
                let mut buffer = Zeroizing::new(vec![0u8; 64 * 1024]);
                loop {
                    let n = input.read(&mut buffer).await.map_err(FeedError::Input)?;
                    if n == 0 {
                        break;
                    }
                    match writer.write_all(&buffer[..n]).await {
                        Ok(()) => {}
                        // The command is gone; what it wrote still arrives, and
                        // its exit code says how it ended.
                        Err(e) if stopped_reading(&e) => return Ok(()),
                        Err(e) => return Err(FeedError::Connection(e)),
                    }
                }
            }
            // Shutting down this side's half is the end of the command's input.
            match writer.shutdown().await {
                Err(e) if !stopped_reading(&e) => Err(FeedError::Connection(e)),
                _ => Ok(()),
            }
        };
        let collect = async {
            let mut out = ExecOutput::default();
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let (stream, mut left) = match next_header(&mut reader).await {
                    Ok(Frame::Header { stream, len }) => (stream, len),
                    Ok(Frame::End) => break,
                    Err(e) => return Err(self.connection_error(op, Some(name), e)),
                };
                if !matches!(stream, 0..=2) {
                    return Err(Error::Protocol {
                        operation: op,
                        name: Some(name.to_owned()),
                        detail: format!("an output frame names stream {stream}"),
                    });
                }
                while left > 0 {
                    let want = left.min(buffer.len());
                    let n = reader
                        .read(&mut buffer[..want])
                        .await
                        .map_err(|e| self.connection_error(op, Some(name), e))?;
                    if n == 0 {
                        let e = std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the output ended inside a frame",
                        );
                        return Err(self.connection_error(op, Some(name), e));
                    }
                    match stream {
                        1 => stdout
                            .write_all(&buffer[..n])
                            .await
                            .map_err(|e| stream_error("standard output", e))?,
                        2 => out.stderr.extend_from_slice(&buffer[..n]),
                        _ => {}
                    }
                    left -= n;
                }
            }
            stdout
                .flush()
                .await
                .map_err(|e| stream_error("standard output", e))?;
            Ok(out)
        };

        let feed = std::pin::pin!(feed);
        let collect = std::pin::pin!(collect);
        let mut out = match futures_util::future::select(feed, collect).await {
            futures_util::future::Either::Left((input_result, collect)) => {
                match input_result {
                    Ok(()) => {}
                    Err(FeedError::Input(e)) => return Err(stream_error("standard input", e)),
                    Err(FeedError::Connection(e)) => {
                        return Err(self.connection_error(op, Some(name), e));
                    }
                }
                collect.await?
            }
            // The output has ended: whatever input is left has no reader.
            futures_util::future::Either::Right((collected, _feed)) => collected?,
        };
        out.exit_code = self.exec_exit_code(op, name, &exec).await?;
        // A command that failed is reported as failed, podman's note (at the end
        // of its standard error) included; one that succeeded must not look
        // complete when its output is not.
        if out.exit_code == 0
            && let Some(report) = relay_failure(&out.stderr)
        {
            return Err(Error::ExecOutputCut {
                container: name.to_owned(),
                reason: report,
            });
        }
        Ok(out)
    }

    /// Creates an exec session running `command` with `spec`'s environment,
    /// user and working directory, attached to its standard output and error
    /// (and input when asked).
    async fn create_exec(
        &self,
        op: &'static str,
        name: &str,
        spec: &ExecSpec,
        command: Vec<String>,
        attach_stdin: bool,
    ) -> Result<podman_api::api::Exec> {
        let mut builder = podman_api::opts::ExecCreateOpts::builder()
            .command(command)
            .attach_stdout(true)
            .attach_stderr(true)
            .attach_stdin(attach_stdin);
        let env: Vec<(&str, &str)> = spec.env_vars().collect();
        if !env.is_empty() {
            builder = builder.env(env);
        }
        if let Some(user) = spec.user_name() {
            builder = builder.user(podman_api::opts::UserOpt::User(user.to_owned()));
        }
        if let Some(dir) = spec.working_dir() {
            builder = builder.working_dir(dir);
        }
        self.api()
            .containers()
            .get(name)
            .create_exec(&builder.build())
            .await
            .map_err(|e| self.api_error(op, ObjectKind::Container, Some(name), e))
    }

    /// The exit code of an exec session whose output has ended.
    async fn exec_exit_code(
        &self,
        op: &'static str,
        name: &str,
        exec: &podman_api::api::Exec,
    ) -> Result<i32> {
        // Podman records the exit code a moment after the output ends; on a
        // busy host that moment can be long, and reading the code before then
        // would report a wrong one.
        const PATIENCE: Duration = Duration::from_secs(30);
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let details = exec
                .inspect()
                .await
                .map_err(|e| self.api_error(op, ObjectKind::Container, Some(name), e))?;
            if details.get("Running").and_then(serde_json::Value::as_bool) != Some(true) {
                return details
                    .get("ExitCode")
                    .and_then(serde_json::Value::as_i64)
                    .and_then(|c| i32::try_from(c).ok())
                    .ok_or_else(|| Error::Protocol {
                        operation: op,
                        name: Some(name.to_owned()),
                        detail: "the exec session has no exit code".into(),
                    });
            }
            if started.elapsed() > PATIENCE {
                return Err(Error::Timeout {
                    operation: "learn the exit code of a command in container",
                    name: Some(name.to_owned()),
                    after: PATIENCE,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_with_input_runs_under_a_draining_shell() {
        let wrapped = draining(&["head".to_owned(), "-c".to_owned(), "10".to_owned()]);
        assert_eq!(wrapped[..2], ["sh", "-c"]);
        assert_eq!(wrapped[3..], ["sh", "head", "-c", "10"]);
        assert!(wrapped[2].starts_with(r#""$@";"#), "{}", wrapped[2]);
        assert!(wrapped[2].contains("cat >/dev/null"), "{}", wrapped[2]);
    }

    #[test]
    fn podmans_relay_failure_is_recognised() {
        let cut = b"partial\nError: read unixpacket @->/proc/self/fd/16/attach: read: connection reset by peer\n";
        assert_eq!(
            relay_failure(cut).as_deref(),
            Some(
                "Error: read unixpacket @->/proc/self/fd/16/attach: read: connection reset by peer"
            )
        );
        let write = b"Error: write unixpacket @->/proc/self/fd/9/attach: write: broken pipe";
        assert!(relay_failure(write).is_some());
        // A command's own error lines are its business.
        assert_eq!(
            relay_failure(b"Error: relation \"x\" does not exist\n"),
            None
        );
        assert_eq!(
            relay_failure(b"Error: read unixpacket .../attach: reset\nand more\n"),
            None
        );
        assert_eq!(relay_failure(b""), None);
    }

    #[tokio::test]
    async fn frames_end_cleanly_only_between_frames() {
        let mut whole: &[u8] = &[1, 0, 0, 0, 0, 0, 0, 2, b'o', b'k'];
        assert!(matches!(
            next_header(&mut whole).await.unwrap(),
            Frame::Header { stream: 1, len: 2 }
        ));
        let mut rest: &[u8] = &[];
        assert!(matches!(next_header(&mut rest).await.unwrap(), Frame::End));
        let mut cut: &[u8] = &[2, 0, 0];
        let e = next_header(&mut cut).await.err().unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
