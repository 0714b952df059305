//! The bank console's requests on a console terminal's session: operator login, the views
//! (totals, chart, live sessions, audit chain and entries, terminals) and terminal
//! enrollment and revocation, each operator action audited.

use std::sync::Arc;

use protocol::console::{
    clip, AuditLine, ChainStatus, NewTerminalKey, Overview, TerminalInfo, TotalCents,
    CHART_MINUTES, MAX_AUDIT_LINES, MAX_LISTED_SESSIONS, MAX_LISTED_TERMINALS,
};
use protocol::{
    Cents, ErrorCode, Password, Request, Response, TerminalId, TerminalName, Username,
    MAX_PLAINTEXT_LEN,
};

use crate::audit::AuditEvent;
use crate::ledger::{DepositCeilings, LedgerError, NodeSessions};
use crate::terminals::new_terminal;
use crate::{now_ms, Shared};

use super::credentials;
use super::ctx::{durable, hash_refusal, ledger, refusal, refuse, Fingerprint, SessionCtx};
use super::login::{begin_login, login_failed, login_succeeded, operator_key};

const DAY_MS: u64 = 86_400_000;
/// How long one audit-chain link check serves every console's overview.
const CHAIN_CHECK_MS: u64 = 10_000;

/// Answers a console request (the caller has checked that the terminal is a console).
pub(super) async fn handle(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    request: Request,
) -> Response {
    if let Request::OperatorLogin { username, password } = request {
        return login(shared, ctx, username, password).await;
    }
    let Some(operator) = ctx.operator.clone() else {
        return refuse(ErrorCode::NotAllowed);
    };
    let response = match request {
        Request::ConsoleOverview {} => overview(shared).await,
        Request::ConsoleAudit {} => audit_entries(shared).await,
        Request::ConsoleTerminals {} => terminals(shared).await,
        Request::AddTerminal {
            name,
            max_deposit_cents,
            max_deposit_per_day_cents,
        } => {
            let asked = (max_deposit_cents, max_deposit_per_day_cents);
            add_terminal(shared, ctx, &operator, name, asked).await
        }
        Request::RevokeTerminal { terminal } => revoke(shared, ctx, &operator, terminal).await,
        Request::ChangePassword { old, new } => {
            credentials::change_operator_password(shared, ctx, old, new).await
        }
        _ => refuse(ErrorCode::NotAllowed),
    };
    fit(response)
}

async fn login(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    username: Username,
    password: Password,
) -> Response {
    if ctx.operator.is_some() {
        return refuse(ErrorCode::AlreadyLoggedIn);
    }
    let name = username.clone();
    let (ticket, operator) = match begin_login(shared, ctx, operator_key(&username), move |l| {
        l.operator(&name)
    })
    .await
    {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    // An unknown operator (a customer's name, say) costs the same as a wrong password.
    let stored = operator.as_ref().map(|o| o.password_hash.clone());
    let stored_hash = stored.clone();
    let ok = match shared.passwords.verify(password, stored).await {
        Ok(ok) => ok,
        Err(e) => return hash_refusal(e),
    };
    if !ok {
        let mut event = ctx.event("operator_login_failed");
        event.user = Some(username.to_string());
        event.detail = Some("operator".into());
        tracing::info!(operator = %username, "operator login failed");
        return login_failed(shared, ctx, ticket, event).await;
    }
    ctx.operator = Some(username.clone());
    ctx.fingerprint = stored_hash.as_deref().map(Fingerprint::of_operator);
    let event = ctx.event("operator_login");
    let recorded = login_succeeded(shared, ticket, move |l| l.audit(&event)).await;
    if let Err(e) = recorded {
        ctx.operator = None;
        return refusal(&e);
    }
    if let Err(reply) = durable(shared).await {
        ctx.operator = None;
        return reply;
    }
    tracing::info!(operator = %username, "operator logged in");
    Response::OperatorWelcome { username }
}

async fn overview(shared: &Arc<Shared>) -> Response {
    let now = now_ms();
    let day_start = now - now % DAY_MS;
    // The link check hashes the whole log: one check serves every console for
    // CHAIN_CHECK_MS.
    let cached = shared
        .chain_status
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .filter(|(at, _)| now.saturating_sub(*at) < CHAIN_CHECK_MS)
        .map(|(_, chain)| chain);
    let fresh = cached.is_none();
    let node = shared.config.node_name.clone();
    let checked = ledger(shared, move |l| {
        let totals = l.totals(now, day_start, CHART_MINUTES)?;
        let chain = match cached {
            Some(chain) => chain,
            None => chain_status(l.check_audit_links()?),
        };
        Ok((totals, chain, l.other_sessions(&node)?))
    })
    .await;
    let (totals, chain, others) = match checked {
        Ok(found) => found,
        Err(e) => return refusal(&e),
    };
    if fresh {
        if let Ok(mut cache) = shared.chain_status.lock() {
            *cache = Some((now, chain.clone()));
        }
    }
    let (total, sessions) = shared.live.snapshot(MAX_LISTED_SESSIONS);
    let (sessions_total, sessions) =
        crate::presence::merge(NodeSessions { total, sessions }, others);
    let checkpoint = shared.checkpoints.latest();
    Response::Overview(Box::new(Overview {
        checkpoint_entries: Some(checkpoint.next_seq),
        checkpoint_ms: Some(checkpoint.time_ms),
        now_ms: now,
        accounts: totals.accounts,
        deposits_cents: TotalCents(totals.deposits_cents),
        transactions_today: totals.transactions_today,
        per_minute: totals.per_minute,
        sessions_total,
        sessions,
        chain,
    }))
}

/// The wire form of a link check's outcome (a broken chain is also logged).
fn chain_status(checked: Result<u64, crate::audit::VerifyError>) -> ChainStatus {
    match checked {
        Ok(entries) => ChainStatus::Linked { entries },
        Err(e) => {
            tracing::error!(entry = e.entry, problem = e.problem, "audit chain broken");
            ChainStatus::Broken {
                entry: e.entry,
                problem: e.problem.to_owned(),
            }
        }
    }
}

fn line(seq: u64, event: &AuditEvent) -> AuditLine {
    let text = |t: &Option<String>| t.as_deref().map(clip);
    AuditLine {
        seq,
        time_ms: event.time_ms,
        action: clip(&event.action),
        user: text(&event.user),
        account: text(&event.account),
        amount_cents: event.amount_cents.map(Cents),
        terminal: text(&event.terminal),
        detail: text(&event.detail),
    }
}

async fn audit_entries(shared: &Arc<Shared>) -> Response {
    match ledger(shared, |l| l.recent_audit(MAX_AUDIT_LINES)).await {
        Ok(recent) => Response::AuditEntries {
            total: recent.total,
            entries: recent
                .entries
                .iter()
                .map(|(seq, e)| line(*seq, e))
                .collect(),
        },
        Err(e) => refusal(&e),
    }
}

async fn terminals(shared: &Arc<Shared>) -> Response {
    let now = shared.config.clock.now_ms();
    let listed = ledger(shared, move |l| {
        let mut list = l.terminals()?;
        let total = list.len() as u64;
        list.sort_by(|a, b| (b.created_ms, &b.id).cmp(&(a.created_ms, &a.id)));
        list.truncate(MAX_LISTED_TERMINALS);
        let terminals = list
            .into_iter()
            .map(|t| {
                let today = match t.ceilings.per_day {
                    Some(_) => Some(l.deposited_today(&t.id, now)?),
                    None => None,
                };
                Ok(TerminalInfo {
                    id: t.id,
                    name: clip(&t.name),
                    role: t.role,
                    revoked: t.revoked,
                    created_ms: t.created_ms,
                    max_deposit_cents: t.ceilings.per_deposit,
                    max_deposit_per_day_cents: t.ceilings.per_day,
                    deposited_today_cents: today,
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        Ok((total, terminals))
    })
    .await;
    match listed {
        Ok((total, terminals)) => Response::Terminals { total, terminals },
        Err(e) => refusal(&e),
    }
}

fn operator_event(
    ctx: &SessionCtx,
    action: &str,
    operator: &Username,
    terminal: &TerminalId,
) -> AuditEvent {
    let mut event = ctx.event(action);
    event.user = Some(operator.to_string());
    event.terminal = Some(terminal.to_string());
    event.detail = Some(format!("by operator, from {}", ctx.terminal));
    event
}

/// Enrolls an ATM under the ceilings asked for (per deposit, per day; each above zero, an
/// absent one the default: a console cannot enroll a terminal without ceilings).
async fn add_terminal(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    operator: &Username,
    name: TerminalName,
    (per_deposit, per_day): (Option<Cents>, Option<Cents>),
) -> Response {
    if per_deposit == Some(Cents::ZERO) || per_day == Some(Cents::ZERO) {
        return refuse(ErrorCode::BadRequest);
    }
    let ceilings = DepositCeilings {
        per_deposit: per_deposit.or(DepositCeilings::DEFAULT.per_deposit),
        per_day: per_day.or(DepositCeilings::DEFAULT.per_day),
    };
    let terminal = new_terminal(name.as_str(), now_ms(), ceilings);
    let mut event = operator_event(ctx, "terminal_added", operator, &terminal.id);
    if let Some(detail) = &mut event.detail {
        detail.push_str(&format!("; {ceilings}"));
    }
    let stored = terminal.clone();
    if let Err(e) = ledger(shared, move |l| l.add_terminal(&stored, &event)).await {
        return refusal(&e);
    }
    if let Err(reply) = durable(shared).await {
        return reply;
    }
    tracing::info!(%operator, terminal = %terminal.id, %ceilings, "terminal added from the console");
    Response::TerminalAdded {
        terminal: terminal.id.clone(),
        name,
        key: NewTerminalKey(terminal.psk),
    }
}

async fn revoke(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    operator: &Username,
    terminal: TerminalId,
) -> Response {
    // The console's own terminal would end this very session: use the command line for that.
    if terminal == ctx.terminal {
        return refuse(ErrorCode::BadRequest);
    }
    let event = operator_event(ctx, "terminal_revoked", operator, &terminal);
    let id = terminal.clone();
    match ledger(shared, move |l| l.revoke_terminal(&id, &event)).await {
        Ok(()) => {}
        Err(LedgerError::NotFound) => return refuse(ErrorCode::BadRequest),
        Err(e) => return refusal(&e),
    }
    if let Err(reply) = durable(shared).await {
        return reply;
    }
    tracing::info!(%operator, %terminal, "terminal revoked from the console");
    Response::TerminalRevoked { terminal }
}

/// Room left in a record for the response once the plaintext's envelope (`ts`, field names)
/// is added.
const RESPONSE_BUDGET: usize = MAX_PLAINTEXT_LEN - 200;

/// Drops the oldest listed items until the response fits in one record (lists are capped
/// already; long names and details could still overflow in a pathological bank).
fn fit(mut response: Response) -> Response {
    let size = |r: &Response| serde_json::to_vec(r).map_or(usize::MAX, |v| v.len());
    while size(&response) > RESPONSE_BUDGET {
        let shrunk = match &mut response {
            Response::Overview(overview) => overview.sessions.pop().is_some(),
            Response::AuditEntries { entries, .. } => entries.pop().is_some(),
            Response::Terminals { terminals, .. } => terminals.pop().is_some(),
            _ => false,
        };
        if !shrunk {
            return refuse(ErrorCode::Internal);
        }
    }
    response
}
