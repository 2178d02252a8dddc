//! A TCP relay in front of a server that can stop passing bytes on: the server hangs,
//! as a client sees an overloaded or cut-off one (connections open, no answers).

use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Relay {
    addr: SocketAddr,
    hung: watch::Sender<bool>,
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
        let (hung, hung_rx) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if hung_rx.has_changed().is_err() {
                    return; // the relay was dropped
                }
                let hung = hung_rx.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pass(cr, sw, hung.clone()), pass(sr, cw, hung));
                });
            }
        });
        Self { addr, hung }
    }

    /// The base URL that reaches the server through the relay.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, nothing passes in either direction (until `hang(false)`).
    pub fn hang(&self, hung: bool) {
        self.hung.send_replace(hung);
    }
}

/// Copies `from` to `to`, holding every chunk while the relay hangs.
async fn pass(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut hung: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if hung.wait_for(|h| !h).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
