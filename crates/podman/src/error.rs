//! [`Error`]: why an operation on the container runtime failed.

use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::time::Duration;

/// The command that starts the podman service socket of the calling user.
pub const START_SOCKET_COMMAND: &str = "systemctl --user start podman.socket";

/// What kind of podman object an error is about.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A podman network.
    Network,
    /// A container.
    Container,
    /// An image.
    Image,
    /// A podman secret.
    Secret,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Network => "network",
            Self::Container => "container",
            Self::Image => "image",
            Self::Secret => "secret",
        })
    }
}

/// A socket that was tried while connecting, and why it did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketAttempt {
    /// The socket path.
    pub socket: PathBuf,
    /// Why podman did not answer there (`no such file`, `connection refused`, ...).
    pub reason: String,
}

impl fmt::Display for SocketAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.socket.display(), self.reason)
    }
}

fn list_attempts(tried: &[SocketAttempt]) -> String {
    let mut out = String::new();
    for a in tried {
        let _ = write!(out, "\n  - {a}");
    }
    out
}

fn name_suffix(name: Option<&str>) -> String {
    name.map(|n| format!(" `{n}`")).unwrap_or_default()
}

/// Why an operation on the container runtime failed.
///
/// Every variant says what was being done and to what; none carries a secret's
/// value.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No podman service answered on any socket, and the connection was told not
    /// to start one ([`Fallback::Fail`](crate::Fallback::Fail)).
    #[error(
        "no podman service answers on {}{}\nstart the service socket with `{command}` (or pass the socket path of a running `podman system service`)",
        if tried.len() == 1 { "this socket:" } else { "any of these sockets:" },
        list_attempts(tried)
    )]
    NoService {
        /// Every socket tried, in order, with the reason it did not answer.
        tried: Vec<SocketAttempt>,
        /// The command that starts the user's podman service socket
        /// ([`START_SOCKET_COMMAND`]).
        command: &'static str,
    },

    /// A private `podman system service` could not be started.
    #[error("cannot start a private podman service (`{command}`): {reason}")]
    PrivateService {
        /// The command line that was run.
        command: String,
        /// What went wrong: the program is missing, it exited (with the end of its
        /// error output), or its socket did not answer in time.
        reason: String,
    },

    /// The podman service socket stopped answering during an operation.
    #[error("cannot talk to podman at {}: {source} (while trying to {operation}{})", socket.display(), name_suffix(name.as_deref()))]
    Connection {
        /// The socket path.
        socket: PathBuf,
        /// What was being done.
        operation: &'static str,
        /// The object it was done to, when there is one.
        name: Option<String>,
        /// The I/O or HTTP error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The object does not exist.
    #[error("{kind} `{name}` does not exist")]
    NotFound {
        /// What kind of object was looked up.
        kind: ObjectKind,
        /// The name or ID that was looked up.
        name: String,
    },

    /// An object with this name already exists (and was left untouched).
    #[error("{kind} `{name}` already exists")]
    AlreadyExists {
        /// What kind of object.
        kind: ObjectKind,
        /// The name that is taken.
        name: String,
    },

    /// The object is in use (a network with containers on it, a secret a container
    /// uses) and was left untouched.
    #[error("{kind} `{name}` is in use: {message}")]
    InUse {
        /// What kind of object.
        kind: ObjectKind,
        /// Its name.
        name: String,
        /// Podman's explanation.
        message: String,
    },

    /// The container has no health check to run.
    #[error(
        "container `{container}` has no health check defined (give it one with HealthCmd= in its Quadlet unit, or --health-cmd)"
    )]
    NoHealthCheck {
        /// The container.
        container: String,
    },

    /// Podman refused the request.
    #[error("podman refused to {operation}{} (HTTP {status}): {message}", name_suffix(name.as_deref()))]
    Rejected {
        /// What was being done.
        operation: &'static str,
        /// The object it was done to, when there is one.
        name: Option<String>,
        /// The HTTP status podman answered with.
        status: u16,
        /// Podman's message.
        message: String,
    },

    /// Podman's answer could not be understood.
    #[error("unexpected answer from podman to {operation}{}: {detail}", name_suffix(name.as_deref()))]
    Protocol {
        /// What was being done.
        operation: &'static str,
        /// The object it was done to, when there is one.
        name: Option<String>,
        /// What was wrong with the answer (never the secret value it may hold).
        detail: String,
    },

    /// A subnet in CIDR notation could not be parsed.
    #[error(
        "invalid subnet `{input}`: {reason} (expected an address and a prefix length, such as 10.89.5.0/24)"
    )]
    InvalidCidr {
        /// The text that was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A network definition is inconsistent; nothing was created.
    #[error("invalid network `{network}`: {field}: {reason}")]
    InvalidNetwork {
        /// The network's name.
        network: String,
        /// The field at fault (`name`, `gateway`, `dns`, ...).
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A secret's value cannot be stored or read back exactly; nothing was changed.
    #[error("secret `{name}`: {reason}")]
    InvalidSecret {
        /// The secret's name.
        name: String,
        /// What is wrong (never the value itself).
        reason: String,
    },

    /// Resource statistics are not available for this container.
    #[error("no statistics for container `{container}`: {reason}")]
    StatsUnavailable {
        /// The container.
        container: String,
        /// Why (not running, no cgroup controller, ...).
        reason: String,
    },

    /// The standard input or output of a command in a container could not be
    /// read or written on this side (a full disk, a closed file); the command was
    /// cut off.
    #[error("cannot pass the {stream} of a command in container `{container}`: {source}")]
    ExecStream {
        /// The container.
        container: String,
        /// `standard input` or `standard output`.
        stream: &'static str,
        /// The I/O error of the reader or writer.
        source: std::io::Error,
    },

    /// Podman stopped relaying the output of a command in a container before
    /// the output ended, so what was received is incomplete, although the
    /// command exited with 0. (A command that failed is returned as failed,
    /// with podman's note at the end of its standard error.)
    #[error(
        "the output of a command in container `{container}` was cut off by podman before it ended: {reason}; the output received is incomplete"
    )]
    ExecOutputCut {
        /// The container.
        container: String,
        /// What podman reported.
        reason: String,
    },

    /// A container image reference is not valid; nothing was asked of podman.
    #[error(
        "invalid image reference `{reference}`: {reason} (write it as REGISTRY/PATH:TAG, such as docker.io/valkey/valkey:8)"
    )]
    InvalidImageReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An image could not be pulled (the registry cannot be reached, does not
    /// have it, or refused); nothing was stored.
    #[error(
        "cannot pull image `{image}`: {reason} (check the reference and that its registry is reachable, or load the image with `podman load`)"
    )]
    PullFailed {
        /// The image reference.
        image: String,
        /// Podman's explanation.
        reason: String,
    },

    /// An operation did not finish in time.
    #[error("timed out after {after:?} while trying to {operation}{}", name_suffix(name.as_deref()))]
    Timeout {
        /// What was being done.
        operation: &'static str,
        /// The object it was done to, when there is one.
        name: Option<String>,
        /// How long was waited.
        after: Duration,
    },
}

/// The result of an operation on the container runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this error says the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// The `{"cause", "message", "response"}` body podman answers errors with.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) cause: String,
    #[serde(default)]
    pub(crate) message: String,
}

/// Turns podman's answer to a failed request into an [`Error`].
pub(crate) fn from_status(
    operation: &'static str,
    kind: ObjectKind,
    name: Option<&str>,
    status: u16,
    body: &[u8],
) -> Error {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (cause, message) = match parsed {
        Some(b) => (b.cause, b.message),
        None => (
            String::new(),
            String::from_utf8_lossy(body).trim().to_owned(),
        ),
    };
    classify(operation, kind, name, status, &cause, message)
}

/// Maps podman's HTTP status and error cause to the matching variant.
pub(crate) fn classify(
    operation: &'static str,
    kind: ObjectKind,
    name: Option<&str>,
    status: u16,
    cause: &str,
    message: String,
) -> Error {
    let owned = || name.unwrap_or_default().to_owned();
    let lower = message.to_ascii_lowercase();
    let cause = cause.to_ascii_lowercase();
    if status == 404 || cause.starts_with("no such") {
        return Error::NotFound {
            kind,
            name: owned(),
        };
    }
    // "subnet 10.89.5.0/24 is already used on the host or by another config"
    // is about the subnet, not the name: the network does not exist.
    let subnet_taken = lower.contains("subnet") && lower.contains("already used");
    if !subnet_taken
        && (cause.contains("in use") && cause.contains("name")
            || cause.contains("already exists")
            || lower.contains("already exists")
            || lower.contains("name in use")
            || lower.contains("already used"))
    {
        return Error::AlreadyExists {
            kind,
            name: owned(),
        };
    }
    if lower.contains("no defined healthcheck") || lower.contains("has no defined health") {
        return Error::NoHealthCheck { container: owned() };
    }
    if ["in use", "being used", "associated containers", "dependent"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return Error::InUse {
            kind,
            name: owned(),
            message,
        };
    }
    Error::Rejected {
        operation,
        name: name.map(str::to_owned),
        status,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_service_names_the_command_and_every_socket() {
        let e = Error::NoService {
            tried: vec![
                SocketAttempt {
                    socket: "/run/podman/podman.sock".into(),
                    reason: "no such file".into(),
                },
                SocketAttempt {
                    socket: "/run/user/0/podman/podman.sock".into(),
                    reason: "connection refused".into(),
                },
            ],
            command: START_SOCKET_COMMAND,
        };
        let text = e.to_string();
        assert!(
            text.contains("systemctl --user start podman.socket"),
            "{text}"
        );
        assert!(
            text.contains("/run/podman/podman.sock: no such file"),
            "{text}"
        );
        assert!(text.contains("/run/user/0/podman/podman.sock: connection refused"));
    }

    #[test]
    fn podman_answers_map_to_variants() {
        let e = from_status(
            "inspect network",
            ObjectKind::Network,
            Some("n"),
            404,
            br#"{"cause":"network not found","message":"unable to find network with name or ID n: network not found","response":404}"#,
        );
        assert!(
            matches!(
                e,
                Error::NotFound {
                    kind: ObjectKind::Network,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = from_status(
            "create secret",
            ObjectKind::Secret,
            Some("s"),
            500,
            br#"{"cause":"secret name in use","message":"s: secret name in use","response":500}"#,
        );
        assert!(
            matches!(
                e,
                Error::AlreadyExists {
                    kind: ObjectKind::Secret,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = from_status(
            "remove secret",
            ObjectKind::Secret,
            Some("s"),
            404,
            br#"{"cause":"no such secret","message":"no secret with name or id \"s\": no such secret","response":404}"#,
        );
        assert!(e.is_not_found());
        let e = from_status(
            "run a command in container",
            ObjectKind::Container,
            Some("c"),
            409,
            br#"{"cause":"container state improper","message":"can only create exec sessions on running containers: container state improper","response":409}"#,
        );
        assert!(matches!(e, Error::Rejected { status: 409, .. }), "{e:?}");
        let e = from_status(
            "create network",
            ObjectKind::Network,
            Some("n"),
            500,
            br#"{"cause":"network already exists","message":"network name n already used: network already exists","response":409}"#,
        );
        assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
        // A subnet another network has is not the name being taken.
        let e = from_status(
            "create network",
            ObjectKind::Network,
            Some("n"),
            500,
            br#"{"cause":"subnet 10.213.81.0/24 is already used on the host or by another config","message":"subnet 10.213.81.0/24 is already used on the host or by another config","response":500}"#,
        );
        assert!(
            matches!(&e, Error::Rejected { message, .. } if message.contains("subnet")),
            "{e:?}"
        );
        let e = from_status("x", ObjectKind::Network, Some("n"), 500, b"boom");
        assert!(
            matches!(&e, Error::Rejected { status: 500, message, .. } if message == "boom"),
            "{e:?}"
        );
    }
}
