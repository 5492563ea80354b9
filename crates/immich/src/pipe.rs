//! Dumps moving between a file on the host and a command in the PostgreSQL
//! container: the file's side (read or written, checksummed, compressed or
//! decompressed, an SQL dump filtered line by line) runs on a thread of its
//! own, so that SHA-256 and zstd never hold up the streams podman relays, and
//! zstd compresses on every core (libzstd's own worker threads).
//!
//! A file is written through a [`FileWriter`], whose thread takes chunks over a
//! bounded channel; a file is read through a [`FileReader`], an `AsyncRead`
//! fed by its thread. Either thread's result (size, checksum) is awaited once
//! the stream is over.

use std::io::{BufRead, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::progress::{Event, Progress};

/// The size of the chunks that move between the threads.
pub(crate) const CHUNK: usize = 1 << 20;
/// Chunks in flight between a stream and its file's thread.
const IN_FLIGHT: usize = 8;
/// How often progress is told, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// The first bytes kept of what a writer is given (to check a dump's magic).
const HEAD: usize = 8;

/// The SHA-256 of some bytes, in hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Runs `work` on a thread of its own and waits for it without holding up
/// the caller's runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("immich-db-file".into())
        .spawn(move || {
            let _ = tx.send(work());
        })?;
    rx.await
        .map_err(|_| std::io::Error::other("a file thread ended without an answer"))
}

/// Tells a caller's progress how many bytes moved, a few times a second.
pub(crate) struct Meter<'a> {
    progress: &'a dyn Progress,
    what: &'static str,
    total: Option<u64>,
    last: Option<Instant>,
}

impl<'a> Meter<'a> {
    pub(crate) fn new(progress: &'a dyn Progress, what: &'static str, total: Option<u64>) -> Self {
        Self {
            progress,
            what,
            total,
            last: None,
        }
    }

    /// `done` bytes so far; told when enough time passed since the last.
    pub(crate) fn update(&mut self, done: u64) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < PROGRESS_EVERY)
        {
            return;
        }
        self.last = Some(now);
        self.tell(done);
    }

    /// `done` bytes, told now (at the end).
    pub(crate) fn finish(&mut self, done: u64) {
        self.tell(done);
    }

    fn tell(&self, done: u64) {
        self.progress.event(Event::Bytes {
            what: self.what,
            done,
            total: self.total,
        });
    }
}

impl std::fmt::Debug for Meter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter").field("what", &self.what).finish()
    }
}

/// How a [`FileWriter`] stores what it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encode {
    /// As it is.
    Plain,
    /// As one zstd frame at this level, compressed by this many worker threads.
    Zstd { level: i32, workers: u32 },
}

/// What a [`FileWriter`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// The bytes it was given.
    pub(crate) input: u64,
    /// The first bytes it was given.
    pub(crate) head: Vec<u8>,
    /// The bytes in the file.
    pub(crate) size: u64,
    /// The file's SHA-256, in hexadecimal.
    pub(crate) sha256: String,
}

/// A writer that counts and digests what passes into the file.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A file written on a thread of its own from chunks sent to it.
#[derive(Debug)]
pub(crate) struct FileWriter {
    chunks: Option<mpsc::Sender<Vec<u8>>>,
    done: oneshot::Receiver<std::io::Result<Written>>,
}

impl FileWriter {
    /// Starts writing `file` (synced to disk at the end).
    pub(crate) fn start(file: std::fs::File, encode: Encode) -> std::io::Result<Self> {
        Self::spawn(file, encode, true)
    }

    /// Starts writing a scratch file, as it is: a file read once and then
    /// removed (a dump decompressed for a restore), which is not synced to
    /// disk: a crash loses nothing that the backup it came from does not hold.
    pub(crate) fn scratch(file: std::fs::File) -> std::io::Result<Self> {
        Self::spawn(file, Encode::Plain, false)
    }

    fn spawn(file: std::fs::File, encode: Encode, sync: bool) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        let (done_tx, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("immich-db-write".into())
            .spawn(move || {
                let _ = done_tx.send(write_chunks(file, encode, sync, rx));
            })?;
        Ok(Self {
            chunks: Some(tx),
            done,
        })
    }

    /// Hands over a chunk. A thread that stopped (a full disk) makes this fail
    /// with its own error.
    pub(crate) async fn write(&mut self, chunk: Vec<u8>) -> std::io::Result<()> {
        let sent = match &self.chunks {
            Some(chunks) => chunks.send(chunk).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        self.chunks = None;
        match (&mut self.done).await {
            Ok(Err(e)) => Err(e),
            _ => Err(std::io::Error::other("the file's writer stopped")),
        }
    }

    /// Ends the file: everything written, compressed and synced.
    pub(crate) async fn finish(mut self) -> std::io::Result<Written> {
        self.chunks = None;
        self.done
            .await
            .map_err(|_| std::io::Error::other("the file's writer ended without an answer"))?
    }
}

fn write_chunks(
    file: std::fs::File,
    encode: Encode,
    sync: bool,
    mut chunks: mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<Written> {
    let mut sink = Hashing {
        inner: std::io::BufWriter::with_capacity(CHUNK, file),
        hasher: Sha256::new(),
        size: 0,
    };
    let mut input = 0u64;
    let mut head = Vec::with_capacity(HEAD);
    let mut note = |chunk: &[u8]| {
        if head.len() < HEAD {
            let take = (HEAD - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        input += chunk.len() as u64;
    };
    match encode {
        Encode::Plain => {
            while let Some(chunk) = chunks.blocking_recv() {
                note(&chunk);
                sink.write_all(&chunk)?;
            }
        }
        Encode::Zstd { level, workers } => {
            let mut encoder = zstd::stream::write::Encoder::new(&mut sink, level)?;
            if workers > 1 {
                encoder.multithread(workers)?;
            }
            while let Some(chunk) = chunks.blocking_recv() {
                note(&chunk);
                encoder.write_all(&chunk)?;
            }
            encoder.finish()?;
        }
    }
    sink.flush()?;
    let Hashing {
        inner,
        hasher,
        size,
    } = sink;
    let file = inner
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    if sync {
        file.sync_all()?;
    }
    Ok(Written {
        input,
        head,
        size,
        sha256: hex(&hasher.finalize()),
    })
}

/// How a [`FileReader`] turns the file into what it yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decode {
    /// As it is.
    Plain,
    /// A zstd frame, decompressed.
    Zstd,
    /// gzip, decompressed (every member of it).
    Gzip,
}

/// Something that rewrites a text stream line by line (an SQL dump on its way
/// to `psql`).
pub(crate) trait LineFilter: Send {
    /// Appends what `line` (with its newline, if it had one) becomes to `out`.
    fn line(&mut self, line: &[u8], out: &mut Vec<u8>);
}

/// What a [`FileReader`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileRead {
    /// The bytes of the file.
    pub(crate) size: u64,
    /// The file's SHA-256, in hexadecimal.
    pub(crate) sha256: String,
    /// The bytes yielded (decompressed, filtered).
    pub(crate) output: u64,
}

/// A reader that counts and digests what is read from the file.
struct Digesting<R> {
    inner: R,
    hasher: Sha256,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A file read on a thread of its own, as an `AsyncRead`. A file that cannot
/// be read or decompressed makes a read fail (never a short, clean end).
pub(crate) struct FileReader<'a> {
    chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    done: Option<oneshot::Receiver<std::io::Result<FileRead>>>,
    /// Bytes of the file read so far.
    read: Arc<AtomicU64>,
    meter: Option<Meter<'a>>,
}

impl std::fmt::Debug for FileReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl<'a> FileReader<'a> {
    /// Starts reading `file`, decoded and then filtered line by line when a
    /// filter is given.
    pub(crate) fn start(
        file: std::fs::File,
        decode: Decode,
        filter: Option<Box<dyn LineFilter>>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        let (done_tx, done) = oneshot::channel();
        let read = Arc::new(AtomicU64::new(0));
        let counter = read.clone();
        std::thread::Builder::new()
            .name("immich-db-read".into())
            .spawn(move || {
                let result = read_chunks(file, decode, filter, &tx, counter);
                if let Err(e) = &result {
                    let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
                }
                let _ = done_tx.send(result);
            })?;
        Ok(Self {
            chunks: rx,
            current: Vec::new(),
            at: 0,
            done: Some(done),
            read,
            meter: None,
        })
    }

    /// Tells `meter` how many bytes of the file were read, as they are.
    #[must_use]
    pub(crate) fn metered(mut self, meter: Meter<'a>) -> Self {
        self.meter = Some(meter);
        self
    }

    /// What was read, once everything was: the size and checksum of the file.
    pub(crate) async fn finish(mut self) -> std::io::Result<FileRead> {
        // Whatever is left unread is read (and digested) to the end.
        self.chunks.close();
        while self.chunks.recv().await.is_some() {}
        let result = match self.done.take() {
            Some(done) => done
                .await
                .map_err(|_| std::io::Error::other("the file's reader ended without an answer"))?,
            None => Err(std::io::Error::other("the file was already finished")),
        };
        if let (Some(meter), Ok(read)) = (&mut self.meter, &result) {
            meter.finish(read.size);
        }
        result
    }
}

/// What `source` holds, decoded, read in large chunks.
pub(crate) fn decoded<'r>(
    source: impl Read + 'r,
    decode: Decode,
) -> std::io::Result<Box<dyn BufRead + 'r>> {
    Ok(match decode {
        Decode::Plain => Box::new(std::io::BufReader::with_capacity(CHUNK, source)),
        Decode::Zstd => Box::new(std::io::BufReader::with_capacity(
            CHUNK,
            zstd::stream::read::Decoder::new(source)?,
        )),
        Decode::Gzip => Box::new(std::io::BufReader::with_capacity(
            CHUNK,
            flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(CHUNK, source)),
        )),
    })
}

fn read_chunks(
    file: std::fs::File,
    decode: Decode,
    filter: Option<Box<dyn LineFilter>>,
    chunks: &mpsc::Sender<std::io::Result<Vec<u8>>>,
    read: Arc<AtomicU64>,
) -> std::io::Result<FileRead> {
    let mut source = Digesting {
        inner: file,
        hasher: Sha256::new(),
        read,
    };
    let gone = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the reader went away");
    let mut output = 0u64;
    {
        let decoded = decoded(&mut source, decode)?;
        let mut send = |chunk: Vec<u8>| -> std::io::Result<()> {
            output += chunk.len() as u64;
            chunks.blocking_send(Ok(chunk)).map_err(|_| gone())
        };
        match filter {
            None => {
                let mut decoded = decoded;
                loop {
                    let mut chunk = Vec::with_capacity(CHUNK);
                    let n = (&mut decoded).take(CHUNK as u64).read_to_end(&mut chunk)?;
                    if n == 0 {
                        break;
                    }
                    send(chunk)?;
                }
            }
            Some(mut filter) => {
                let mut decoded = decoded;
                let mut line = Vec::new();
                let mut chunk = Vec::with_capacity(CHUNK + CHUNK / 4);
                loop {
                    line.clear();
                    if decoded.read_until(b'\n', &mut line)? == 0 {
                        break;
                    }
                    filter.line(&line, &mut chunk);
                    if chunk.len() >= CHUNK {
                        send(std::mem::replace(
                            &mut chunk,
                            Vec::with_capacity(CHUNK + CHUNK / 4),
                        ))?;
                    }
                }
                if !chunk.is_empty() {
                    send(chunk)?;
                }
            }
        }
    }
    // The whole file is digested, also what a decoder left after its end.
    std::io::copy(&mut source, &mut std::io::sink())?;
    Ok(FileRead {
        size: source.read.load(Ordering::Relaxed),
        sha256: hex(&source.hasher.finalize()),
        output,
    })
}

impl tokio::io::AsyncRead for FileReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        while this.at == this.current.len() {
            match this.chunks.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(Some(Ok(chunk))) => {
                    this.current = chunk;
                    this.at = 0;
                }
            }
        }
        let n = (this.current.len() - this.at).min(buf.remaining());
        buf.put_slice(&this.current[this.at..this.at + n]);
        this.at += n;
        if let Some(meter) = &mut this.meter {
            meter.update(this.read.load(Ordering::Relaxed));
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;
    use crate::backup::tests::block_on;
    use crate::progress::Recorder;

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    /// Bytes that compress, but not to nothing.
    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from((i * 7 + i / 1000) % 251).unwrap_or(0))
            .collect()
    }

    fn write(dir: &std::path::Path, name: &str, data: &[u8], encode: Encode) -> Written {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap();
        block_on(async {
            let mut writer = FileWriter::start(file, encode).unwrap();
            for chunk in data.chunks(100_000) {
                writer.write(chunk.to_vec()).await.unwrap();
            }
            writer.finish().await.unwrap()
        })
    }

    #[test]
    fn a_written_file_is_what_was_given_with_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let data = sample(3 * CHUNK + 17);
        let plain = write(dir.path(), "plain", &data, Encode::Plain);
        let on_disk = std::fs::read(dir.path().join("plain")).unwrap();
        assert_eq!(on_disk, data);
        assert_eq!(plain.size, data.len() as u64);
        assert_eq!(plain.input, data.len() as u64);
        assert_eq!(plain.sha256, sha(&on_disk));
        assert_eq!(plain.head, data[..HEAD]);

        let zst = write(
            dir.path(),
            "zst",
            &data,
            Encode::Zstd {
                level: 1,
                workers: 2,
            },
        );
        let on_disk = std::fs::read(dir.path().join("zst")).unwrap();
        // The checksum is of the file as stored; it decompresses to the input.
        assert_eq!(zst.sha256, sha(&on_disk));
        assert_eq!(zst.size, on_disk.len() as u64);
        assert!(zst.size < data.len() as u64);
        assert_eq!(zst.input, data.len() as u64);
        assert_eq!(zstd::decode_all(&on_disk[..]).unwrap(), data);
    }

    #[test]
    fn a_file_is_read_decompressed_with_the_checksum_of_what_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let data = sample(2 * CHUNK + 5);
        write(
            dir.path(),
            "zst",
            &data,
            Encode::Zstd {
                level: 1,
                workers: 1,
            },
        );
        let stored = std::fs::read(dir.path().join("zst")).unwrap();
        let recorder = Recorder::new();
        let (out, read) = block_on(async {
            let file = std::fs::File::open(dir.path().join("zst")).unwrap();
            let mut reader = FileReader::start(file, Decode::Zstd, None)
                .unwrap()
                .metered(Meter::new(&recorder, "restore", None));
            let mut out = Vec::new();
            reader.read_to_end(&mut out).await.unwrap();
            (out, reader.finish().await.unwrap())
        });
        assert_eq!(out, data);
        assert_eq!(read.sha256, sha(&stored));
        assert_eq!(read.size, stored.len() as u64);
        assert_eq!(read.output, data.len() as u64);
        assert_eq!(
            recorder.lines().last().unwrap(),
            &format!("bytes restore: {}", stored.len())
        );
    }

    #[test]
    fn gzip_is_read_through_a_line_filter() {
        struct Upper;
        impl LineFilter for Upper {
            fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
                if !line.starts_with(b"skip") {
                    out.extend(line.iter().map(u8::to_ascii_uppercase));
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.sql.gz");
        let mut encoder = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        encoder.write_all(b"one\nskip this\ntwo\nthree").unwrap();
        encoder.finish().unwrap();
        let out = block_on(async {
            let file = std::fs::File::open(&path).unwrap();
            let mut reader = FileReader::start(file, Decode::Gzip, Some(Box::new(Upper))).unwrap();
            let mut out = Vec::new();
            reader.read_to_end(&mut out).await.unwrap();
            reader.finish().await.unwrap();
            out
        });
        assert_eq!(out, b"ONE\nTWO\nTHREE");
    }

    #[test]
    fn a_corrupt_file_fails_the_read_instead_of_ending_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = sample(CHUNK);
        write(
            dir.path(),
            "zst",
            &data,
            Encode::Zstd {
                level: 1,
                workers: 1,
            },
        );
        let mut stored = std::fs::read(dir.path().join("zst")).unwrap();
        let cut = stored.len() / 2;
        stored.truncate(cut);
        std::fs::write(dir.path().join("zst"), &stored).unwrap();
        let err = block_on(async {
            let file = std::fs::File::open(dir.path().join("zst")).unwrap();
            let mut reader = FileReader::start(file, Decode::Zstd, None).unwrap();
            let mut out = Vec::new();
            reader.read_to_end(&mut out).await.unwrap_err()
        });
        assert!(!err.to_string().is_empty());
    }
}
