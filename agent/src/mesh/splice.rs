//! Zero-copy forwarding of one TCP connection: in each direction the bytes go socket → pipe
//! → socket with `splice(2)`, so they stay in the kernel instead of being copied through this
//! process twice.
//!
//! ```text
//!  client ──splice──► pipe ──splice──► upstream      (one pipe per direction; tokio's
//!  client ◄──splice── pipe ◄──splice── upstream       readiness drives the non-blocking calls)
//! ```
//!
//! A direction whose first splice is refused (`EINVAL`: a socket that cannot splice;
//! `ENOSYS`: no splice in this kernel), or whose pipe cannot be made, copies through user
//! space instead. When one side ends its writing, the other side's writing is shut down once
//! everything before the end has been delivered, so half-closed connections work both ways.

use nix::errno::Errno;
use nix::fcntl::{OFlag, SpliceFFlags, splice};
use nix::unistd::pipe2;
use std::io::{self, ErrorKind};
use std::os::fd::AsFd;
use tokio::io::{AsyncWriteExt, BufReader, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};

/// The most one splice call asks to move (the pipe's capacity bounds it further).
const CHUNK: usize = 1 << 20;
/// The copy buffer of a direction that cannot splice.
const COPY_BUFFER: usize = 64 * 1024;

/// What one direction moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Bytes delivered.
    pub bytes: u64,
    /// Whether they were spliced (false: copied through user space).
    pub spliced: bool,
}

/// Forwards `a` and `b` to each other until both directions have ended; answers what went
/// a → b and b → a.
///
/// # Errors
/// The first error of either direction (reset, broken pipe …); the other direction stops too.
pub async fn forward(a: &mut TcpStream, b: &mut TcpStream) -> io::Result<(Moved, Moved)> {
    let (ar, aw) = a.split();
    let (br, bw) = b.split();
    tokio::try_join!(one_way(ar, bw), one_way(br, aw))
}

/// One direction: splice when possible, else copy; then shut down the writing side.
async fn one_way(from: ReadHalf<'_>, mut to: WriteHalf<'_>) -> io::Result<Moved> {
    let moved = match pipe_through(from.as_ref(), to.as_ref()).await {
        Ok(bytes) => Moved { bytes, spliced: true },
        Err(Unspliced::Io(e)) => return Err(e),
        Err(Unspliced::Refused(why)) => {
            tracing::debug!(error = %why, "mesh: splice refused, copying instead");
            let mut from = BufReader::with_capacity(COPY_BUFFER, from);
            let bytes = tokio::io::copy_buf(&mut from, &mut to).await?;
            Moved { bytes, spliced: false }
        }
    };
    to.shutdown().await?;
    Ok(moved)
}

enum Unspliced {
    /// Splice cannot be used; nothing has been moved yet.
    Refused(io::Error),
    Io(io::Error),
}

impl From<io::Error> for Unspliced {
    fn from(e: io::Error) -> Self {
        Unspliced::Io(e)
    }
}

/// Splices `from` → pipe → `to` until `from` ends; answers the bytes delivered.
async fn pipe_through(from: &TcpStream, to: &TcpStream) -> Result<u64, Unspliced> {
    // Close-on-exec: the process runtime's tasks must not inherit the pipe.
    let (pipe_out, pipe_in) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| Unspliced::Refused(io::Error::from(e)))?;
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let mut total = 0u64;
    loop {
        // The pipe is empty here, so "would block" can only mean `from` has nothing yet.
        let filled = loop {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || io_splice(from, &pipe_in, CHUNK, flags)) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) if total == 0 && refused(&e) => return Err(Unspliced::Refused(e)),
                other => break other?,
            }
        };
        if filled == 0 {
            return Ok(total);
        }
        let mut left = filled;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || io_splice(&pipe_out, to, left, flags)) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                other => left -= other?,
            }
        }
        total += filled as u64;
    }
}

fn io_splice(from: impl AsFd, to: impl AsFd, len: usize, flags: SpliceFFlags) -> io::Result<usize> {
    splice(from, None, to, None, len, flags).map_err(io::Error::from)
}

fn refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error().map(Errno::from_raw), Some(Errno::EINVAL | Errno::ENOSYS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// Two connected sockets on loopback.
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let near = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (far, _) = l.accept().await.unwrap();
        (near, far)
    }

    /// A client and a server with `forward` between them, as the mesh runs it.
    async fn forwarded()
    -> (TcpStream, TcpStream, tokio::task::JoinHandle<io::Result<(Moved, Moved)>>) {
        let (client, mut mesh_in) = pair().await;
        let (mut mesh_out, server) = pair().await;
        let fwd = tokio::spawn(async move { forward(&mut mesh_in, &mut mesh_out).await });
        (client, server, fwd)
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    #[tokio::test]
    async fn bytes_arrive_intact_both_ways_and_are_spliced() {
        let (mut client, mut server, fwd) = forwarded().await;
        let mut buf = [0u8; 5];
        for _ in 0..3 {
            client.write_all(b"hello").await.unwrap();
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"hello");
            server.write_all(b"world").await.unwrap();
            client.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"world");
        }
        drop(client);
        drop(server);
        let (up, down) = fwd.await.unwrap().unwrap();
        assert_eq!(up, Moved { bytes: 15, spliced: true });
        assert_eq!(down, Moved { bytes: 15, spliced: true });
    }

    #[tokio::test]
    async fn a_half_close_reaches_the_other_side_which_can_still_answer() {
        let (mut client, mut server, fwd) = forwarded().await;
        client.write_all(b"ping").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        // The timeout only guards against a hang when the end does not get through.
        let to_end = server.read_to_end(&mut got);
        tokio::time::timeout(Duration::from_secs(10), to_end).await.expect("no end").unwrap();
        assert_eq!(got, b"ping", "the server sees the end after the request");
        server.write_all(b"pong").await.unwrap();
        server.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"pong");
        let (up, down) = fwd.await.unwrap().unwrap();
        assert_eq!((up.bytes, down.bytes), (4, 4));
    }

    #[tokio::test]
    async fn a_large_transfer_both_ways_at_once_arrives_intact() {
        let (client, server, fwd) = forwarded().await;
        let (up, down) = (pattern(48 << 20, 0x5a), pattern(16 << 20, 0xa5));
        let (mut cr, cw) = client.into_split();
        let (mut sr, sw) = server.into_split();
        let send = |mut w: tokio::net::tcp::OwnedWriteHalf, data: Vec<u8>| async move {
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let (s1, s2) = (tokio::spawn(send(cw, up.clone())), tokio::spawn(send(sw, down.clone())));
        let (mut at_server, mut at_client) = (Vec::new(), Vec::new());
        let (a, b) = tokio::join!(sr.read_to_end(&mut at_server), cr.read_to_end(&mut at_client));
        a.unwrap();
        b.unwrap();
        s1.await.unwrap();
        s2.await.unwrap();
        assert!(at_server == up, "upstream bytes differ ({} of {})", at_server.len(), up.len());
        assert!(
            at_client == down,
            "downstream bytes differ ({} of {})",
            at_client.len(),
            down.len()
        );
        let (u, d) = fwd.await.unwrap().unwrap();
        assert_eq!(u, Moved { bytes: up.len() as u64, spliced: true });
        assert_eq!(d, Moved { bytes: down.len() as u64, spliced: true });
    }

    #[test]
    fn only_einval_and_enosys_make_a_direction_copy_instead() {
        let e = |n: Errno| io::Error::from_raw_os_error(n as i32);
        assert!(refused(&e(Errno::EINVAL)));
        assert!(refused(&e(Errno::ENOSYS)));
        assert!(!refused(&e(Errno::EPIPE)));
        assert!(!refused(&e(Errno::ECONNRESET)));
    }
}
