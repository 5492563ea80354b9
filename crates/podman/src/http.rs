//! A small HTTP/1.1 client over podman's unix socket, for the few calls that the
//! podman-api crate cannot make: a secret created from its exact bytes, a secret
//! read back, and the responses whose podman 5 fields podman-api's models drop.
//!
//! Each request uses its own connection (`Connection: close`), so a response ends
//! at end of file, with a `Content-Length`, or with the last chunk.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use zeroize::Zeroizing;

/// The libpod API prefix. Unversioned paths are served at the service's own
/// version, by podman 4 and 5 alike.
pub(crate) const LIBPOD: &str = "/libpod";

/// Longest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct Http {
    socket: PathBuf,
}

/// A complete response. The body is wiped when dropped: it may hold a secret.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Zeroizing<Vec<u8>>,
    pub(crate) service: ServiceHeaders,
}

/// What podman says about itself in the head of every answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ServiceHeaders {
    /// `Server`, such as `Libpod/5.4.2 (linux)`.
    pub(crate) server: Option<String>,
    /// `Libpod-API-Version`, such as `5.4.2`.
    pub(crate) libpod_api_version: Option<String>,
}

impl ServiceHeaders {
    /// Podman's release, from `Server: Libpod/5.4.2 (linux)`.
    pub(crate) fn podman_version(&self) -> Option<&str> {
        let product = self.server.as_deref()?.split_whitespace().next()?;
        let version = product.strip_prefix("Libpod/")?;
        (!version.is_empty()).then_some(version)
    }
}

impl Response {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How the body of a response ends.
#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked { left_in_chunk: u64, done: bool },
    UntilEof,
}

/// The body of a response, read piece by piece (for streams such as events).
#[derive(Debug)]
pub(crate) struct Body<R = UnixStream> {
    reader: BufReader<R>,
    framing: Framing,
    service: ServiceHeaders,
}

/// A response whose connection stays open both ways after the head: podman
/// takes the connection over to attach a command's standard streams.
#[derive(Debug)]
pub(crate) struct Attached {
    pub(crate) status: u16,
    /// The rest of the response: the raw stream after a successful head, or an
    /// error body.
    pub(crate) body: Body<OwnedReadHalf>,
    /// This side's half: what is written goes to the command's standard input.
    pub(crate) input: OwnedWriteHalf,
}

impl Http {
    pub(crate) fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one request and reads the whole response.
    pub(crate) async fn request(
        &self,
        method: &str,
        target: &str,
        body: Option<(&str, &[u8])>,
    ) -> io::Result<Response> {
        let (status, mut body) = self.open(method, target, body).await?;
        let all = body.read_all().await?;
        Ok(Response {
            status,
            body: all,
            service: body.service,
        })
    }

    /// Sends one request and returns the status and the body still to be read.
    pub(crate) async fn open(
        &self,
        method: &str,
        target: &str,
        body: Option<(&str, &[u8])>,
    ) -> io::Result<(u16, Body)> {
        let mut stream = UnixStream::connect(&self.socket).await?;
        send_request(&mut stream, method, target, body).await?;
        let mut reader = BufReader::new(stream);
        let (status, framing, service) = read_head(&mut reader).await?;
        Ok((
            status,
            Body {
                reader,
                framing,
                service,
            },
        ))
    }

    /// Sends one request whose connection podman takes over (an attach), and
    /// returns the status with both halves of the connection.
    pub(crate) async fn attach(
        &self,
        method: &str,
        target: &str,
        body: Option<(&str, &[u8])>,
    ) -> io::Result<Attached> {
        let mut stream = UnixStream::connect(&self.socket).await?;
        send_request(&mut stream, method, target, body).await?;
        let (read_half, input) = stream.into_split();
        let mut reader = BufReader::new(read_half);
        let (status, framing, service) = read_head(&mut reader).await?;
        Ok(Attached {
            status,
            body: Body {
                reader,
                framing,
                service,
            },
            input,
        })
    }

    /// Whether a podman service answers `_ping` on this socket within `timeout`,
    /// with what it says about itself; the error says why not.
    pub(crate) async fn ping(&self, timeout: Duration) -> io::Result<ServiceHeaders> {
        let target = format!("{LIBPOD}/_ping");
        let answer = tokio::time::timeout(timeout, self.request("GET", &target, None))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {timeout:?}"),
                )
            })??;
        if answer.is_success() && answer.body.starts_with(b"OK") {
            Ok(answer.service)
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "not a podman service (HTTP {} to _ping: {:?})",
                    answer.status,
                    String::from_utf8_lossy(&answer.body[..answer.body.len().min(80)])
                ),
            ))
        }
    }
}

async fn send_request(
    stream: &mut UnixStream,
    method: &str,
    target: &str,
    body: Option<(&str, &[u8])>,
) -> io::Result<()> {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: d\r\nUser-Agent: homelab-podman\r\nConnection: close\r\n"
    );
    if let Some((content_type, bytes)) = body {
        let _ = write!(
            head,
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            bytes.len()
        );
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if let Some((_, bytes)) = body {
        // Written straight from the caller's buffer: a secret is never copied.
        stream.write_all(bytes).await?;
    }
    stream.flush().await
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    seen: &mut usize,
) -> io::Result<String> {
    let mut line = Vec::new();
    let n = reader.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed before the response ended",
        ));
    }
    *seen += n;
    if *seen > MAX_HEAD {
        return Err(bad("response head too long"));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| bad("response head is not text"))
}

async fn read_head<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> io::Result<(u16, Framing, ServiceHeaders)> {
    let mut seen = 0;
    let status_line = read_line(reader, &mut seen).await?;
    let status = parse_status_line(&status_line)?;
    let mut framing = Framing::UntilEof;
    let mut service = ServiceHeaders::default();
    loop {
        let line = read_line(reader, &mut seen).await?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad(format!("malformed header line {line:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("server") {
            service.server = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("libpod-api-version") {
            service.libpod_api_version = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            framing = Framing::Chunked {
                left_in_chunk: 0,
                done: false,
            };
        } else if name.eq_ignore_ascii_case("content-length")
            && !matches!(framing, Framing::Chunked { .. })
        {
            let n = value
                .parse()
                .map_err(|_| bad(format!("bad Content-Length {value:?}")))?;
            framing = Framing::Length(n);
        }
    }
    Ok((status, framing, service))
}

fn parse_status_line(line: &str) -> io::Result<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("not an HTTP response: {line:?}")));
    }
    code.parse()
        .map_err(|_| bad(format!("bad status line {line:?}")))
}

impl<R: AsyncRead + Unpin> Body<R> {
    /// The raw stream after the head, for a connection podman has taken over.
    pub(crate) fn into_stream(self) -> BufReader<R> {
        self.reader
    }

    /// The whole (remaining) body.
    pub(crate) async fn read_all(&mut self) -> io::Result<Zeroizing<Vec<u8>>> {
        let mut all = Zeroizing::new(Vec::new());
        while let Some(piece) = self.next_piece().await? {
            all.extend_from_slice(&piece);
        }
        Ok(all)
    }

    /// The next piece of the body, or `None` at its end.
    pub(crate) async fn next_piece(&mut self) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
        const PIECE: u64 = 16 * 1024;
        match &mut self.framing {
            Framing::Length(0) | Framing::Chunked { done: true, .. } => Ok(None),
            Framing::Length(left) => {
                let want = usize::try_from((*left).min(PIECE)).unwrap_or(16 * 1024);
                let mut buf = Zeroizing::new(vec![0; want]);
                let n = self.reader.read(&mut buf).await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed before the body ended",
                    ));
                }
                buf.truncate(n);
                *left -= n as u64;
                Ok(Some(buf))
            }
            Framing::UntilEof => {
                let mut buf = Zeroizing::new(vec![0; 16 * 1024]);
                let n = self.reader.read(&mut buf).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.truncate(n);
                Ok(Some(buf))
            }
            Framing::Chunked {
                left_in_chunk,
                done,
            } => {
                if *left_in_chunk == 0 {
                    let mut seen = 0;
                    let size_line = read_line(&mut self.reader, &mut seen).await?;
                    let size = size_line.split(';').next().unwrap_or_default().trim();
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| bad(format!("bad chunk size {size_line:?}")))?;
                    if size == 0 {
                        // Trailers, then the blank line that ends the body.
                        loop {
                            if read_line(&mut self.reader, &mut seen).await?.is_empty() {
                                break;
                            }
                        }
                        *done = true;
                        return Ok(None);
                    }
                    *left_in_chunk = size;
                }
                let want = usize::try_from((*left_in_chunk).min(PIECE)).unwrap_or(16 * 1024);
                let mut buf = Zeroizing::new(vec![0; want]);
                let n = self.reader.read(&mut buf).await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed inside a chunk",
                    ));
                }
                buf.truncate(n);
                *left_in_chunk -= n as u64;
                if *left_in_chunk == 0 {
                    let mut seen = 0;
                    if !read_line(&mut self.reader, &mut seen).await?.is_empty() {
                        return Err(bad("a chunk is longer than its size"));
                    }
                }
                Ok(Some(buf))
            }
        }
    }
}

/// Percent-encodes a path segment or a query value (everything but unreserved
/// characters).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// Serves one canned response on a fresh socket and returns what the client
    /// sent.
    fn serve_once(
        response: &'static [u8],
    ) -> (tempfile::TempDir, PathBuf, tokio::task::JoinHandle<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let task = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head (and a body, if Content-Length says so).
            loop {
                let n = conn.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    while got.len() < end + 4 + len {
                        let n = conn.read(&mut buf).await.unwrap();
                        got.extend_from_slice(&buf[..n]);
                    }
                    break;
                }
                if n == 0 {
                    break;
                }
            }
            conn.write_all(response).await.unwrap();
            conn.shutdown().await.unwrap();
            got
        });
        (dir, path, task)
    }

    #[tokio::test]
    async fn sends_the_body_exactly_and_reads_a_length_response() {
        let (_dir, path, task) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        let body: &[u8] = b"a\"b\\c\n\xff";
        let r = Http::new(&path)
            .request(
                "POST",
                "/libpod/x?name=y",
                Some(("application/octet-stream", body)),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], b"hello");
        let sent = task.await.unwrap();
        assert!(sent.starts_with(b"POST /libpod/x?name=y HTTP/1.1\r\n"));
        assert!(sent.ends_with(b"\r\n\r\na\"b\\c\n\xff"), "{sent:?}");
    }

    #[tokio::test]
    async fn a_ping_tells_podmans_versions() {
        let (_dir, path, _task) = serve_once(
            b"HTTP/1.1 200 OK\r\nLibpod-Api-Version: 5.4.2\r\nServer: Libpod/5.4.2 (linux)\r\nContent-Length: 2\r\n\r\nOK",
        );
        let service = Http::new(&path).ping(Duration::from_secs(5)).await.unwrap();
        assert_eq!(service.libpod_api_version.as_deref(), Some("5.4.2"));
        assert_eq!(service.podman_version(), Some("5.4.2"));
        let other = ServiceHeaders {
            server: Some("nginx/1.2".into()),
            libpod_api_version: None,
        };
        assert_eq!(other.podman_version(), None);
    }

    #[tokio::test]
    async fn reads_a_chunked_response() {
        let (_dir, path, _task) = serve_once(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n",
        );
        let r = Http::new(&path).request("GET", "/", None).await.unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(&r.body[..], b"abcdefg");
    }

    #[tokio::test]
    async fn reads_until_eof_without_framing() {
        let (_dir, path, _task) = serve_once(b"HTTP/1.0 200 OK\r\n\r\nall of it");
        let r = Http::new(&path).request("GET", "/", None).await.unwrap();
        assert_eq!(&r.body[..], b"all of it");
    }

    #[tokio::test]
    async fn rejects_what_is_not_http() {
        let (_dir, path, _task) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n");
        let e = Http::new(&path)
            .request("GET", "/", None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not an HTTP response"), "{e}");
    }

    #[tokio::test]
    async fn a_truncated_body_is_an_error() {
        let (_dir, path, _task) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
        let e = Http::new(&path)
            .request("GET", "/", None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn encodes_names_for_urls() {
        assert_eq!(encode("postgres-password"), "postgres-password");
        assert_eq!(encode("a b/c?d&e=f"), "a%20b%2Fc%3Fd%26e%3Df");
        assert_eq!(encode("localhost/x:latest"), "localhost%2Fx%3Alatest");
    }
}
