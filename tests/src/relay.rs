//! A TCP relay in front of a server that can stop passing bytes on: the server hangs,
//! as a client sees an overloaded or cut-off one (connections open, no answers); or
//! that can cut every connection and refuse new ones: the server is down. And a slow
//! link ([`SlowLink`]): an uplink slower than what is sent over it.

use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pass,
    Hang,
    Down,
}

pub struct Relay {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl Relay {
    /// Relays to the server at `base` (`http://host:port`) until dropped.
    pub async fn start(base: &str) -> Self {
        let upstream: SocketAddr = base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("a base URL of the form http://host:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, mode_rx) = watch::channel(Mode::Pass);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if mode_rx.has_changed().is_err() {
                    return; // the relay was dropped
                }
                if *mode_rx.borrow() == Mode::Down {
                    continue; // closed at once
                }
                let mode = mode_rx.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let both = async {
                        tokio::join!(pass(cr, sw, mode.clone()), pass(sr, cw, mode.clone()))
                    };
                    tokio::select! {
                        _ = both => {}
                        () = down(mode.clone()) => {}
                    }
                });
            }
        });
        Self { addr, mode }
    }

    /// Where the relay listens (for a TCP service other than HTTP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL that reaches the server through the relay.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, nothing passes in either direction (until `hang(false)`).
    pub fn hang(&self, hung: bool) {
        self.mode
            .send_replace(if hung { Mode::Hang } else { Mode::Pass });
    }

    /// Every connection is cut and new ones are closed at once (until `up`).
    pub fn down(&self) {
        self.mode.send_replace(Mode::Down);
    }

    /// Passes again.
    pub fn up(&self) {
        self.mode.send_replace(Mode::Pass);
    }
}

/// Resolves when the relay goes down (or is dropped).
async fn down(mut mode: watch::Receiver<Mode>) {
    let _ = mode.wait_for(|m| *m == Mode::Down).await;
}

/// Copies `from` to `to`, holding every chunk, and the end, while the relay hangs.
async fn pass(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        if mode.wait_for(|m| *m != Mode::Hang).await.is_err()
            || *mode.borrow() == Mode::Down
            || n == 0
            || to.write_all(&buf[..n]).await.is_err()
        {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A seller's uplink slower than the show: a TCP link to a local port that carries at
/// most `kbps` toward it (the other way is free), with a small queue, as a home
/// router's is.
pub struct SlowLink {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl SlowLink {
    pub async fn start(to: u16, kbps: u32) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        // The link's queue: what its receiving side holds before the sender waits.
        socket.set_recv_buffer_size(32 * 1024).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(8).unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", to)).await else {
                        return;
                    };
                    let (cr, mut cw) = client.into_split();
                    let (mut sr, sw) = server.into_split();
                    let down = async {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(throttle(cr, sw, kbps), down);
                });
            }
        });
        Self { port, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` at `kbps` at most: each chunk leaves once the ones before it
/// would have, at that rate (no credit for idle moments).
async fn throttle(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, kbps: u32) {
    let per_byte = std::time::Duration::from_secs(8).as_secs_f64() / (f64::from(kbps) * 1000.0);
    let mut free_at = tokio::time::Instant::now();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        free_at = free_at.max(tokio::time::Instant::now())
            + std::time::Duration::from_secs_f64(per_byte * n as f64);
        tokio::time::sleep_until(free_at).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
