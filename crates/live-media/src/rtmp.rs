//! RTMP and RTMPS publishing without a main loop of its own. The taps write each
//! message to the socket from their own threads and never wait on it: what the socket
//! does not take at once waits in a backlog that the output's thread sends as soon as
//! there is room. The output's thread also answers the ingest (acknowledgements,
//! pings) and notices when the connection dies.
//!
//! The kernel is asked to hold little that it has not sent yet, so what a connection
//! slower than the show cannot carry waits in that backlog, where it is seen (how far
//! behind the show it is) rather than in the socket, where seconds pile up unseen.
//!
//! The protocol (handshake, chunks, commands) is `rml_rtmp`'s, TLS is rustls's with
//! the system's certificate authorities.

use crate::flv;
use crate::ingest_url::{IngestScheme, IngestUrl, RtmpTarget};
use crate::output::TlsTrust;
use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConnection, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long connecting and being allowed to publish may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one wait on the socket lasts, so a stop is never kept waiting.
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// A connection that takes nothing for this long while media waits is given up (and
/// made anew), rather than left to drop frames until TCP itself gives up.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// What the kernel holds of the show before sending it (`TCP_NOTSENT_LOWAT`): 0.2 s
/// at 2.5 Mb/s. Bytes on their way (the congestion window) are not limited by it.
const UNSENT_IN_SOCKET: u32 = 64 * 1024;
/// The ingest is asked to acknowledge every 8 KiB it receives (38 times a second at
/// 2.5 Mb/s, twice a second at 128 kb/s), so how far behind the show a connection is
/// stays known to a fraction of a second.
const ACK_WINDOW: u32 = 8 * 1024;
/// What of the show the network may hold at once (sent, not yet received); see
/// [`Publisher::hold_back`].
const IN_NETWORK: Duration = Duration::from_secs(1);
/// RTMP chunks of 4 KB (OBS's size) rather than the protocol's 128 bytes.
const CHUNK_SIZE: u32 = 4096;
/// Status codes by which an ingest refuses or ends a publication.
const REFUSALS: [&str; 4] = ["BadName", "Denied", "Failed", "Rejected"];

#[derive(Debug, thiserror::Error)]
pub(crate) enum RtmpError {
    #[error("cannot find the ingest host {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("cannot connect to the ingest at {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("the ingest's certificate was refused: {0}")]
    Certificate(String),
    #[error("TLS with the ingest failed: {0}")]
    Tls(rustls::Error),
    #[error("the connection to the ingest failed: {0}")]
    Io(#[from] io::Error),
    #[error("the ingest closed the connection")]
    Closed,
    #[error("the ingest did not answer within {} s ({stage})", SETUP_TIMEOUT.as_secs())]
    TimedOut { stage: &'static str },
    #[error("the ingest has taken nothing for {} s", STALL_TIMEOUT.as_secs())]
    Stalled,
    #[error("the ingest refused the show: {0}")]
    Refused(String),
    #[error("{addr} is not an RTMP ingest: {why}")]
    NotRtmp { addr: String, why: &'static str },
    #[error(
        "the ingest does not answer in TLS: check that it takes rtmps:// on this port, or use rtmp://"
    )]
    NotTls,
    #[error("RTMP: {0}")]
    Protocol(String),
    #[error("stopped")]
    Stopped,
}

impl From<rustls::Error> for RtmpError {
    fn from(e: rustls::Error) -> Self {
        match e {
            e if unknown_authority(&e) => Self::Certificate(
                "its authority is not one this machine trusts (for a private ingest, trust its authority)"
                    .into(),
            ),
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            ) => Self::Certificate("it has expired".into()),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
            ) => Self::Certificate("it is not valid yet (is this machine's clock right?)".into()),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => Self::Certificate("it is not for this host".into()),
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                Self::Certificate(e.to_string())
            }
            // Bytes that are no TLS record: a plain RTMP server (or something else).
            rustls::Error::InvalidMessage(_) => Self::NotTls,
            e => Self::Tls(e),
        }
    }
}

/// Why the first bytes an ingest sent (an RTMP server's start with version 3) show
/// it is something else, with what to check; None for RTMP (or too little to tell).
fn not_rtmp(first: &[u8]) -> Option<&'static str> {
    match first.first()? {
        3 => None,
        _ if first.starts_with(b"HTTP/") => {
            Some("a web server answered: check the URL's host and port")
        }
        // A TLS record (handshake or alert): the service wants rtmps://.
        0x15 | 0x16 => Some("it answered in TLS: use rtmps://"),
        _ => Some("what answered does not speak RTMP: check the URL's host and port"),
    }
}

fn protocol(e: impl std::fmt::Display) -> RtmpError {
    RtmpError::Protocol(e.to_string())
}

/// Waits until `socket` has something to read (or room to write, with `write`), at
/// most `timeout`.
pub(crate) fn wait(socket: &TcpStream, write: bool, timeout: Duration) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut flags = PollFlags::IN;
    if write {
        flags |= PollFlags::OUT;
    }
    let timeout = Timespec::try_from(timeout).map_err(io::Error::other)?;
    match rustix::event::poll(&mut [PollFd::new(socket, flags)], Some(&timeout)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A connected socket, TLS or not, that never blocks: what it cannot send now waits.
struct Link {
    socket: TcpStream,
    tls: Option<Box<ClientConnection>>,
    /// Bytes (before TLS) the socket has not taken yet, in order.
    pending: Vec<u8>,
    /// Bytes given to [`Link::send`] and bytes the socket took, since it opened.
    given: u64,
    taken: u64,
    /// How far (in the bytes given) the socket may take them for now; see
    /// [`Publisher::hold_back`].
    limit: u64,
    /// When the socket last took bytes, the ingest said it received more, or bytes
    /// began to wait.
    moved: Instant,
}

impl Link {
    fn open(
        target: &RtmpTarget,
        tls: Option<TlsTrust>,
        stop: &AtomicBool,
        deadline: Instant,
    ) -> Result<Self, RtmpError> {
        let socket = connect_tcp(&target.host, target.port, stop, deadline)?;
        // Each message is written whole: no waiting to fill a segment.
        socket.set_nodelay(true)?;
        socket.set_nonblocking(true)?;
        if let Err(e) = socket2::SockRef::from(&socket).set_tcp_notsent_lowat(UNSENT_IN_SOCKET) {
            tracing::debug!("TCP_NOTSENT_LOWAT refused: {e}");
        }
        let tls = match tls {
            None => None,
            Some(trust) => {
                let name = match &target.host {
                    url::Host::Domain(d) => ServerName::try_from(d.clone())
                        .map_err(|e| RtmpError::Tls(rustls::Error::General(e.to_string())))?,
                    url::Host::Ipv4(ip) => ServerName::IpAddress((*ip).into()),
                    url::Host::Ipv6(ip) => ServerName::IpAddress((*ip).into()),
                };
                Some(Box::new(ClientConnection::new(tls_config(trust)?, name)?))
            }
        };
        Ok(Self::new(socket, tls))
    }

    fn new(socket: TcpStream, tls: Option<Box<ClientConnection>>) -> Self {
        Self {
            socket,
            tls,
            pending: Vec::new(),
            given: 0,
            taken: 0,
            limit: u64::MAX,
            moved: Instant::now(),
        }
    }

    /// How many of the bytes waiting the socket may take now.
    fn allowed(&self) -> usize {
        room(self.pending.len(), self.limit, self.taken)
    }

    fn wants_write(&self) -> bool {
        self.allowed() > 0 || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Whether media has waited for a connection that moved nothing for too long.
    fn stalled(&self) -> bool {
        let waiting =
            !self.pending.is_empty() || self.tls.as_ref().is_some_and(|t| t.wants_write());
        waiting && self.moved.elapsed() > STALL_TIMEOUT
    }

    /// Sends `bytes` after whatever waits, as far as the socket takes them now.
    fn send(&mut self, bytes: &[u8]) -> Result<(), RtmpError> {
        if !self.wants_write() {
            self.moved = Instant::now();
        }
        self.given += bytes.len() as u64;
        if self.pending.is_empty() && self.tls.is_none() {
            let now = room(bytes.len(), self.limit, self.taken);
            let sent = write_some(&mut self.socket, &bytes[..now])?;
            self.taken += sent as u64;
            self.pending.extend_from_slice(&bytes[sent..]);
            return Ok(());
        }
        self.pending.extend_from_slice(bytes);
        self.flush()
    }

    /// Sends what waits, as far as the socket takes it now.
    fn flush(&mut self) -> Result<(), RtmpError> {
        let Some(tls) = self.tls.as_mut() else {
            let allowed = self.allowed();
            let sent = write_some(&mut self.socket, &self.pending[..allowed])?;
            if sent > 0 {
                self.moved = Instant::now();
                self.taken += sent as u64;
                self.pending.drain(..sent);
            }
            return Ok(());
        };
        loop {
            // Into TLS records as far as its buffer goes, then the records out.
            let allowed = room(self.pending.len(), self.limit, self.taken);
            let taken = if allowed == 0 {
                0
            } else {
                tls.writer().write(&self.pending[..allowed])?
            };
            self.pending.drain(..taken);
            self.taken += taken as u64;
            while tls.wants_write() {
                match tls.write_tls(&mut self.socket) {
                    Ok(n) if n > 0 => self.moved = Instant::now(),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if taken == 0 || self.pending.is_empty() {
                return Ok(());
            }
        }
    }

    /// Appends what the ingest has sent (after TLS) to `into`, without waiting;
    /// [`RtmpError::Closed`] once it has closed the connection.
    fn receive(&mut self, into: &mut Vec<u8>) -> Result<(), RtmpError> {
        const BUF: usize = 16 * 1024;
        let mut buf = [0u8; BUF];
        let Some(tls) = self.tls.as_mut() else {
            loop {
                match self.socket.read(&mut buf) {
                    Ok(0) => return Err(RtmpError::Closed),
                    Ok(n) => into.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
        };
        loop {
            let closed = match tls.read_tls(&mut self.socket) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            let state = match tls.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // Tell the ingest why (an alert), if it still listens.
                    let _ = tls.write_tls(&mut self.socket);
                    return Err(e.into());
                }
            };
            let mut plain = state.plaintext_bytes_to_read();
            while plain > 0 {
                let n = tls.reader().read(&mut buf[..plain.min(BUF)])?;
                if n == 0 {
                    break;
                }
                into.extend_from_slice(&buf[..n]);
                plain -= n;
            }
            if closed || state.peer_has_closed() {
                return Err(RtmpError::Closed);
            }
        }
        // Handshake replies, key updates.
        self.flush()
    }

    /// Waits for the ingest to say something within the setup's time, and appends it.
    fn expect(
        &mut self,
        into: &mut Vec<u8>,
        stop: &AtomicBool,
        deadline: Instant,
        stage: &'static str,
    ) -> Result<(), RtmpError> {
        while into.is_empty() {
            if stop.load(Ordering::SeqCst) {
                return Err(RtmpError::Stopped);
            }
            if Instant::now() > deadline {
                // A plain RTMP server waits for a handshake TLS never sends.
                let stage = if self.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
                    "TLS handshake: does it take rtmps:// on this port?"
                } else {
                    stage
                };
                return Err(RtmpError::TimedOut { stage });
            }
            wait(&self.socket, self.wants_write(), TICK)?;
            self.flush()?;
            match self.receive(into) {
                // What it said before closing (a refusal) comes first.
                Err(RtmpError::Closed) if !into.is_empty() => break,
                received => received?,
            }
        }
        Ok(())
    }
}

/// How many of `len` bytes may go with the socket at `taken` and allowed up to `limit`.
fn room(len: usize, limit: u64, taken: u64) -> usize {
    let room = limit.saturating_sub(taken);
    len.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// Writes as much of `bytes` as the socket takes now; how much it took.
fn write_some(socket: &mut TcpStream, bytes: &[u8]) -> Result<usize, RtmpError> {
    let mut sent = 0;
    while sent < bytes.len() {
        match socket.write(&bytes[sent..]) {
            Ok(0) => return Err(RtmpError::Closed),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(sent)
}

/// Connects to `host:port`. The name lookup and the connection may wait on the
/// network, so they run in a thread of their own: a stop never waits for them.
fn connect_tcp(
    host: &url::Host<String>,
    port: u16,
    stop: &AtomicBool,
    deadline: Instant,
) -> Result<TcpStream, RtmpError> {
    let name = match host {
        url::Host::Domain(d) => d.clone(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    let budget = deadline.saturating_duration_since(Instant::now());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("feza-rtmp-connect".into())
        .spawn(move || {
            let _ = tx.send(connect_any(&name, port, budget));
        })?;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(result) => return result,
            Err(RecvTimeoutError::Timeout) if stop.load(Ordering::SeqCst) => {
                return Err(RtmpError::Stopped);
            }
            Err(RecvTimeoutError::Timeout) if Instant::now() <= deadline => {}
            Err(_) => {
                return Err(RtmpError::TimedOut {
                    stage: "connecting",
                });
            }
        }
    }
}

fn connect_any(host: &str, port: u16, budget: Duration) -> Result<TcpStream, RtmpError> {
    let resolve = |source| RtmpError::Resolve {
        host: host.to_owned(),
        source,
    };
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().map_err(resolve)?.collect();
    let mut failure = resolve(io::Error::new(io::ErrorKind::NotFound, "no address"));
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, budget.max(Duration::from_millis(1))) {
            Ok(socket) => return Ok(socket),
            Err(source) => {
                failure = RtmpError::Connect {
                    addr: addr.to_string(),
                    source,
                }
            }
        }
    }
    Err(failure)
}

/// One connection publishing a show.
pub(crate) struct Publisher {
    link: Link,
    session: ClientSession,
    /// Why sending failed in a tap's thread, for the output's thread to report.
    failed: Option<RtmpError>,
    waiting: Waiting,
    received: Received,
}

/// The media messages given to a link until the ingest has them (or, from an ingest
/// that does not say, the socket took them): where each starts and ends among the
/// link's bytes, and its time in the show (ms).
#[derive(Default)]
struct Waiting(VecDeque<(u64, u64, u64)>);

impl Waiting {
    /// Notes a message at `ms` given to the link as its bytes `start..end`.
    fn note(&mut self, start: u64, end: u64, ms: u64) {
        self.0.push_back((start, end, ms));
    }

    /// Forgets the messages that have arrived up to `arrived`.
    fn arrived(&mut self, arrived: u64) {
        while self.0.front().is_some_and(|(_, end, _)| *end <= arrived) {
            self.0.pop_front();
        }
    }

    /// How far behind `now_ms` of the show the oldest message still waiting is.
    fn behind(&self, now_ms: u64) -> Duration {
        let oldest = self.0.front().map_or(now_ms, |(_, _, ms)| *ms);
        Duration::from_millis(now_ms.saturating_sub(oldest))
    }

    /// Where the first message more than `span` later in the show than the oldest one
    /// waiting starts (the bytes before it may go out), if there is one.
    fn span_end(&self, span: Duration) -> Option<u64> {
        let (_, _, oldest) = self.0.front()?;
        let until = oldest + span.as_millis() as u64;
        self.0
            .iter()
            .find(|(_, _, ms)| *ms > until)
            .map(|(start, _, _)| *start)
    }
}

/// What the ingest says it has received: RTMP's acknowledgements, which it sends each
/// time another window of bytes (the size this client asks for) has arrived. They see
/// what waits in the network (a slow uplink's queue), which the socket cannot.
#[derive(Debug, Default)]
struct Received {
    /// The link's bytes before the ingest began counting (the handshake).
    base: u64,
    last: Option<u32>,
    total: u64,
    /// Whether the ingest acknowledges at the window asked for: one that keeps its own,
    /// far larger window (or none) tells too little, too late.
    trusted: bool,
}

impl Received {
    /// A window's acknowledgement often enough to go by.
    const TRUSTED_WITHIN: u64 = 4 * ACK_WINDOW as u64;

    /// Takes an acknowledgement; whether it says more arrived.
    fn acknowledged(&mut self, sequence: u32) -> bool {
        let last = self.last.unwrap_or(0);
        let more = if sequence >= last {
            sequence - last
        } else if last > 0xF800_0000 {
            // The count wrapped, as the specification has it.
            sequence.wrapping_sub(last)
        } else {
            // nginx-rtmp starts its count again past 0xF0000000.
            (0xF000_0000u32.saturating_sub(last)).saturating_add(sequence)
        };
        let more = u64::from(more);
        self.trusted |= self.last.is_some() && more <= Self::TRUSTED_WITHIN;
        self.last = Some(sequence);
        self.total += more;
        more > 0
    }

    /// Where among the link's bytes the ingest has received up to, when it says so.
    fn position(&self) -> Option<u64> {
        self.trusted.then_some(self.base + self.total)
    }
}

impl Publisher {
    /// Connects, shakes hands and asks to publish; returns once the ingest accepted
    /// the show (its `NetStream.Publish.Start`), or says why not.
    pub fn connect(url: &IngestUrl, trust: TlsTrust, stop: &AtomicBool) -> Result<Self, RtmpError> {
        let target = url
            .rtmp_target()
            .ok_or_else(|| protocol("not an RTMP URL"))?;
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let tls = (url.scheme() == IngestScheme::Rtmps).then_some(trust);
        let mut link = Link::open(&target, tls, stop, deadline)?;

        let mut handshake = Handshake::new(PeerType::Client);
        link.send(&handshake.generate_outbound_p0_and_p1().map_err(protocol)?)?;
        let mut input = Vec::new();
        let mut first = true;
        let rest = loop {
            link.expect(&mut input, stop, deadline, "handshake")?;
            // Its very first byte says whether an RTMP server answered at all.
            if let Some(why) = not_rtmp(&input).filter(|_| first) {
                return Err(RtmpError::NotRtmp {
                    addr: format!("{}:{}", target.host, target.port),
                    why,
                });
            }
            first = false;
            match handshake.process_bytes(&input).map_err(protocol)? {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    link.send(&response_bytes)?;
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    link.send(&response_bytes)?;
                    break remaining_bytes;
                }
            }
            input.clear();
        };

        let config = ClientSessionConfig {
            chunk_size: CHUNK_SIZE,
            tc_url: Some(target.tc_url.clone()),
            window_ack_size: ACK_WINDOW,
            ..ClientSessionConfig::new()
        };
        let received = Received {
            base: link.given,
            ..Received::default()
        };
        let (session, results) = ClientSession::new(config).map_err(protocol)?;
        let mut publisher = Self {
            link,
            session,
            failed: None,
            waiting: Waiting::default(),
            received,
        };
        publisher.apply(results)?;
        let mut events = publisher.handle(&rest)?;
        let request = publisher
            .session
            .request_connection(target.app.clone())
            .map_err(protocol)?;
        publisher.apply(vec![request])?;
        publisher.await_event(
            &mut events,
            ClientSessionEvent::ConnectionRequestAccepted,
            stop,
            deadline,
            "connect",
        )?;
        let request = publisher
            .session
            .request_publishing(target.stream, PublishRequestType::Live)
            .map_err(protocol)?;
        publisher.apply(vec![request])?;
        publisher.await_event(
            &mut events,
            ClientSessionEvent::PublishRequestAccepted,
            stop,
            deadline,
            "publish",
        )?;
        Ok(publisher)
    }

    /// Sends what the session wants sent; returns the events it raised.
    fn apply(
        &mut self,
        results: Vec<ClientSessionResult>,
    ) -> Result<Vec<ClientSessionEvent>, RtmpError> {
        let mut events = Vec::new();
        for result in results {
            match result {
                ClientSessionResult::OutboundResponse(packet) => self.link.send(&packet.bytes)?,
                ClientSessionResult::RaisedEvent(event) => events.push(event),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(events)
    }

    /// Takes what the ingest sent and answers it; a refusal is an error.
    fn handle(&mut self, input: &[u8]) -> Result<Vec<ClientSessionEvent>, RtmpError> {
        if input.is_empty() {
            return Ok(Vec::new());
        }
        // `rml_rtmp` panics on some ill-formed commands (one with fewer than three
        // values): that is the ingest's fault, and it ends this connection, not the
        // output's thread.
        let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.session.handle_input(input)
        }))
        .map_err(|_| protocol("the ingest sent a command this client cannot read"))?
        .map_err(protocol)?;
        let events = self.apply(results)?;
        for event in &events {
            match event {
                ClientSessionEvent::AcknowledgementReceived { bytes_received } => {
                    if self.received.acknowledged(*bytes_received) {
                        self.link.moved = Instant::now();
                    }
                    self.hold_back();
                }
                ClientSessionEvent::ConnectionRequestRejected { description } => {
                    return Err(RtmpError::Refused(description.clone()));
                }
                ClientSessionEvent::UnhandleableOnStatusCode { code }
                    if REFUSALS.iter().any(|r| code.contains(r)) =>
                {
                    return Err(RtmpError::Refused(code.clone()));
                }
                _ => {}
            }
        }
        Ok(events)
    }

    fn await_event(
        &mut self,
        events: &mut Vec<ClientSessionEvent>,
        want: ClientSessionEvent,
        stop: &AtomicBool,
        deadline: Instant,
        stage: &'static str,
    ) -> Result<(), RtmpError> {
        let mut input = Vec::new();
        while !events.contains(&want) {
            input.clear();
            self.link
                .expect(&mut input, stop, deadline, stage)
                .map_err(|e| match e {
                    RtmpError::Closed if want == ClientSessionEvent::PublishRequestAccepted => {
                        RtmpError::Refused(
                            "it closed the connection when asked to publish: check the stream key"
                                .into(),
                        )
                    }
                    e => e,
                })?;
            events.extend(self.handle(&input)?);
        }
        events.clear();
        Ok(())
    }

    /// The stream's header: its metadata, then both codecs' configurations.
    pub fn start(&mut self, header: &flv::Header) -> Result<(), RtmpError> {
        let metadata = self
            .session
            .publish_metadata(&header.metadata)
            .map_err(protocol)?;
        let zero = RtmpTimestamp::new(0);
        let video = self
            .session
            .publish_video_data(header.video_config.clone(), zero, false)
            .map_err(protocol)?;
        let audio = self
            .session
            .publish_audio_data(header.audio_config.clone(), zero, false)
            .map_err(protocol)?;
        self.apply(vec![metadata, video, audio]).map(drop)
    }

    /// Sends one message of media at `ms` (decode time) without waiting; false when the
    /// connection has failed (kept for [`Publisher::service`] to report).
    pub fn send(&mut self, video: bool, body: Bytes, ms: u64) -> bool {
        if self.failed.is_some() {
            return false;
        }
        // RTMP's clock is 32 bits of milliseconds and wraps.
        let at = RtmpTimestamp::new(ms as u32);
        let start = self.link.given;
        let packet = if video {
            self.session.publish_video_data(body, at, false)
        } else {
            self.session.publish_audio_data(body, at, false)
        };
        let sent = match packet {
            Ok(packet) => self.apply(vec![packet]).map(drop),
            Err(e) => Err(protocol(e)),
        };
        if let Err(e) = sent {
            self.failed = Some(e);
            return false;
        }
        self.waiting.note(start, self.link.given, ms);
        self.hold_back();
        true
    }

    /// Keeps what the network holds of the show to [`IN_NETWORK`]: the socket may take
    /// the messages up to that much later than the oldest one the ingest does not have
    /// yet; the rest waits here, where it counts as behind and is dropped if need be.
    /// TCP would otherwise fill a slow uplink's queue (seconds of it), out of reach.
    /// Without acknowledgements to go by, the socket takes what it can.
    fn hold_back(&mut self) {
        let taken = self.link.taken;
        let received = self.received.position();
        let arrived = match received {
            Some(received) if taken.saturating_sub(received) > u64::from(ACK_WINDOW) => received,
            // Less than a window on its way is not acknowledged until more follows: it
            // counts as arrived (else a connection that stopped sending for being
            // behind would wait for it forever).
            _ => taken,
        };
        self.waiting.arrived(arrived);
        self.link.limit = match received {
            Some(_) => self.waiting.span_end(IN_NETWORK).unwrap_or(u64::MAX),
            None => u64::MAX,
        };
    }

    /// How far behind the show at `now_ms` (the time of the message about to be sent)
    /// the connection is: since the oldest message the ingest does not have yet.
    pub fn behind(&mut self, now_ms: u64) -> Duration {
        self.hold_back();
        self.waiting.behind(now_ms)
    }

    pub fn wants_write(&self) -> bool {
        self.link.wants_write()
    }

    /// The socket, for the output's thread to wait on (see [`wait`]).
    pub fn socket(&self) -> io::Result<TcpStream> {
        self.link.socket.try_clone()
    }

    /// Answers the ingest and sends what waits; called by the output's thread when
    /// the socket is ready. An error ends the connection.
    pub fn service(&mut self) -> Result<(), RtmpError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut input = Vec::new();
        let received = self.link.receive(&mut input);
        self.handle(&input)?;
        received?;
        self.link.flush()?;
        self.hold_back();
        if self.link.stalled() {
            return Err(RtmpError::Stalled);
        }
        Ok(())
    }

    /// Ends the publication (`deleteStream`) and sends what waits, for at most
    /// `within`.
    pub fn finish(mut self, within: Duration) {
        // The show's last moments go out whole, however far behind.
        self.link.limit = u64::MAX;
        if let Ok(results) = self.session.stop_publishing() {
            let _ = self.apply(results);
        }
        if let Some(tls) = self.link.tls.as_mut() {
            tls.send_close_notify();
        }
        let deadline = Instant::now() + within;
        while self.link.wants_write() && Instant::now() < deadline {
            if wait(&self.link.socket, true, TICK).is_err() || self.link.flush().is_err() {
                break;
            }
        }
    }
}

/// TLS settings for `trust`, made once per process (reading the system's authorities
/// takes a while).
fn tls_config(trust: TlsTrust) -> Result<Arc<ClientConfig>, RtmpError> {
    static SYSTEM: OnceLock<Result<Arc<ClientConfig>, rustls::Error>> = OnceLock::new();
    static PRIVATE: OnceLock<Result<Arc<ClientConfig>, rustls::Error>> = OnceLock::new();
    let cell = match trust {
        TlsTrust::System => &SYSTEM,
        TlsTrust::AllowUnknownCa => &PRIVATE,
    };
    cell.get_or_init(|| make_tls_config(trust))
        .clone()
        .map_err(RtmpError::Tls)
}

fn make_tls_config(trust: TlsTrust) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, unusable) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, unusable, "system certificate authorities");
    let system = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .ok();
    let verifier: Arc<dyn ServerCertVerifier> = match (trust, system) {
        (TlsTrust::System, Some(system)) => system,
        (TlsTrust::System, None) => {
            return Err(rustls::Error::General(
                "this machine has no certificate authorities: install ca-certificates".into(),
            ));
        }
        (TlsTrust::AllowUnknownCa, system) => Arc::new(PrivateAuthority {
            system,
            provider: provider.clone(),
        }),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every check of the ingest's certificate but its authority's: a private ingest's
/// own authority (or a self-signed certificate) is accepted, while its dates, its
/// signatures and the host name it is for are still checked.
#[derive(Debug)]
struct PrivateAuthority {
    system: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

/// Whether `e` says only that the certificate's authority is unknown: an authority
/// missing from the system's, or a self-signed certificate that calls itself one
/// (what `openssl req -x509` makes).
fn unknown_authority(e: &rustls::Error) -> bool {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => true,
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            let inner: &(dyn std::error::Error + 'static) = &*other.0;
            inner.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity)
        }
        _ => false,
    }
}

fn invalid(e: webpki::Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(match e {
        webpki::Error::CertExpired { .. } => CertificateError::Expired,
        webpki::Error::CertNotValidYet { .. } => CertificateError::NotValidYet,
        e => CertificateError::Other(rustls::OtherError(Arc::new(e))),
    })
}

impl ServerCertVerifier for PrivateAuthority {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(system) = &self.system {
            match system.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                Err(e) if unknown_authority(&e) => {}
                known => return known,
            }
        }
        // The top of the chain the ingest presented stands in for the authority.
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(invalid)?;
        let top = intermediates.last().unwrap_or(end_entity);
        let anchor = webpki::anchor_from_trusted_cert(top).map_err(invalid)?;
        match cert.verify_for_usage(
            self.provider.signature_verification_algorithms.all,
            &[anchor],
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        ) {
            // A self-signed certificate that calls itself an authority: its dates
            // were checked before this.
            Ok(_) | Err(webpki::Error::CaUsedAsEndEntity) => {}
            Err(e) => return Err(invalid(e)),
        }
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&parsed, server_name)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_connection_that_takes_nothing_is_given_up_and_one_that_moves_is_not() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // An ingest that stops reading.
        let (mut ingest, _) = listener.accept().unwrap();
        socket.set_nonblocking(true).unwrap();
        let mut link = Link::new(socket, None);
        let message = vec![7u8; 64 * 1024];
        while link.pending.is_empty() {
            link.send(&message).unwrap();
        }
        assert!(!link.stalled(), "media waiting a moment is no stall");
        link.moved = Instant::now()
            .checked_sub(STALL_TIMEOUT + Duration::from_secs(1))
            .unwrap();
        link.flush().unwrap();
        assert!(link.stalled());

        // The ingest reads again: what waited moves, and it is no longer stalled.
        ingest
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut buf = vec![0u8; 1024 * 1024];
        for _ in 0..100 {
            let _ = ingest.read(&mut buf);
            link.flush().unwrap();
            if !link.stalled() {
                return;
            }
        }
        panic!("still stalled while the ingest reads");
    }

    #[test]
    fn acknowledgements_count_what_arrived_across_wraps_and_only_when_they_come_often() {
        let mut r = Received {
            base: 3073,
            ..Received::default()
        };
        // An ingest that acknowledges at its own 2.5 MB window tells too little.
        r.acknowledged(2_500_000);
        r.acknowledged(5_000_000);
        assert_eq!(r.position(), None);

        let mut r = Received {
            base: 3073,
            ..Received::default()
        };
        r.acknowledged(8200);
        assert_eq!(
            r.position(),
            None,
            "one acknowledgement says nothing of its window"
        );
        r.acknowledged(16_500);
        assert_eq!(r.position(), Some(3073 + 16_500));
        // The specification's count wraps at 2^32…
        r.last = Some(u32::MAX - 100);
        r.total = u64::from(u32::MAX - 100);
        r.acknowledged(8000);
        assert_eq!(r.position(), Some(3073 + (1 << 32) + 8000));
        // …nginx-rtmp's starts again past 0xF0000000.
        let mut r = Received {
            last: Some(0xF000_0000 - 5000),
            total: 0xF000_0000 - 5000,
            trusted: true,
            ..Received::default()
        };
        assert!(r.acknowledged(4000));
        assert_eq!(r.position(), Some(0xF000_0000 + 4000));
    }

    #[test]
    fn how_far_behind_is_the_oldest_message_not_arrived_and_the_network_holds_a_second() {
        let mut waiting = Waiting::default();
        // A message of 1000 bytes every 100 ms of the show.
        for ms in (0..3000).step_by(100) {
            waiting.note(ms * 10, ms * 10 + 1000, ms);
        }
        assert_eq!(waiting.behind(3000), Duration::from_secs(3));
        // What the network may take: the messages of the oldest second (0–1000 ms).
        assert_eq!(waiting.span_end(Duration::from_secs(1)), Some(11_000));
        // The first 12 messages arrived (up to 1100 ms).
        waiting.arrived(12_000);
        assert_eq!(waiting.behind(3000), Duration::from_millis(1800));
        assert_eq!(waiting.span_end(Duration::from_secs(1)), Some(23_000));
        waiting.arrived(30_000);
        assert_eq!(waiting.behind(3000), Duration::ZERO);
        assert_eq!(waiting.span_end(Duration::from_secs(1)), None);
    }

    /// Connects to a listener that answers the first bytes it gets with `answer`.
    fn connect_to_one_that_answers(scheme: &str, answer: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf);
            let _ = socket.write_all(answer);
            let _ = socket.read(&mut buf);
        });
        let url = IngestUrl::parse(&format!("{scheme}://127.0.0.1:{port}/live/key")).unwrap();
        let failure = Publisher::connect(&url, TlsTrust::System, &AtomicBool::new(false))
            .err()
            .expect("no ingest to publish to");
        server.join().unwrap();
        failure.to_string()
    }

    #[test]
    fn a_url_that_reaches_something_other_than_an_rtmp_ingest_says_what_to_check() {
        let web = connect_to_one_that_answers("rtmp", b"HTTP/1.1 400 Bad Request\r\n\r\n");
        assert!(
            web.contains("a web server answered") && web.contains("port"),
            "{web}"
        );
        // A TLS alert, as a TLS-only ingest sends to a plain hello.
        let tls = connect_to_one_that_answers("rtmp", &[0x15, 3, 1, 0, 2, 2, 70]);
        assert!(tls.contains("use rtmps://"), "{tls}");
        // rtmps:// to a plain RTMP server: one that answers (version 3 first)…
        let plain = connect_to_one_that_answers("rtmps", &[3; 1537]);
        assert!(plain.contains("does not answer in TLS"), "{plain}");
        // …and one that waits for the rest of a handshake, as nginx-rtmp does.
        let waits = connect_to_one_that_answers("rtmps", b"");
        assert!(waits.contains("does it take rtmps://"), "{waits}");
    }

    /// The server's side of the RTMP handshake; with `pause`, S2 comes that long after
    /// S0 + S1.
    fn shake_hands(socket: &mut TcpStream, pause: Option<Duration>) {
        let mut handshake = Handshake::new(PeerType::Server);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = socket.read(&mut buf).unwrap();
            let (reply, done) = match handshake.process_bytes(&buf[..n]).unwrap() {
                HandshakeProcessResult::InProgress { response_bytes } => (response_bytes, false),
                HandshakeProcessResult::Completed { response_bytes, .. } => (response_bytes, true),
            };
            match pause.filter(|_| reply.len() > 1537) {
                Some(pause) => {
                    let (s0s1, s2) = reply.split_at(1537);
                    socket.write_all(s0s1).unwrap();
                    std::thread::sleep(pause);
                    socket.write_all(s2).unwrap();
                }
                None => socket.write_all(&reply).unwrap(),
            }
            if done {
                return;
            }
        }
    }

    #[test]
    fn a_handshake_that_arrives_in_pieces_is_rtmp() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ingest = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            // S0 + S1 first, S2 a moment later: the client reads twice…
            shake_hands(&mut socket, Some(Duration::from_millis(200)));
            // …then it hangs up, before `connect` is answered.
        });
        let url = IngestUrl::parse(&format!("rtmp://127.0.0.1:{port}/live/key")).unwrap();
        let failure = Publisher::connect(&url, TlsTrust::System, &AtomicBool::new(false))
            .err()
            .expect("it hung up");
        ingest.join().unwrap();
        assert!(matches!(failure, RtmpError::Closed), "{failure}");
    }

    #[test]
    fn an_ill_formed_command_from_the_ingest_is_an_error_not_a_crash() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ingest = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            shake_hands(&mut socket, None);
            let mut buf = vec![0u8; 64 * 1024];
            // Answers `connect` with a command of one value: "_result", and nothing else.
            let body = [&[2u8, 0, 7][..], b"_result"].concat();
            let mut chunk = vec![3u8, 0, 0, 0, 0, 0, body.len() as u8, 20, 0, 0, 0, 0];
            chunk.extend_from_slice(&body);
            socket.write_all(&chunk).unwrap();
            // Held open until the client gives up.
            let _ = socket.read(&mut buf);
        });
        let url = IngestUrl::parse(&format!("rtmp://127.0.0.1:{port}/live/key")).unwrap();
        let failure = Publisher::connect(&url, TlsTrust::System, &AtomicBool::new(false))
            .err()
            .expect("an ingest that answers nonsense is no ingest to publish to");
        assert!(failure.to_string().contains("cannot read"), "{failure}");
        ingest.join().unwrap();
    }
}
