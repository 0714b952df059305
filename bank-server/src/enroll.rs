//! What the bank decides in an enrollment session: the one-time code is taken (consumed,
//! audited and synced) before the bank answers its hello, and the new terminal is created with
//! the key the session derived.

use std::sync::Arc;

use protocol::enrollment::server::EnrollingBank;
use protocol::{Psk, TerminalId};

use crate::audit::AuditEvent;
use crate::ledger::{PendingEnrollment, TerminalRecord};
use crate::rules;
use crate::terminals::new_terminal_with_role;
use crate::{now_ms, Shared};

/// Takes the code `code` (whatever follows, it enrolls nothing after this) and returns its
/// handshake key and what it was issued for, or `None` when there is no such code, it was
/// used, or it expired (the caller then answers with a throw-away key, like a wrong code).
pub(crate) async fn take_code(
    shared: &Arc<Shared>,
    code: &TerminalId,
    conn: u64,
) -> Option<(Psk, PendingEnrollment)> {
    let mut event = AuditEvent::new("enrollment_code_used", now_ms());
    event.terminal = Some(code.to_string());
    event.conn = Some(conn);
    let id = code.clone();
    let taken = rules::ledger(shared, move |l| l.take_enrollment(&id, &event)).await;
    // One guess per code: the code is gone on disk (the group flush every write waits for)
    // before the bank answers.
    let taken = match taken {
        Ok(Some(pending)) => rules::flushed(shared).await.map(|()| Some(pending)),
        other => other,
    };
    let pending = match taken {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            tracing::info!(%code, "enrollment with an unknown or used code");
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "could not take an enrollment code");
            return None;
        }
    };
    if now_ms() > pending.expires_ms {
        tracing::info!(%code, "enrollment with an expired code");
        let mut event = AuditEvent::new("enrollment_code_expired", now_ms());
        event.terminal = Some(code.to_string());
        event.conn = Some(conn);
        if rules::ledger(shared, move |l| l.audit(&event))
            .await
            .is_err()
        {
            tracing::error!("could not audit an expired enrollment code");
        }
        return None;
    }
    Some((pending.key.clone(), pending))
}

/// Creates the terminal `pending` was issued for, with the key `session` derived for it;
/// audited (with the code it came from) and synced. Returns its id.
pub(crate) async fn enroll(
    shared: &Arc<Shared>,
    pending: &PendingEnrollment,
    session: &EnrollingBank,
) -> Result<TerminalId, crate::ledger::LedgerError> {
    let mut terminal = TerminalRecord {
        ceilings: pending.ceilings,
        ..new_terminal_with_role(&pending.name, now_ms(), pending.role)
    };
    terminal.psk = session.terminal_key(&terminal.id);
    let id = terminal.id.clone();
    let mut event = AuditEvent::new("terminal_enrolled", now_ms());
    event.terminal = Some(id.to_string());
    event.detail = Some(format!("with code {}", pending.code));
    rules::ledger(shared, move |l| l.add_terminal(&terminal, &event)).await?;
    rules::flushed(shared).await?;
    Ok(id)
}
