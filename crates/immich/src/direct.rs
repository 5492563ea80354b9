//! Checks that talk to a container over its network straight from the host:
//! a PostgreSQL login and Valkey's PING, in a few milliseconds, where a client
//! run in the container through `podman exec` takes a quarter of a second and
//! slows whatever else the host is doing (a database starting).
//!
//! The host is on a container network when podman runs as root: the network's
//! bridge, with its gateway address, is one of the host's interfaces. A rootless
//! podman keeps its networks in a namespace of its own, where the host cannot
//! reach them; and no packet must go to an address that is not on the
//! deployment's network (it would go to the host's default route). So a
//! container is talked to directly only when the host's route to its address
//! leaves from the network's gateway address: asked of the kernel by connecting
//! a UDP socket, which sends nothing. Everywhere else, and when a connection
//! cannot be made, the checks run in the container as before.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use homelab_secrets::SecretValue;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::layer::Layer;

/// How long a connection may take before the check runs in the container instead.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an answer may take once connected.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// In debug builds, `IMMICH_DB_CHECK_IN_CONTAINER=1` makes every check run in
/// the container, so that tests on a host that reaches its containers cover
/// that way too.
#[cfg(debug_assertions)]
pub(crate) const IN_CONTAINER_ENV: &str = "IMMICH_DB_CHECK_IN_CONTAINER";

#[cfg(debug_assertions)]
fn forced_in_container() -> bool {
    std::env::var(IN_CONTAINER_ENV).is_ok_and(|v| v == "1")
}

#[cfg(not(debug_assertions))]
fn forced_in_container() -> bool {
    false
}

/// Whether the host's route to `ip` leaves from `gateway`, its own address on
/// the network that `ip` is on. Nothing is sent.
pub(crate) fn routed_via(ip: IpAddr, gateway: IpAddr) -> bool {
    let any: IpAddr = match ip {
        IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let Ok(socket) = UdpSocket::bind(SocketAddr::new(any, 0)) else {
        return false;
    };
    socket.connect(SocketAddr::new(ip, 9)).is_ok()
        && socket.local_addr().is_ok_and(|local| local.ip() == gateway)
}

/// The address of `container` on the deployment's network, when the host can
/// talk to it there.
pub(crate) async fn address(ctx: &Layer, container: &str) -> Option<IpAddr> {
    if forced_in_container() {
        return None;
    }
    let d = &ctx.deployment;
    let info = ctx.runtime.inspect_container(container).await.ok()?;
    let on = info.networks.get(&d.podman_network())?;
    let ip = on.ip?;
    (d.subnet.contains(&ip) && routed_via(ip, d.gateway)).then_some(ip)
}

/// What a login found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PostgresFacts {
    /// `SELECT version()`.
    pub(crate) version: String,
    /// The vector extensions available, comma-separated (empty: none).
    pub(crate) vector_extensions: String,
    /// Whether data checksums are on and how often they failed.
    pub(crate) checksums: Option<crate::status::Checksums>,
}

impl PostgresFacts {
    /// The facts from the answers to [`POSTGRES_QUERY`], one a line.
    pub(crate) fn from_answers<'a>(mut answers: impl Iterator<Item = &'a str>) -> Self {
        Self {
            version: answers.next().unwrap_or_default().to_owned(),
            vector_extensions: answers.next().unwrap_or_default().to_owned(),
            checksums: answers.next().and_then(crate::status::Checksums::parse),
        }
    }
}

/// Why a login did not happen.
#[derive(Debug)]
pub(crate) enum LoginError {
    /// No connection (or no answer): the check is to run in the container.
    Unreachable,
    /// The server answered, and refused (wrong password, no such database).
    Refused(String),
}

/// The query of a login: the server's version, the vector extensions it has,
/// and whether data checksums are on with the failures counted in all
/// databases (`on|0|` or `on|3|2026-12-04 03:35:57+00`), as Immich's own image
/// checks in its health check.
pub(crate) const POSTGRES_QUERY: &str = "SELECT version(); SELECT coalesce(string_agg(name, ','), '') FROM pg_available_extensions WHERE name IN ('vector', 'vchord', 'vectors'); SELECT concat_ws('|', current_setting('data_checksums'), coalesce(sum(checksum_failures), 0), max(checksum_last_failure)) FROM pg_stat_database";

/// The port PostgreSQL listens on in its container.
pub(crate) const POSTGRES_PORT: u16 = 5432;

/// The port Valkey listens on in its container.
pub(crate) const VALKEY_PORT: u16 = 6379;

/// Logs in to PostgreSQL at `at` as `user` to `database` with `password`, and
/// runs [`POSTGRES_QUERY`].
pub(crate) async fn postgres_login(
    at: SocketAddr,
    user: &str,
    database: &str,
    password: &SecretValue,
) -> Result<PostgresFacts, LoginError> {
    let mut config = tokio_postgres::Config::new();
    config
        .hostaddr(at.ip())
        .port(at.port())
        .user(user)
        .dbname(database)
        .password(password.expose())
        .application_name("immich-db")
        .connect_timeout(CONNECT_TIMEOUT);
    let login = async {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(connection);
        let rows = client.simple_query(POSTGRES_QUERY).await;
        drop(client);
        let _ = connection.await;
        rows
    };
    let messages = match tokio::time::timeout(CONNECT_TIMEOUT + ANSWER_TIMEOUT, login).await {
        Ok(Ok(messages)) => messages,
        Ok(Err(e)) => return Err(login_error(&e)),
        Err(_) => return Err(LoginError::Unreachable),
    };
    let values = messages.iter().filter_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("")),
        _ => None,
    });
    Ok(PostgresFacts::from_answers(values))
}

/// A server's error is its answer; anything else is no answer.
fn login_error(e: &tokio_postgres::Error) -> LoginError {
    match e.as_db_error() {
        Some(db) => LoginError::Refused(format!("{} ({})", db.message(), db.code().code())),
        None => LoginError::Unreachable,
    }
}

/// A Valkey command in the protocol's array-of-bulk-strings form.
fn command(words: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        out.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
        out.extend_from_slice(word);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends PING to Valkey at `at`, after `AUTH` with `password` when given, and
/// returns the answer to PING (`PONG`, or the error, such as `NOAUTH ...`); an
/// answer to `AUTH` other than `OK` is returned instead.
pub(crate) async fn valkey_ping(
    at: SocketAddr,
    password: Option<&SecretValue>,
) -> std::io::Result<String> {
    let connect = TcpStream::connect(at);
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| timed_out(at))??;
    let mut request = Vec::new();
    let replies = if let Some(password) = password {
        request.extend(command(&[b"AUTH", password.expose()]));
        2
    } else {
        1
    };
    request.extend(command(&[b"PING"]));
    let exchange = async {
        stream.write_all(&request).await?;
        // Wiped: it holds the password.
        request.fill(0);
        let mut answer = Vec::new();
        let mut buffer = [0u8; 512];
        // Each simple reply is one line.
        while answer.split(|b| *b == b'\n').count() - 1 < replies {
            let n = stream.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..n]);
        }
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, exchange)
        .await
        .map_err(|_| timed_out(at))??;
    Ok(ping_answer(&answer, replies))
}

fn timed_out(at: SocketAddr) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer from {at}"))
}

/// The answer to PING among `replies` simple replies (`+PONG`, `-NOAUTH ...`),
/// or the first that is not `+OK` before it.
fn ping_answer(answer: &[u8], replies: usize) -> String {
    let text = String::from_utf8_lossy(answer);
    let lines: Vec<&str> = text.split("\r\n").take(replies).collect();
    let pick = lines
        .iter()
        .take(replies.saturating_sub(1))
        .find(|l| **l != "+OK")
        .or_else(|| lines.last())
        .copied()
        .unwrap_or_default();
    pick.trim_start_matches(['+', '-']).to_owned()
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;
    use crate::backup::tests::block_on;

    /// A server on loopback that reads `expect` and answers `answer`.
    async fn serve_once(expect: &'static [u8], answer: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut got = vec![0u8; expect.len()];
            stream.read_exact(&mut got).await.unwrap();
            assert_eq!(got, expect);
            stream.write_all(answer).await.unwrap();
        });
        at
    }

    #[test]
    fn valkey_is_sent_auth_then_ping_and_its_answer_read() {
        block_on(async {
            let password = SecretValue::new("pass\r\nword");
            let at = serve_once(
                b"*2\r\n$4\r\nAUTH\r\n$10\r\npass\r\nword\r\n*1\r\n$4\r\nPING\r\n",
                b"+OK\r\n+PONG\r\n",
            )
            .await;
            assert_eq!(valkey_ping(at, Some(&password)).await.unwrap(), "PONG");
            let at = serve_once(
                b"*1\r\n$4\r\nPING\r\n",
                b"-NOAUTH Authentication required.\r\n",
            )
            .await;
            assert_eq!(
                valkey_ping(at, None).await.unwrap(),
                "NOAUTH Authentication required."
            );
        });
    }

    #[test]
    fn no_server_is_no_answer_not_a_refusal() {
        block_on(async {
            // A port that was free a moment ago: nothing listens there.
            let at = TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap()
                .local_addr()
                .unwrap();
            assert!(valkey_ping(at, None).await.is_err());
            let password = SecretValue::new("p");
            let login = postgres_login(at, "immich", "immich", &password).await;
            assert!(matches!(login, Err(LoginError::Unreachable)), "{login:?}");
            // A server that hangs up without a word is no answer either.
            let at = serve_once(b"", b"").await;
            let login = postgres_login(at, "immich", "immich", &password).await;
            assert!(matches!(login, Err(LoginError::Unreachable)), "{login:?}");
        });
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(command(&[b"PING"]), b"*1\r\n$4\r\nPING\r\n");
        // Binary-safe: a password holding CR LF stays one argument.
        assert_eq!(
            command(&[b"AUTH", b"a\r\nb"]),
            b"*2\r\n$4\r\nAUTH\r\n$4\r\na\r\nb\r\n"
        );
    }

    #[test]
    fn the_answer_to_ping_is_picked_from_the_replies() {
        assert_eq!(ping_answer(b"+PONG\r\n", 1), "PONG");
        assert_eq!(
            ping_answer(b"-NOAUTH Authentication required.\r\n", 1),
            "NOAUTH Authentication required."
        );
        assert_eq!(ping_answer(b"+OK\r\n+PONG\r\n", 2), "PONG");
        assert_eq!(
            ping_answer(
                b"-WRONGPASS invalid username-password pair\r\n-NOAUTH Authentication required.\r\n",
                2
            ),
            "WRONGPASS invalid username-password pair"
        );
        assert_eq!(ping_answer(b"", 1), "");
    }

    #[test]
    fn only_addresses_routed_from_the_gateway_are_talked_to() {
        // Loopback is reached from loopback, not from another address.
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(routed_via(lo, lo));
        assert!(!routed_via(lo, "10.89.5.1".parse().unwrap()));
        // A documentation address (not on this host) is not routed from its
        // would-be gateway, whatever the host's default route is.
        assert!(!routed_via(
            "192.0.2.10".parse().unwrap(),
            "192.0.2.1".parse().unwrap()
        ));
    }
}
