//! One WebSocket session: the handshake under a deadline, then records in and out until logout,
//! idle timeout, shutdown or the first protocol failure (which closes the connection). A
//! terminal of a kind its listener does not serve is closed right after the handshake.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use protocol::enrollment::server::EnrollingBank;
use protocol::server::{self, Hello};
use protocol::{BankSession, Response, TerminalRole};
use rand_core::OsRng;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument as _;

use crate::enroll;
use crate::ledger::PendingEnrollment;
use crate::metrics::{metrics, Handshake};
use crate::rules::{self, After, SessionCtx};
use crate::site::Site;
use crate::{now_ms, Shared};

/// How a session's reading ended, when it did not end normally.
pub(crate) enum Fault {
    /// The peer broke the protocol (detail for the log only).
    Protocol(String),
    /// The peer went away or the transport failed: nothing to report.
    Gone,
    /// The storage failed (reported as a storage fault, not as the peer's error).
    Storage,
}

/// Reads the next text frame; binary frames break the protocol.
async fn next_text(socket: &mut WebSocket) -> Result<String, Fault> {
    loop {
        match socket.recv().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Binary(_))) => return Err(Fault::Protocol("binary frame".into())),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => return Err(Fault::Gone),
            Some(Err(e)) => return Err(transport_fault(&e)),
        }
    }
}

/// Sorts a transport error by its type: the peer leaving (an I/O error anywhere in the
/// `source()` chain, a closed connection, or a TCP connection dropped without the closing
/// handshake) is [`Fault::Gone`]; anything else the transport refuses (oversized frames and
/// messages, before they are buffered; malformed WebSocket framing; invalid UTF-8) is the peer
/// breaking the protocol.
///
/// axum's `Error` carries tungstenite's as its source; tungstenite is named here through the
/// `tokio-tungstenite` this crate depends on, of the same version as axum's. Should the two
/// ever differ, the downcast finds nothing and only the I/O errors in the chain still count
/// as leaving (the `hostile` tests of peers leaving would then fail).
fn transport_fault(e: &axum::Error) -> Fault {
    use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = next {
        if cause.is::<std::io::Error>() {
            return Fault::Gone;
        }
        if let Some(ws) = cause.downcast_ref::<WsError>() {
            if matches!(
                ws,
                WsError::Io(_)
                    | WsError::ConnectionClosed
                    | WsError::AlreadyClosed
                    | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
            ) {
                return Fault::Gone;
            }
        }
        next = cause.source();
    }
    Fault::Protocol(format!("transport: {e}"))
}

/// What a handshake opened.
enum Opened {
    /// A terminal's session, its role, and the revocation count read before its terminal was
    /// looked up.
    Session(BankSession, TerminalRole, u64),
    /// An enrollment with a code that was good (and is now used up).
    Enrollment(EnrollingBank, PendingEnrollment),
}

async fn handshake(
    shared: &Arc<Shared>,
    socket: &mut WebSocket,
    conn: u64,
) -> Result<Opened, Fault> {
    let protocol_fault = |e: protocol::Error| Fault::Protocol(e.detail());
    let hello = next_text(socket).await?;
    // Read before the terminal is looked up: a revocation after this point changes it.
    let revocations = shared.ledger.revocations();
    let hello = match server::read_hello(
        &shared.config.protocol,
        &shared.bank_key,
        hello.as_bytes(),
        now_ms(),
    )
    .map_err(protocol_fault)?
    {
        Hello::Terminal(hello) => hello,
        Hello::Enrollment(hello) => {
            // The code is used up (and synced) before the bank answers: one guess per code.
            let taken = enroll::take_code(shared, hello.code_id(), conn).await;
            let (psk, pending) = taken.unzip();
            let (state, reply) = hello
                .respond(psk.as_ref(), &shared.bank_key, &mut OsRng, now_ms())
                .map_err(protocol_fault)?;
            let finished = reply_and_read(shared, socket, reply).await?;
            let session = state
                .read_client_finished(finished.as_bytes())
                .map_err(protocol_fault)?;
            let pending =
                pending.ok_or_else(|| Fault::Protocol("enrollment without a code".into()))?;
            return Ok(Opened::Enrollment(session, pending));
        }
    };
    let (state, reply, role) = respond_terminal(shared, hello, now_ms()).await?;
    let finished = reply_and_read(shared, socket, reply).await?;
    let session = state
        .read_client_finished(finished.as_bytes())
        .map_err(protocol_fault)?;
    Ok(Opened::Session(session, role, revocations))
}

/// Sends the bank's server hello and reads the terminal's `client_finished`.
async fn reply_and_read(
    shared: &Shared,
    socket: &mut WebSocket,
    reply: String,
) -> Result<String, Fault> {
    send(shared, socket, Message::text(reply))
        .await
        .map_err(|()| Fault::Gone)?;
    next_text(socket).await
}

/// Answers a terminal's hello at `now` (Unix ms): looks its terminal up and proves the bank's
/// key; unknown and revoked terminals go through the same steps as a wrong key. Returns the
/// state awaiting the terminal's `client_finished`, the reply and the terminal's role.
pub(crate) async fn respond_terminal(
    shared: &Arc<Shared>,
    hello: server::ClientHelloReceived,
    now: u64,
) -> Result<(server::AwaitClientFinished, String, TerminalRole), Fault> {
    let id = hello.terminal_id().clone();
    let terminal = rules::ledger(shared, move |l| l.terminal(&id))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "terminal lookup failed");
            Fault::Storage
        })?;
    let terminal = terminal.filter(|t| !t.revoked);
    let role = terminal.as_ref().map(|t| t.role).unwrap_or_default();
    let psk = terminal.map(|t| t.psk);
    let (state, reply) = hello
        .respond(psk.as_ref(), &shared.bank_key, &mut OsRng, now)
        .map_err(|e| Fault::Protocol(e.detail()))?;
    Ok((state, reply, role))
}

/// Sends a frame within the configured time; `Err` when the peer is gone or not reading.
async fn send(shared: &Shared, socket: &mut WebSocket, message: Message) -> Result<(), ()> {
    match tokio::time::timeout(shared.config.send_timeout, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(()),
        Err(_) => {
            tracing::info!("peer is not reading; closing");
            Err(())
        }
    }
}

/// Closes the WebSocket with `code` and an empty reason (§2: the reason never says what
/// failed).
async fn close(shared: &Shared, socket: &mut WebSocket, code: u16) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::default(),
    };
    let _ = send(shared, socket, Message::Close(Some(frame))).await;
}

/// Reports a protocol failure: `protocol_error` on stdout, the detail in the log and audit.
pub(crate) async fn protocol_error(
    shared: &Arc<Shared>,
    ctx: Option<&SessionCtx>,
    conn: u64,
    detail: String,
) {
    tracing::warn!(%detail, "protocol error; closing");
    shared.config.output.line("protocol_error");
    let mut event = match ctx {
        Some(ctx) => ctx.event("protocol_error"),
        None => {
            let mut event = crate::audit::AuditEvent::new("protocol_error", now_ms());
            event.conn = Some(conn);
            event
        }
    };
    event.detail = Some(detail);
    if rules::ledger(shared, move |l| l.audit(&event))
        .await
        .is_err()
    {
        tracing::error!("could not audit a protocol error");
    }
}

/// `true` while the session's terminal is known and not revoked (checked before each request
/// after a revocation, besides the revoker ending the revoked terminal's sessions at once).
async fn terminal_active(shared: &Arc<Shared>, ctx: &SessionCtx) -> bool {
    let id = ctx.terminal.clone();
    matches!(
        rules::ledger(shared, move |l| l.terminal(&id)).await,
        Ok(Some(terminal)) if !terminal.revoked
    )
}

/// Whether a terminal of `role` may hold a session on `site`'s listener. The bank knows a
/// terminal's kind once the handshake has looked it up (the role is never sent): a console
/// terminal on the customer's listener, or an ATM on the console's, gets the generic
/// failure close, the detail going to the log and the audit (`wrong_listener`).
async fn admitted(
    shared: &Arc<Shared>,
    site: Site,
    role: TerminalRole,
    terminal: &str,
    conn: u64,
) -> bool {
    if site.admits(role) {
        return true;
    }
    let detail = format!("a {role:?} terminal on the {site:?} listener");
    tracing::warn!(terminal, %detail, "terminal of the other kind; closing");
    let mut event = crate::audit::AuditEvent::new("wrong_listener", now_ms());
    event.terminal = Some(terminal.to_owned());
    event.conn = Some(conn);
    event.detail = Some(detail);
    if rules::ledger(shared, move |l| l.audit(&event))
        .await
        .is_err()
    {
        tracing::error!("could not audit a terminal on the wrong listener");
    }
    false
}

/// A terminal's session past its handshake: its keys, who is logged in, and what the bank had
/// seen of revocations and credential changes at its last request.
pub(crate) struct Established {
    pub(crate) session: BankSession,
    pub(crate) ctx: SessionCtx,
    revocations: u64,
    credential_changes: u64,
}

impl Established {
    /// A session of terminal role `role` whose handshake read the revocation count
    /// `revocations` before looking its terminal up.
    pub(crate) fn new(
        shared: &Shared,
        session: BankSession,
        conn: u64,
        role: TerminalRole,
        revocations: u64,
    ) -> Self {
        let credential_changes = shared.ledger.credential_changes();
        let ctx = SessionCtx::new(
            conn,
            session.terminal_id().clone(),
            role,
            session.channel_binding().clone(),
        );
        Self {
            session,
            ctx,
            revocations,
            credential_changes,
        }
    }
}

/// What the bank does with one record of an established session.
pub(crate) enum Answer {
    /// Sends this sealed response, then goes on or closes.
    Reply(String, After),
    /// Closes the session with this code, answering nothing.
    Close(u16),
}

/// Opens one record at `now` (Unix ms), checks that the session's terminal and login still
/// stand, and answers the request by the rules; a record that fails to open is a protocol
/// error (reported and audited).
pub(crate) async fn answer(
    shared: &Arc<Shared>,
    open: &mut Established,
    record: &str,
    now: u64,
) -> Answer {
    let ctx = &mut open.ctx;
    let request = match open.session.open(record.as_bytes(), now) {
        Ok(request) => request,
        Err(e) => {
            protocol_error(shared, Some(ctx), ctx.conn, e.detail()).await;
            return Answer::Close(protocol::close::FAILURE);
        }
    };
    tracing::debug!(?request, "request");
    // Storage is read only when some terminal was revoked since the last look.
    let now_revoked = shared.ledger.revocations();
    if now_revoked != open.revocations && !terminal_active(shared, ctx).await {
        tracing::info!(terminal = %ctx.terminal, "terminal revoked; closing session");
        return Answer::Close(protocol::close::FAILURE);
    }
    open.revocations = now_revoked;
    // Likewise, logins are re-checked only when some credential was replaced.
    let now_changed = shared.ledger.credential_changes();
    if now_changed != open.credential_changes && !rules::login_stands(shared, ctx).await {
        tracing::info!(
            user = ctx.username(),
            "the credential this session logged in with was replaced; closing session"
        );
        return Answer::Close(protocol::close::FAILURE);
    }
    open.credential_changes = now_changed;
    let kind = request.kind();
    let started = Instant::now();
    let (response, after) = rules::handle(shared, ctx, request).await;
    let outcome = match &response {
        Response::Error { code } => code.as_str(),
        _ => "ok",
    };
    metrics().request(kind, outcome, started.elapsed());
    tracing::debug!(?response, "response");
    match open.session.seal(&response, &mut OsRng, now) {
        Ok(sealed) => Answer::Reply(sealed, after),
        Err(e) => {
            tracing::error!(error = %e.detail(), "could not seal a response");
            Answer::Close(protocol::close::FAILURE)
        }
    }
}

/// Runs one session to its end on `site`'s listener. Holds `permit` (the session limit)
/// until then.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut socket: WebSocket,
    conn: u64,
    permit: OwnedSemaphorePermit,
    site: Site,
) {
    let span = tracing::info_span!("session", conn);
    // The handshake, an enrollment and each answer are boxed: a future is as large as its
    // largest state, and this one lives as long as the session, so inline they would make
    // every idle session carry the room their deepest await needs (about 3 KB each).
    async move {
        let _permit = permit;
        tracing::debug!("connected");
        let cancel = shared.shutdown.clone();
        let handshake = tokio::select! {
            () = cancel.cancelled() => None,
            result = tokio::time::timeout(shared.config.handshake_timeout, Box::pin(handshake(&shared, &mut socket, conn))) => Some(result),
        };
        metrics().handshake(match &handshake {
            None => Handshake::Abandoned,
            Some(Ok(Ok(_))) => Handshake::Ok,
            Some(Ok(Err(Fault::Gone))) => Handshake::Abandoned,
            Some(Ok(Err(Fault::Storage | Fault::Protocol(_))) | Err(_)) => Handshake::Refused,
        });
        let (session, role, revocations) = match handshake {
            None => {
                close(&shared, &mut socket, protocol::close::GOING_AWAY).await;
                return;
            }
            Some(Ok(Ok(Opened::Session(session, role, revocations)))) => {
                (session, role, revocations)
            }
            Some(Ok(Ok(Opened::Enrollment(session, pending)))) => {
                let code = if admitted(&shared, site, pending.role, pending.code.as_str(), conn).await {
                    Box::pin(enrollment(&shared, &mut socket, conn, session, &pending)).await
                } else {
                    protocol::close::FAILURE
                };
                close(&shared, &mut socket, code).await;
                return;
            }
            Some(Ok(Err(Fault::Gone))) => {
                tracing::debug!("left during the handshake");
                return;
            }
            Some(Ok(Err(Fault::Storage))) => {
                close(&shared, &mut socket, protocol::close::FAILURE).await;
                return;
            }
            Some(Ok(Err(Fault::Protocol(detail)))) => {
                protocol_error(&shared, None, conn, detail).await;
                close(&shared, &mut socket, protocol::close::FAILURE).await;
                return;
            }
            Some(Err(_)) => {
                protocol_error(&shared, None, conn, "handshake timeout".into()).await;
                close(&shared, &mut socket, protocol::close::FAILURE).await;
                return;
            }
        };
        if !admitted(&shared, site, role, session.terminal_id().as_str(), conn).await {
            close(&shared, &mut socket, protocol::close::FAILURE).await;
            return;
        }
        let mut open = Established::new(&shared, session, conn, role, revocations);
        let listed = shared
            .live
            .open(conn, open.ctx.terminal.clone(), role, now_ms());
        tracing::debug!(terminal = %open.ctx.terminal, ?role, "handshake complete");
        // A revocation between the handshake's look-up and the listing above was not seen by
        // the revoker (it looked at the sessions listed then): look now.
        if shared.ledger.revocations() != revocations && !terminal_active(&shared, &open.ctx).await {
            tracing::info!(terminal = %open.ctx.terminal, "terminal revoked; closing session");
            close(&shared, &mut socket, protocol::close::FAILURE).await;
            return;
        }
        let ended = listed.ended().clone();
        // How the session ends, unless the peer left first.
        let code = loop {
            let next = tokio::select! {
                () = cancel.cancelled() => {
                    tracing::debug!("bank shutting down; closing session");
                    break protocol::close::GOING_AWAY;
                }
                () = ended.cancelled() => {
                    tracing::info!(terminal = %open.ctx.terminal, "terminal revoked; closing session");
                    break protocol::close::FAILURE;
                }
                next = tokio::time::timeout(shared.config.idle_timeout, next_text(&mut socket)) => next,
            };
            let record = match next {
                Err(_) => {
                    tracing::debug!("idle timeout; closing session");
                    break protocol::close::NORMAL;
                }
                Ok(Err(Fault::Gone)) => {
                    tracing::debug!(user = open.ctx.username(), "peer left");
                    return;
                }
                Ok(Err(Fault::Protocol(detail))) => {
                    protocol_error(&shared, Some(&open.ctx), conn, detail).await;
                    break protocol::close::FAILURE;
                }
                Ok(Err(Fault::Storage)) => break protocol::close::FAILURE,
                Ok(Ok(record)) => record,
            };
            match Box::pin(answer(&shared, &mut open, &record, now_ms())).await {
                Answer::Reply(sealed, after) => {
                    if send(&shared, &mut socket, Message::text(sealed)).await.is_err() {
                        tracing::debug!("peer left before the answer");
                        return;
                    }
                    if after == After::Close {
                        tracing::debug!("logged out");
                        break protocol::close::NORMAL;
                    }
                }
                Answer::Close(code) => break code,
            }
        };
        close(&shared, &mut socket, code).await;
    }
    .instrument(span)
    .await;
}

/// Runs an enrollment session: its one `enroll` request (within the handshake's deadline)
/// creates the terminal, answered with its id. Returns the close code.
async fn enrollment(
    shared: &Arc<Shared>,
    socket: &mut WebSocket,
    conn: u64,
    mut session: EnrollingBank,
    pending: &PendingEnrollment,
) -> u16 {
    let record =
        match tokio::time::timeout(shared.config.handshake_timeout, next_text(socket)).await {
            Ok(Ok(record)) => record,
            Ok(Err(Fault::Gone)) => {
                tracing::info!(code = %pending.code, "left before enrolling; the code is used up");
                return protocol::close::NORMAL;
            }
            Ok(Err(Fault::Protocol(detail))) => {
                protocol_error(shared, None, conn, detail).await;
                return protocol::close::FAILURE;
            }
            Ok(Err(Fault::Storage)) => return protocol::close::FAILURE,
            Err(_) => {
                protocol_error(shared, None, conn, "enrollment timeout".into()).await;
                return protocol::close::FAILURE;
            }
        };
    let response = match session.open_request(record.as_bytes(), now_ms()) {
        Ok(true) => match enroll::enroll(shared, pending, &session).await {
            Ok(terminal) => {
                tracing::info!(%terminal, code = %pending.code, "terminal enrolled");
                Response::Enrolled { terminal }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not store an enrolled terminal");
                Response::Error {
                    code: protocol::ErrorCode::Internal,
                }
            }
        },
        Ok(false) => Response::Error {
            code: protocol::ErrorCode::NotAllowed,
        },
        Err(e) => {
            protocol_error(shared, None, conn, e.detail()).await;
            return protocol::close::FAILURE;
        }
    };
    match session.seal(&response, &mut OsRng, now_ms()) {
        Ok(sealed) => {
            let _ = send(shared, socket, Message::text(sealed)).await;
            protocol::close::NORMAL
        }
        Err(e) => {
            tracing::error!(error = %e.detail(), "could not seal an enrollment answer");
            protocol::close::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};

    use super::{transport_fault, Fault};

    fn gone(e: impl Into<axum::BoxError>) -> bool {
        matches!(transport_fault(&axum::Error::new(e)), Fault::Gone)
    }

    #[test]
    fn a_peer_leaving_is_told_from_a_peer_breaking_the_protocol() {
        let reset = || std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(gone(reset()));
        assert!(gone(WsError::Io(reset())));
        assert!(gone(WsError::ConnectionClosed));
        assert!(gone(WsError::AlreadyClosed));
        assert!(gone(WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake
        )));
        assert!(!gone(WsError::Capacity(CapacityError::MessageTooLong {
            size: 2,
            max_size: 1
        })));
        assert!(!gone(WsError::Protocol(
            ProtocolError::UnmaskedFrameFromClient
        )));
        assert!(!gone(WsError::Utf8("invalid".into())));
    }
}
