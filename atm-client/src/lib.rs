//! Native async ATM client: a WebSocket to the bank, the protocol handshake, and sealed calls.
//!
//! ```no_run
//! # async fn demo() -> Result<(), atm_client::ClientError> {
//! use atm_client::{load_auth_file, Client};
//! use protocol::Request;
//!
//! let auth = load_auth_file("bank.auth")?;
//! let mut client = Client::connect("127.0.0.1:8765", &auth).await?;
//! let reply = client.call(&Request::Balance {}).await?;
//! # let _ = reply; Ok(()) }
//! ```
//!
//! [`Connection`] is the raw WebSocket (text and binary frames, no protocol), so tests can send
//! anything; [`Client`] is a connection plus an established [`protocol::ClientSession`].
#![forbid(unsafe_code)]

use core::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
pub use protocol::auth_file::AuthFile;
use protocol::{client, ClientSession, Config, Request, Response};
use rand_core::OsRng;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use zeroize::Zeroizing;

/// How long a read waits for the bank before giving up.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a client operation failed.
#[derive(Debug)]
pub enum ClientError {
    /// Connecting, sending or receiving on the WebSocket failed.
    Transport(String),
    /// The bank answered the WebSocket upgrade with this HTTP status instead (503 when its
    /// session limit is reached, 403 for a foreign origin).
    Refused(u16),
    /// The bank closed the connection.
    Closed,
    /// The bank did not answer in time.
    Timeout,
    /// The handshake or a record failed (detail for the local log only).
    Protocol(protocol::Error),
    /// The bank sent a frame that is not a text frame.
    UnexpectedFrame,
    /// The auth file could not be read or parsed.
    AuthFile(String),
    /// The bank refused an enrollment (the handshake passed) with this code.
    EnrollRefused(protocol::ErrorCode),
    /// The bank answered an enrollment with something else than `enrolled`.
    UnexpectedAnswer,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "connection failed: {e}"),
            Self::Refused(status) => write!(f, "the bank refused the connection (HTTP {status})"),
            Self::Closed => f.write_str("the bank closed the connection"),
            Self::Timeout => f.write_str("the bank did not answer in time"),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::UnexpectedFrame => f.write_str("unexpected frame from the bank"),
            Self::AuthFile(e) => write!(f, "auth file: {e}"),
            Self::EnrollRefused(code) => {
                write!(f, "the bank refused the enrollment: {}", code.as_str())
            }
            Self::UnexpectedAnswer => f.write_str("unexpected answer from the bank"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<protocol::Error> for ClientError {
    fn from(e: protocol::Error) -> Self {
        Self::Protocol(e)
    }
}

/// Enrolls a new terminal with a one-time `code` at `ws://{addr}/ws`: the bank proves itself
/// with the code (its identity is pinned from this exchange) and both ends derive the new
/// terminal's key. Returns the credentials, for an auth file. A wrong, used or expired code
/// fails the handshake like a wrong key, and uses the code up.
pub async fn enroll(
    addr: &str,
    code: &protocol::enrollment::EnrollmentCode,
) -> Result<AuthFile, ClientError> {
    use protocol::enrollment::client::{self as enrollment, EnrollFailure};
    let mut conn = Connection::open(addr).await?;
    let (state, hello) = enrollment::start(&Config::default(), code, &mut OsRng, now_ms());
    conn.send_text(hello).await?;
    let server_hello = conn.recv_text().await?;
    let (mut session, finished) = state.read_server_hello(server_hello.as_bytes(), now_ms())?;
    conn.send_text(finished).await?;
    conn.send_text(session.request(&mut OsRng, now_ms())?)
        .await?;
    let answer = conn.recv_text().await?;
    let creds = session
        .finish(answer.as_bytes(), now_ms())
        .map_err(|e| match e {
            EnrollFailure::Protocol(e) => ClientError::Protocol(e),
            EnrollFailure::Refused(code) => ClientError::EnrollRefused(code),
            EnrollFailure::Unexpected => ClientError::UnexpectedAnswer,
        })?;
    let _ = conn.close().await;
    Ok(creds)
}

/// The current Unix time in milliseconds (what the protocol calls take as `now_ms`).
pub fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// Reads and parses an auth file (the format is [`protocol::auth_file`]'s); a file over
/// [`AuthFile::MAX_LEN`] bytes is refused unread.
pub fn load_auth_file(path: impl AsRef<Path>) -> Result<AuthFile, ClientError> {
    use std::io::Read as _;
    let path = path.as_ref();
    let fail = |e: &dyn fmt::Display| ClientError::AuthFile(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let mut text = Zeroizing::new(String::new());
    file.take(AuthFile::MAX_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| fail(&e))?;
    if text.len() as u64 > AuthFile::MAX_LEN {
        return Err(fail(&"larger than an auth file can be"));
    }
    AuthFile::parse(&text).map_err(|e| fail(&e))
}

/// A failed WebSocket upgrade: the bank's HTTP refusal, or a transport failure.
fn upgrade_error(e: tokio_tungstenite::tungstenite::Error) -> ClientError {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            ClientError::Refused(response.status().as_u16())
        }
        other => ClientError::Transport(other.to_string()),
    }
}

/// One frame as the bank sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// The bank closed the connection (close frame or end of stream).
    Closed,
}

/// A raw WebSocket to the bank's `/ws` endpoint. No protocol: send and read anything.
pub struct Connection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    read_timeout: Duration,
    /// The code and reason of the bank's close frame, once one was read.
    close: Option<(u16, String)>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Opens `ws://{addr}/ws` (`addr` like `127.0.0.1:8765`).
    pub async fn open(addr: &str) -> Result<Self, ClientError> {
        Self::open_url(&format!("ws://{addr}/ws")).await
    }

    /// Opens a WebSocket to a full `ws://` URL.
    pub async fn open_url(url: &str) -> Result<Self, ClientError> {
        // Allow sending frames larger than the bank accepts (the hostile tests need that);
        // what we accept is bounded by the protocol's record size.
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(4 * protocol::MAX_RECORD_LEN);
        config.max_frame_size = Some(4 * protocol::MAX_RECORD_LEN);
        // TCP_NODELAY: the ATM writes its Finished and its first request back to back, which
        // Nagle's algorithm would hold until the bank's delayed ACK (about 40 ms).
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
        let (ws, _) = tokio::time::timeout(DEFAULT_READ_TIMEOUT, connect)
            .await
            .map_err(|_| ClientError::Timeout)?
            .map_err(upgrade_error)?;
        Ok(Self {
            ws,
            read_timeout: DEFAULT_READ_TIMEOUT,
            close: None,
        })
    }

    /// Opens `ws://{addr}/ws` sending an `Origin` header, as a browser would.
    pub async fn open_with_origin(addr: &str, origin: &str) -> Result<Self, ClientError> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut request = format!("ws://{addr}/ws")
            .into_client_request()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let origin = origin
            .parse()
            .map_err(|_| ClientError::Transport("invalid origin".into()))?;
        request.headers_mut().insert("origin", origin);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .map_err(upgrade_error)?;
        Ok(Self {
            ws,
            read_timeout: DEFAULT_READ_TIMEOUT,
            close: None,
        })
    }

    /// Changes how long [`Self::recv`] waits.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.read_timeout = timeout;
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        self.send(Message::text(text.into())).await
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: impl Into<Vec<u8>>) -> Result<(), ClientError> {
        self.send(Message::binary(bytes.into())).await
    }

    async fn send(&mut self, message: Message) -> Result<(), ClientError> {
        self.ws
            .send(message)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// Reads the next text, binary or close frame (pings are answered automatically).
    /// A reset connection reads as [`Frame::Closed`].
    pub async fn recv(&mut self) -> Result<Frame, ClientError> {
        loop {
            let next = tokio::time::timeout(self.read_timeout, self.ws.next())
                .await
                .map_err(|_| ClientError::Timeout)?;
            return Ok(match next {
                Some(Ok(Message::Close(frame))) => {
                    self.close = Some(frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.as_str().to_owned())
                    }));
                    Frame::Closed
                }
                None | Some(Err(_)) => Frame::Closed,
                Some(Ok(Message::Text(t))) => Frame::Text(t.as_str().to_owned()),
                Some(Ok(Message::Binary(b))) => Frame::Binary(b.to_vec()),
                Some(Ok(_)) => continue,
            });
        }
    }

    /// The code and reason of the close frame the bank sent, once [`Self::recv`] has read
    /// one (1005, "no status", for a close frame without a code); `None` before that or when
    /// the connection ended without one.
    pub fn close_frame(&self) -> Option<(u16, &str)> {
        self.close
            .as_ref()
            .map(|(code, reason)| (*code, reason.as_str()))
    }

    /// Reads the next frame and requires text.
    pub async fn recv_text(&mut self) -> Result<String, ClientError> {
        match self.recv().await? {
            Frame::Text(t) => Ok(t),
            Frame::Closed => Err(ClientError::Closed),
            Frame::Binary(_) => Err(ClientError::UnexpectedFrame),
        }
    }

    /// Sends a close frame and waits (briefly) for the bank's.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
        Ok(())
    }
}

/// An established secure session with the bank.
pub struct Client {
    conn: Connection,
    session: ClientSession,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `ws://{addr}/ws` and runs the handshake with `creds` (the terminal's id and
    /// key, and the bank's pinned identity, which the bank must prove).
    pub async fn connect(addr: &str, creds: &AuthFile) -> Result<Self, ClientError> {
        Self::handshake(Connection::open(addr).await?, creds).await
    }

    /// Runs the handshake over an open connection.
    pub async fn handshake(mut conn: Connection, creds: &AuthFile) -> Result<Self, ClientError> {
        let config = Config::default();
        let (state, hello) = client::start(
            &config,
            creds.terminal_id.clone(),
            &creds.psk,
            &creds.bank,
            &mut OsRng,
            now_ms(),
        )?;
        conn.send_text(hello).await?;
        let server_hello = conn.recv_text().await?;
        let (session, finished) = state.read_server_hello(server_hello.as_bytes(), now_ms())?;
        conn.send_text(finished).await?;
        Ok(Self { conn, session })
    }

    /// Seals `request`, sends it, and opens the bank's answer.
    pub async fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        let record = self.seal(request)?;
        self.conn.send_text(record).await?;
        let reply = self.conn.recv_text().await?;
        self.open(&reply)
    }

    /// Seals a request into a record without sending it (for tests that alter records).
    pub fn seal(&mut self, request: &Request) -> Result<String, ClientError> {
        Ok(self.session.seal(request, &mut OsRng, now_ms())?)
    }

    /// Seals a request stamped with a chosen time (tests use this for stale records).
    pub fn seal_at(&mut self, request: &Request, now_ms: u64) -> Result<String, ClientError> {
        Ok(self.session.seal(request, &mut OsRng, now_ms)?)
    }

    /// Opens a record from the bank.
    pub fn open(&mut self, record: &str) -> Result<Response, ClientError> {
        Ok(self.session.open(record.as_bytes(), now_ms())?)
    }

    /// This session's channel binding (PROTOCOL.md §17): what a signed card signs to log in.
    pub fn channel_binding(&self) -> &protocol::ChannelBinding {
        self.session.channel_binding()
    }

    /// The raw connection underneath, for sending and reading frames directly.
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Closes the WebSocket.
    pub async fn close(self) -> Result<(), ClientError> {
        self.conn.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Psk, TerminalId};

    #[test]
    fn auth_files_are_loaded_and_oversized_ones_refused_unread() {
        let auth = AuthFile {
            terminal_id: TerminalId::new("t-0123456789ab").unwrap(),
            psk: Psk::from_bytes([7; 32]),
            bank: protocol::BankKey::from_secret(protocol::BankId::new("b1").unwrap(), [5; 32])
                .pin(),
        };
        let text = auth.to_text();
        // A file over the size cap is refused without being parsed, however valid its start.
        let dir = std::env::temp_dir().join(format!("atm-client-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.auth");
        let padded = format!("{}{}", text.as_str(), " ".repeat(5000));
        std::fs::write(&big, padded).unwrap();
        assert!(load_auth_file(&big).is_err());
        let ok = dir.join("ok.auth");
        std::fs::write(&ok, text.as_str()).unwrap();
        let back = load_auth_file(&ok).unwrap();
        assert_eq!(back.terminal_id, auth.terminal_id);
        assert!(back.psk == auth.psk);
        let bad = dir.join("bad.auth");
        std::fs::write(&bad, "{}").unwrap();
        assert!(matches!(
            load_auth_file(&bad),
            Err(ClientError::AuthFile(_))
        ));
        assert!(load_auth_file(dir.join("missing.auth")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
