//! The bank's request rules: one request from an authenticated session in, one response out,
//! routed by the terminal's role to the ATM's rules or the console's.
//!
//! Dependencies point one way: this entry point uses [`atm`] and [`console`]; both use
//! [`credentials`], [`login`] and [`ctx`]; [`credentials`] uses [`login`] and [`ctx`];
//! [`login`] uses [`ctx`].

mod atm;
mod console;
mod credentials;
mod ctx;
mod login;

use std::sync::Arc;

use protocol::{ErrorCode, Request, Response, TerminalRole};

use crate::Shared;

pub(crate) use credentials::login_stands;
pub(crate) use ctx::{flushed, ledger, After, SessionCtx};

/// Answers one request.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    request: Request,
) -> (Response, After) {
    // Only these can change who is logged in (logout ends the session, and its listing).
    let logs_in = matches!(
        request,
        Request::Register { .. }
            | Request::Login { .. }
            | Request::CardLogin { .. }
            | Request::CardLoginSigned { .. }
            | Request::OpenCardAccount { .. }
            | Request::OpenSignedCardAccount { .. }
            | Request::OperatorLogin { .. }
    );
    let answer = route(shared, ctx, request).await;
    if logs_in {
        shared.live.set_user(ctx.conn, ctx.username());
    }
    answer
}

/// An ATM's requests go to [`atm`], a console's to [`console`]; each terminal may make only
/// its own kind (`not_allowed`), and `logout` is for both.
async fn route(shared: &Arc<Shared>, ctx: &mut SessionCtx, request: Request) -> (Response, After) {
    let console = ctx.role == TerminalRole::Console;
    if !request.is_for_both() && request.is_console() != console {
        tracing::info!(request = request.kind(), role = ?ctx.role, "request not allowed from this terminal");
        return (ctx::refuse(ErrorCode::NotAllowed), After::Continue);
    }
    if matches!(request, Request::Logout {}) {
        logout(shared, ctx).await;
        return (Response::LoggedOut {}, After::Close);
    }
    let response = if console {
        console::handle(shared, ctx, request).await
    } else {
        atm::handle(shared, ctx, request).await
    };
    (response, After::Continue)
}

/// Ends whoever is logged in (a user or an operator), audited; the session closes after the
/// answer either way.
async fn logout(shared: &Arc<Shared>, ctx: &mut SessionCtx) {
    if ctx.user.is_some() || ctx.operator.is_some() {
        let event = ctx.event(if ctx.operator.is_some() {
            "operator_logout"
        } else {
            "logout"
        });
        if let Err(e) = ledger(shared, move |l| l.audit(&event)).await {
            tracing::error!(error = %e, "audit failed");
        }
        ctx.user = None;
        ctx.operator = None;
        ctx.fingerprint = None;
    }
}
