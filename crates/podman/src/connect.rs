//! Finding the podman service socket, and starting a private service when none
//! answers.

use std::ffi::OsString;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Error, START_SOCKET_COMMAND, SocketAttempt};
use crate::http::{Http, ServiceHeaders};

/// The rootful podman service socket.
pub const ROOTFUL_SOCKET: &str = "/run/podman/podman.sock";

/// What to do when no podman service answers on any socket tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Start a private `podman system service --time=0` on a socket in a private
    /// temporary directory. It serves this connection (and its clones) only, and is
    /// stopped when the last of them is dropped. This works wherever the `podman`
    /// program works, with no systemd socket unit; the cost is a second or so to
    /// start it.
    #[default]
    StartPrivateService,
    /// Fail with [`Error::NoService`], which names every socket tried and the
    /// command that starts the user's service socket
    /// (`systemctl --user start podman.socket`).
    Fail,
}

/// How to connect to podman.
///
/// ```
/// use std::time::Duration;
/// use homelab_podman::{ConnectOptions, Fallback};
///
/// let options = ConnectOptions::new()
///     .socket("/run/user/1000/podman/podman.sock")
///     .fallback(Fallback::Fail)
///     .ping_timeout(Duration::from_secs(2));
/// assert_eq!(options.sockets()[0].to_str(), Some("/run/user/1000/podman/podman.sock"));
/// ```
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    sockets: Vec<PathBuf>,
    fallback: Fallback,
    podman_program: PathBuf,
    ping_timeout: Duration,
    start_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            sockets: default_sockets(),
            fallback: Fallback::default(),
            podman_program: PathBuf::from("podman"),
            ping_timeout: Duration::from_secs(5),
            start_timeout: Duration::from_secs(30),
        }
    }
}

impl ConnectOptions {
    /// The default sockets ([`default_sockets`]) and
    /// [`Fallback::StartPrivateService`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Tries only this socket (instead of the default ones).
    #[must_use]
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.sockets = vec![path.into()];
        self
    }

    /// What to do when no socket answers.
    #[must_use]
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// The `podman` program that a private service is started with (default:
    /// `podman` from `PATH`).
    #[must_use]
    pub fn podman_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.podman_program = program.into();
        self
    }

    /// How long to wait for a socket to answer (default 5 s; a socket-activated
    /// service may take a moment to start).
    #[must_use]
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// How long to wait for a private service to answer (default 30 s).
    #[must_use]
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// The sockets that will be tried, in order.
    pub fn sockets(&self) -> &[PathBuf] {
        &self.sockets
    }

    /// The fallback.
    pub fn fallback_mode(&self) -> Fallback {
        self.fallback
    }
}

/// The sockets tried by default, in order, for the calling user: for root
/// `/run/podman/podman.sock` then `$XDG_RUNTIME_DIR/podman/podman.sock`; for others
/// only the latter (`$XDG_RUNTIME_DIR` defaults to `/run/user/UID`).
pub fn default_sockets() -> Vec<PathBuf> {
    candidate_sockets(
        rustix::process::getuid().as_raw(),
        std::env::var_os("XDG_RUNTIME_DIR"),
    )
}

/// [`default_sockets`] for a given user ID and `$XDG_RUNTIME_DIR`.
pub fn candidate_sockets(uid: u32, xdg_runtime_dir: Option<OsString>) -> Vec<PathBuf> {
    let runtime_dir = xdg_runtime_dir
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(format!("/run/user/{uid}")), PathBuf::from);
    let user_socket = runtime_dir.join("podman/podman.sock");
    if uid == 0 {
        vec![PathBuf::from(ROOTFUL_SOCKET), user_socket]
    } else {
        vec![user_socket]
    }
}

/// Tries each socket in turn; the first that answers `_ping` (with what the
/// service said about itself), or every failure.
pub(crate) async fn find_socket(
    options: &ConnectOptions,
) -> Result<(PathBuf, ServiceHeaders), Vec<SocketAttempt>> {
    let mut tried = Vec::new();
    for socket in &options.sockets {
        match Http::new(socket).ping(options.ping_timeout).await {
            Ok(service) => return Ok((socket.clone(), service)),
            Err(e) => tried.push(SocketAttempt {
                socket: socket.clone(),
                reason: describe_io(&e),
            }),
        }
    }
    Err(tried)
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such socket".into(),
        std::io::ErrorKind::ConnectionRefused => "connection refused (nothing listens)".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Keeps at most this much of a private service's error output, in memory.
const STDERR_TAIL: usize = 8 * 1024;

/// A `podman system service` started for one connection, stopped when dropped.
#[derive(Debug)]
pub struct PrivateService {
    child: Mutex<Child>,
    socket: PathBuf,
    command: String,
    // Removed (with the socket) after the service has stopped.
    _dir: tempfile::TempDir,
}

impl PrivateService {
    /// Starts `podman system service --time=0 unix://DIR/podman.sock` in a new
    /// private directory and waits until it answers.
    pub(crate) async fn start(options: &ConnectOptions) -> Result<Arc<Self>, Error> {
        let parent = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let program = options.podman_program.display().to_string();
        let failed = |command: &str, reason: String| Error::PrivateService {
            command: command.to_owned(),
            reason,
        };
        // Mode 0700: only this user reaches the socket.
        let dir = tempfile::Builder::new()
            .prefix("homelab-podman-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&parent)
            .map_err(|e| {
                failed(
                    &format!("{program} system service"),
                    format!("cannot create a directory in {}: {e}", parent.display()),
                )
            })?;
        // Podman opens up the mode of its socket's directory, so the socket sits
        // one level down and the private directory above keeps others out.
        let socket_dir = dir.path().join("service");
        let socket = socket_dir.join("podman.sock");
        let uri = format!("unix://{}", socket.display());
        let command = format!("{program} system service --time=0 {uri}");
        std::fs::create_dir(&socket_dir).map_err(|e| {
            failed(
                &command,
                format!("cannot create {}: {e}", socket_dir.display()),
            )
        })?;
        let mut child = Command::new(&options.podman_program)
            .args(["system", "service", "--time=0", &uri])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(&command, format!("cannot run {program}: {e}")))?;
        let tail = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut stderr) = child.stderr.take() {
            // Drained in memory, so the service never blocks on a full pipe and
            // nothing it says is written to a file.
            let tail = Arc::clone(&tail);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut t = tail.lock().unwrap_or_else(PoisonError::into_inner);
                    t.extend_from_slice(&buf[..n]);
                    let excess = t.len().saturating_sub(STDERR_TAIL);
                    t.drain(..excess);
                }
            });
        }
        let service = Arc::new(Self {
            child: Mutex::new(child),
            socket,
            command: command.clone(),
            _dir: dir,
        });
        let started = Instant::now();
        let http = Http::new(&service.socket);
        loop {
            let exited = service
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_wait()
                .ok()
                .flatten();
            if let Some(status) = exited {
                // Give the drain thread a moment to collect the last words.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let said =
                    String::from_utf8_lossy(&tail.lock().unwrap_or_else(PoisonError::into_inner))
                        .trim()
                        .to_owned();
                return Err(failed(
                    &command,
                    format!("it exited ({status}) before answering: {said}"),
                ));
            }
            if service.socket.exists() && http.ping(Duration::from_secs(2)).await.is_ok() {
                return Ok(service);
            }
            if started.elapsed() > options.start_timeout {
                return Err(failed(
                    &command,
                    format!(
                        "its socket did not answer within {:?}",
                        options.start_timeout
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The socket it listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The command line it was started with.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The process ID of the service.
    pub fn pid(&self) -> u32 {
        self.child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .id()
    }
}

impl Drop for PrivateService {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // SIGTERM lets podman close its socket and release its locks; SIGKILL only
        // if it does not go within a few seconds.
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A socket that answered, what the service said about itself, and the private
/// service behind it if one was started.
pub(crate) struct Connected {
    pub(crate) socket: PathBuf,
    pub(crate) headers: ServiceHeaders,
    pub(crate) service: Option<Arc<PrivateService>>,
}

/// Connects per `options`: the first socket that answers, else the fallback.
pub(crate) async fn connect(options: &ConnectOptions) -> Result<Connected, Error> {
    match find_socket(options).await {
        Ok((socket, headers)) => Ok(Connected {
            socket,
            headers,
            service: None,
        }),
        Err(tried) => match options.fallback {
            Fallback::Fail => Err(Error::NoService {
                tried,
                command: START_SOCKET_COMMAND,
            }),
            Fallback::StartPrivateService => {
                let service = PrivateService::start(options).await?;
                // It has just answered; a second ping is a millisecond and tells
                // its versions.
                let headers = Http::new(&service.socket)
                    .ping(options.ping_timeout)
                    .await
                    .unwrap_or_default();
                Ok(Connected {
                    socket: service.socket.clone(),
                    headers,
                    service: Some(service),
                })
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_tries_the_rootful_socket_first() {
        assert_eq!(
            candidate_sockets(0, Some("/run/user/0".into())),
            [
                PathBuf::from("/run/podman/podman.sock"),
                PathBuf::from("/run/user/0/podman/podman.sock")
            ]
        );
    }

    #[test]
    fn others_try_their_runtime_dir_only() {
        assert_eq!(
            candidate_sockets(1000, Some("/run/user/1000".into())),
            [PathBuf::from("/run/user/1000/podman/podman.sock")]
        );
        assert_eq!(
            candidate_sockets(1000, None),
            [PathBuf::from("/run/user/1000/podman/podman.sock")]
        );
        assert_eq!(
            candidate_sockets(1000, Some(OsString::new())),
            [PathBuf::from("/run/user/1000/podman/podman.sock")]
        );
    }

    #[tokio::test]
    async fn fail_fallback_names_the_sockets_and_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.sock");
        let listener_path = dir.path().join("refused.sock");
        // A socket file whose listener is gone: connection refused.
        drop(std::os::unix::net::UnixListener::bind(&listener_path).unwrap());
        let mut options = ConnectOptions::new().fallback(Fallback::Fail);
        options.sockets = vec![missing.clone(), listener_path.clone()];
        let Err(e) = connect(&options).await else {
            panic!("connected to a dead socket")
        };
        let Error::NoService { tried, command } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*command, "systemctl --user start podman.socket");
        assert_eq!(tried.len(), 2);
        assert_eq!(tried[0].socket, missing);
        assert!(tried[0].reason.contains("no such socket"), "{e}");
        assert!(tried[1].reason.contains("connection refused"), "{e}");
    }

    #[tokio::test]
    async fn a_missing_podman_program_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let options = ConnectOptions::new()
            .socket(dir.path().join("none.sock"))
            .podman_program(dir.path().join("no-such-podman"));
        let Err(e) = connect(&options).await else {
            panic!("connected without a podman program")
        };
        let text = e.to_string();
        assert!(matches!(e, Error::PrivateService { .. }), "{e:?}");
        assert!(text.contains("cannot run"), "{text}");
        assert!(text.contains("system service --time=0 unix://"), "{text}");
    }
}
