//! `Runtime::exec_streaming`: standard input and output of a command in a
//! container streamed from and to async readers and writers, on the real podman
//! and on the fake.

use std::pin::Pin;
use std::task::{Context, Poll};

use homelab_podman::{
    ConnectOptions, ContainerInfo, ContainerState, ContainerStatus, Error, ExecOutput, ExecSpec,
    FakeRuntime, Fallback, Operation, Podman, Runtime,
};
use immich_db_testhost::{Cleanup, Host, require_host, unique_name};

async fn connect(host: &Host) -> Podman {
    Podman::connect_with(
        &ConnectOptions::new()
            .socket(host.runtime_dir.join("podman/podman.sock"))
            .fallback(Fallback::Fail),
    )
    .await
    .expect("root's user socket answers")
}

/// Deterministic bytes that are not all alike (xorshift), so that a reordered
/// or dropped chunk shows.
fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

/// A writer that fails once it has taken `limit` bytes, as a full disk does.
struct FullDisk {
    taken: usize,
    limit: usize,
}

impl tokio::io::AsyncWrite for FullDisk {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.taken >= self.limit {
            return Poll::Ready(Err(std::io::Error::from_raw_os_error(28)));
        }
        let n = buf.len().min(self.limit - self.taken);
        self.taken += n;
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn large_input_and_output_stream_through_a_real_container() {
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("stream");
    let mut cleanup = Cleanup::new(host);
    cleanup.container(&name);
    host.podman_ok([
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        &host.valkey_image,
    ]);

    // 24 MiB in, through `cat`, and back out: every byte, in order.
    let input = pattern(24 << 20);
    let mut reader: &[u8] = &input;
    let mut output: Vec<u8> = Vec::new();
    let out = podman
        .exec_streaming(
            &name,
            &ExecSpec::new(["sh", "-c", "cat; echo done >&2; exit 3"]),
            Some(&mut reader),
            &mut output,
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 3);
    assert_eq!(out.stderr_text(), "done\n");
    assert!(out.stdout.is_empty());
    assert_eq!(output.len(), input.len());
    assert!(output == input, "the bytes came back changed or reordered");

    // Output only, with no standard input attached: the command sees EOF at
    // once rather than waiting.
    let mut output: Vec<u8> = Vec::new();
    let out = podman
        .exec_streaming(
            &name,
            &ExecSpec::new(["sh", "-c", "head -c 3000000 /dev/zero; cat"]),
            None,
            &mut output,
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.stderr_text());
    assert_eq!(output.len(), 3_000_000);

    // A command that stops reading early is not an error of ours, and its
    // output arrives whole: podman used to drop it now and then when the
    // command ended with input unread (the first failure in CI).
    let mut reader: &[u8] = &input;
    let mut output: Vec<u8> = Vec::new();
    let out = podman
        .exec_streaming(
            &name,
            &ExecSpec::new(["head", "-c", "10"]),
            Some(&mut reader),
            &mut output,
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(output, input[..10]);

    // A writer that fails ends the call with an error naming the stream.
    let mut disk = FullDisk {
        taken: 0,
        limit: 1 << 20,
    };
    let err = podman
        .exec_streaming(
            &name,
            &ExecSpec::new(["head", "-c", "8000000", "/dev/zero"]),
            None,
            &mut disk,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ExecStream { stream: "standard output", container, .. } if *container == name),
        "{err:?}"
    );
    assert!(err.to_string().contains("No space left"), "{err}");

    // The container is unharmed and answers normally afterwards.
    let out = podman
        .exec(&name, &ExecSpec::new(["echo", "still here"]))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "still here\n");

    // A missing container is NotFound, as for exec.
    let mut sink: Vec<u8> = Vec::new();
    let err = podman
        .exec_streaming(
            &unique_name("absent"),
            &ExecSpec::new(["true"]),
            None,
            &mut sink,
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

/// A reader that hands out `good` bytes, then fails as a disk read does.
struct FailingInput {
    good: usize,
}

impl tokio::io::AsyncRead for FailingInput {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.good == 0 {
            return Poll::Ready(Err(std::io::Error::from_raw_os_error(5)));
        }
        let n = self.good.min(buf.remaining()).min(4096);
        buf.put_slice(&vec![b'x'; n]);
        self.good -= n;
        Poll::Ready(Ok(()))
    }
}

/// Regression test for output lost when a command ends with its input unread:
/// podman then ended the attach before relaying the last output, which came
/// back empty about one time in thirty. Each round here used to fail (or be
/// reported cut off by podman) far more often than not.
#[tokio::test(flavor = "multi_thread")]
async fn output_is_whole_when_a_command_ends_with_input_unread() {
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("unread");
    let mut cleanup = Cleanup::new(host);
    cleanup.container(&name);
    host.podman_ok([
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        &host.valkey_image,
    ]);
    let input = pattern(4 << 20);
    for round in 0..15 {
        let mut reader: &[u8] = &input;
        let mut output: Vec<u8> = Vec::new();
        let out = podman
            .exec_streaming(
                &name,
                &ExecSpec::new(["head", "-c", "10"]),
                Some(&mut reader),
                &mut output,
            )
            .await
            .unwrap_or_else(|e| panic!("round {round}, streaming: {e}"));
        assert_eq!(out.exit_code, 0, "round {round}: {}", out.stderr_text());
        assert_eq!(output, input[..10], "round {round}, streaming");

        let out = podman
            .exec(
                &name,
                &ExecSpec::new(["sh", "-c", "head -c 7; echo gone >&2; exit 4"])
                    .stdin(input.clone()),
            )
            .await
            .unwrap_or_else(|e| panic!("round {round}, buffered: {e}"));
        assert_eq!(out.exit_code, 4, "round {round}");
        assert_eq!(out.stdout, input[..7], "round {round}, buffered");
        assert_eq!(out.stderr_text(), "gone\n", "round {round}");
    }

    // A command that reads nothing at all keeps its exit code and output.
    let out = podman
        .exec(
            &name,
            &ExecSpec::new(["sh", "-c", "echo ignored; exit 5"]).stdin(input.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout_text().as_str()),
        (5, "ignored\n")
    );

    // A program that does not exist is the shell's 127, with its message.
    let out = podman
        .exec(
            &name,
            &ExecSpec::new(["no-such-program-here"]).stdin(b"x".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 127, "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("no-such-program-here"),
        "{}",
        out.stderr_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_input_reader_ends_the_call_with_an_error() {
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("badinput");
    let mut cleanup = Cleanup::new(host);
    cleanup.container(&name);
    host.podman_ok([
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        &host.valkey_image,
    ]);
    let mut input = FailingInput { good: 1 << 20 };
    let mut output: Vec<u8> = Vec::new();
    // `cat` waits for more input than comes: the call must not wait with it.
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        podman.exec_streaming(
            &name,
            &ExecSpec::new(["cat"]),
            Some(&mut input),
            &mut output,
        ),
    )
    .await
    .expect("the call ends once the input fails")
    .unwrap_err();
    assert!(
        matches!(&err, Error::ExecStream { stream: "standard input", container, .. } if *container == name),
        "{err:?}"
    );
    assert!(err.to_string().contains("Input/output error"), "{err}");

    // The container is unharmed.
    let out = podman
        .exec(&name, &ExecSpec::new(["echo", "fine"]))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "fine\n");
}

fn running(name: &str) -> ContainerInfo {
    let mut state = ContainerState::new(ContainerStatus::Running);
    state.pid = Some(1);
    ContainerInfo::new(format!("{name}-id"), name, "image", state)
}

#[tokio::test]
async fn the_fake_streams_its_scripted_output_and_feeds_the_script_the_input() {
    let fake = FakeRuntime::new();
    fake.add_container(running("db"));
    fake.script_exec("db", |spec| {
        let reversed: Vec<u8> = spec
            .stdin_bytes()
            .unwrap_or_default()
            .iter()
            .rev()
            .copied()
            .collect();
        ExecOutput::new(0, reversed, "reversed")
    });
    let mut reader: &[u8] = b"abc";
    let mut output = Vec::new();
    let out = fake
        .exec_streaming(
            "db",
            &ExecSpec::new(["rev"]),
            Some(&mut reader),
            &mut output,
        )
        .await
        .unwrap();
    assert_eq!(output, b"cba");
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr, b"reversed");
    assert_eq!(fake.calls_to(Operation::ExecStreaming), ["db"]);

    let mut disk = FullDisk { taken: 0, limit: 1 };
    let mut reader: &[u8] = b"abc";
    let err = fake
        .exec_streaming("db", &ExecSpec::new(["rev"]), Some(&mut reader), &mut disk)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ExecStream { .. }), "{err:?}");
}
