//! The bank's TCP listener: a cap on open connections (more wait in the kernel's backlog) and
//! on connections per peer address (more are closed at once), a deadline for each HTTP request
//! head, and a read deadline once a connection is a WebSocket, so slow or silent peers cannot
//! hold the bank's connections or file descriptors. Under TLS, each connection does its
//! handshake on first use, inside those deadlines (never in the accept loop). The customer's
//! and the console's listeners share one [`Gate`]: the caps count their connections together.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use crate::Output;

/// The listener's limits.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// Open connections in all.
    pub(crate) max_connections: usize,
    /// Open connections from one peer address.
    pub(crate) max_per_address: usize,
    /// Before the WebSocket upgrade: the time from the accept, or from the bank's last write,
    /// within which the peer's next request must be answered. Reads do not extend it, so a
    /// request head sent a byte at a time cannot hold the connection.
    pub(crate) head_timeout: Duration,
    /// After the upgrade: the longest silence from the peer (the session has its own, shorter
    /// timeouts; this one also covers a peer that stopped mid-frame).
    pub(crate) idle: Duration,
    /// Where to print `protocol_error` for a connection that never got an answer before its
    /// head deadline (the BIBIFI bank reports those; the web bank does not).
    pub(crate) report_stalls: Option<Output>,
}

/// Open connections per peer address.
type PerAddress = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// The connection caps and deadlines, shared by every listener of one bank (cloning shares
/// the counts).
#[derive(Clone)]
pub(crate) struct Gate {
    permits: Arc<Semaphore>,
    per_address: PerAddress,
    limits: Limits,
}

impl Gate {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            per_address: PerAddress::default(),
            limits,
        }
    }
}

/// A `TcpListener` with connection caps and deadlines (see the module docs).
pub(crate) struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    per_address: PerAddress,
    limits: Limits,
    tls: Option<TlsAcceptor>,
}

impl LimitedListener {
    pub(crate) fn new(inner: TcpListener, gate: Gate, tls: Option<TlsAcceptor>) -> Self {
        let Gate {
            permits,
            per_address,
            limits,
        } = gate;
        Self {
            inner,
            permits,
            per_address,
            limits,
            tls,
        }
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .expect("the connection semaphore is never closed");
            let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            let Some(slot) = AddressSlot::take(&self.per_address, addr.ip(), &self.limits) else {
                tracing::warn!(peer = %addr.ip(), "too many connections from one address; closing one");
                continue;
            };
            // Lock-step request/answer traffic: without this, Nagle's algorithm holds a small
            // answer back until the peer's delayed ACK (about 40 ms on Linux).
            if let Err(e) = io.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
            let stream = LimitedStream {
                io,
                _permit: permit,
                _slot: slot,
                state: Arc::default(),
                answered: false,
                reported: false,
                head_timeout: self.limits.head_timeout,
                idle: self.limits.idle,
                report_stalls: self.limits.report_stalls.clone(),
                deadline: Box::pin(tokio::time::sleep(self.limits.head_timeout)),
            };
            let state = stream.state.clone();
            let inner = match &self.tls {
                Some(tls) => Inner::Handshaking(Box::new(tls.accept(stream))),
                None => Inner::Plain(stream),
            };
            return (Conn { state, inner }, addr);
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// One connection's place in the per-address count; given back on drop.
struct AddressSlot {
    counts: PerAddress,
    ip: IpAddr,
}

impl AddressSlot {
    fn take(counts: &PerAddress, ip: IpAddr, limits: &Limits) -> Option<Self> {
        let mut map = counts.lock().unwrap_or_else(|p| p.into_inner());
        let open = map.entry(ip).or_default();
        if *open >= limits.max_per_address.max(1) {
            return None;
        }
        *open += 1;
        Some(Self {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = map.get_mut(&self.ip) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// What the routes tell the listener about a connection.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    upgraded: AtomicBool,
}

impl ConnState {
    /// The connection becomes a WebSocket: from now on the idle deadline applies.
    pub(crate) fn mark_upgraded(&self) {
        self.upgraded.store(true, Ordering::Release);
    }

    fn upgraded(&self) -> bool {
        self.upgraded.load(Ordering::Acquire)
    }
}

/// The connection info the routes see (`ConnectInfo<Peer>`).
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    /// Where the connection comes from.
    pub(crate) addr: SocketAddr,
    /// Its shared state with the listener.
    pub(crate) state: Arc<ConnState>,
}

impl Connected<IncomingStream<'_, LimitedListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, LimitedListener>) -> Self {
        Self {
            addr: *stream.remote_addr(),
            state: stream.io().state.clone(),
        }
    }
}

/// An accepted connection; holds its slots until dropped.
pub(crate) struct LimitedStream {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
    _slot: AddressSlot,
    state: Arc<ConnState>,
    /// The bank has written something: the peer's first request got an answer.
    answered: bool,
    /// A stall was reported already.
    reported: bool,
    head_timeout: Duration,
    idle: Duration,
    report_stalls: Option<Output>,
    deadline: Pin<Box<Sleep>>,
}

impl LimitedStream {
    fn expired(&mut self) -> io::Error {
        if !self.state.upgraded() && !self.answered && !self.reported {
            self.reported = true;
            tracing::debug!("a connection sent no complete request in time; closing");
            if let Some(output) = &self.report_stalls {
                output.line("protocol_error");
            }
        }
        io::Error::new(io::ErrorKind::TimedOut, "the peer was too slow")
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if this.state.upgraded() {
                    let next = Instant::now() + this.idle;
                    this.deadline.as_mut().reset(next);
                }
                Poll::Ready(result)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(this.expired())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl LimitedStream {
    /// After the bank wrote: the peer's next request (or, once upgraded, its next frame) has
    /// a fresh deadline.
    fn wrote(&mut self) {
        self.answered = true;
        let window = if self.state.upgraded() {
            self.idle
        } else {
            self.head_timeout
        };
        let next = Instant::now() + window;
        self.deadline.as_mut().reset(next);
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.wrote();
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.wrote();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// An accepted connection as the HTTP server sees it: plain, or TLS once its handshake (done
/// on first use, under the head deadline) is through.
pub(crate) struct Conn {
    state: Arc<ConnState>,
    inner: Inner,
}

enum Inner {
    Plain(LimitedStream),
    Handshaking(Box<tokio_rustls::Accept<LimitedStream>>),
    Tls(Box<tokio_rustls::server::TlsStream<LimitedStream>>),
    Failed,
}

impl Conn {
    /// Drives the TLS handshake; ready once the connection can carry HTTP.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Inner::Handshaking(accept) = &mut self.inner {
            match Pin::new(&mut **accept).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(tls)) => self.inner = Inner::Tls(Box::new(tls)),
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    self.inner = Inner::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn failed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the TLS handshake failed")
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_ready(cx))?;
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
            Inner::Handshaking(_) | Inner::Failed => Poll::Ready(Err(failed())),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_ready(cx))?;
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
            Inner::Handshaking(_) | Inner::Failed => Poll::Ready(Err(failed())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_ready(cx))?;
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Inner::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
            Inner::Handshaking(_) | Inner::Failed => Poll::Ready(Err(failed())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Inner::Plain(s) => s.is_write_vectored(),
            Inner::Tls(s) => s.is_write_vectored(),
            Inner::Handshaking(_) | Inner::Failed => false,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            Inner::Handshaking(_) | Inner::Failed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
            Inner::Handshaking(_) | Inner::Failed => Poll::Ready(Ok(())),
        }
    }
}
