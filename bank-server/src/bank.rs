//! The bank's rules: one request from an authenticated session in, one response out. Identity
//! comes from the session only; every refusal is an `ErrorCode` and changes nothing.

use std::sync::Arc;

use protocol::bibifi::SummaryField;
use protocol::message::MAX_HISTORY;
use protocol::{
    AccountNumber, CardSecret, Cents, ErrorCode, FullName, Password, Request, Response, TerminalId,
    TerminalRole, TxId, TxKind, Username,
};
use subtle::ConstantTimeEq;

use crate::attempts::{self, Admission, Outcome, Ticket};
use crate::audit::AuditEvent;
use crate::ledger::{Ledger, LedgerError, Movement, NewAccount, UserRecord};
use crate::passwords::HashError;
use crate::{now_ms, Shared};

/// Who is logged in on a session.
#[derive(Clone)]
pub(crate) struct LoggedIn {
    username: Username,
    account: AccountNumber,
}

/// Per-session state the rules need.
pub(crate) struct SessionCtx {
    pub(crate) conn: u64,
    pub(crate) terminal: TerminalId,
    /// The terminal's role: which requests this session may make.
    pub(crate) role: TerminalRole,
    user: Option<LoggedIn>,
    /// The operator logged in on a console session.
    pub(crate) operator: Option<Username>,
}

impl SessionCtx {
    pub(crate) fn new(conn: u64, terminal: TerminalId, role: TerminalRole) -> Self {
        Self {
            conn,
            terminal,
            role,
            user: None,
            operator: None,
        }
    }

    /// An audit event stamped with this session's terminal, connection and user (or
    /// operator, marked as such in `detail`).
    pub(crate) fn event(&self, action: &str) -> AuditEvent {
        let mut event = AuditEvent::new(action, now_ms());
        event.terminal = Some(self.terminal.to_string());
        event.conn = Some(self.conn);
        if let Some(user) = &self.user {
            event.user = Some(user.username.to_string());
            event.account = Some(user.account.to_string());
        }
        if let Some(operator) = &self.operator {
            event.user = Some(operator.to_string());
            event.detail = Some("operator".into());
        }
        event
    }

    /// Who is logged in: the user, or the operator on a console.
    pub(crate) fn username(&self) -> Option<&str> {
        self.user
            .as_ref()
            .map(|u| u.username.as_str())
            .or(self.operator.as_ref().map(Username::as_str))
    }
}

/// What the session does after answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum After {
    Continue,
    Close,
}

pub(crate) fn refuse(code: ErrorCode) -> Response {
    Response::Error { code }
}

/// Runs a ledger call on the blocking pool (an I/O failure is reported as a storage fault).
pub(crate) async fn ledger<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&dyn Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, LedgerError> {
    let ledger = shared.ledger.clone();
    let result = tokio::task::spawn_blocking(move || f(&*ledger))
        .await
        .unwrap_or_else(|e| Err(LedgerError::Storage(format!("ledger task failed: {e}"))));
    if let Err(e) = &result {
        shared.faults.report(e);
    }
    result
}

/// Maps a ledger refusal to its error code; storage failures become the generic `Internal`
/// (the detail goes to the log only).
pub(crate) fn refusal(e: &LedgerError) -> Response {
    refuse(refusal_code(e).unwrap_or_else(|| {
        tracing::error!(error = %e, "ledger failure");
        ErrorCode::Internal
    }))
}

/// The code of a ledger refusal by the bank's rules; `None` for a failure of the storage.
fn refusal_code(e: &LedgerError) -> Option<ErrorCode> {
    match e {
        LedgerError::NameTaken => Some(ErrorCode::NameTaken),
        LedgerError::InsufficientFunds => Some(ErrorCode::InsufficientFunds),
        LedgerError::LimitExceeded => Some(ErrorCode::LimitExceeded),
        LedgerError::TxIdReused => Some(ErrorCode::TxIdReused),
        LedgerError::NotFound
        | LedgerError::InUse(_)
        | LedgerError::Storage(_)
        | LedgerError::Io(_) => None,
    }
}

pub(crate) fn hash_refusal(e: HashError) -> Response {
    match e {
        HashError::Busy => {
            tracing::warn!("password workers busy");
            refuse(ErrorCode::Busy)
        }
        HashError::Internal => {
            tracing::error!("password hashing failed");
            refuse(ErrorCode::Internal)
        }
    }
}

/// Waits until everything committed is durable; `Err` carries the reply to send instead.
pub(crate) async fn durable(shared: &Arc<Shared>) -> Result<(), Response> {
    shared.ledger.durable().await.map_err(|e| {
        shared.faults.report(&e);
        refusal(&e)
    })
}

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
            | Request::OpenCardAccount { .. }
            | Request::OperatorLogin { .. }
    );
    let answer = route(shared, ctx, request).await;
    if logs_in {
        shared.live.set_user(ctx.conn, ctx.username());
    }
    answer
}

/// An ATM's requests go to the rules below, a console's to [`crate::console`]; each terminal
/// may make only its own kind (`not_allowed`), and `logout` is for both.
async fn route(shared: &Arc<Shared>, ctx: &mut SessionCtx, request: Request) -> (Response, After) {
    let console = ctx.role == TerminalRole::Console;
    if !matches!(request, Request::Logout {}) && request.is_console() != console {
        tracing::info!(request = request.kind(), role = ?ctx.role, "request not allowed from this terminal");
        return (refuse(ErrorCode::NotAllowed), After::Continue);
    }
    if console && request.is_console() {
        return (
            crate::console::handle(shared, ctx, request).await,
            After::Continue,
        );
    }
    let response = match request {
        Request::Logout {} => {
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
            }
            return (Response::LoggedOut {}, After::Close);
        }
        Request::Register {
            username,
            full_name,
            password,
        } => register(shared, ctx, username, full_name, password).await,
        Request::Login { username, password } => {
            login(shared, ctx, username, Credential::Password(password)).await
        }
        Request::CardLogin { username, card } => {
            login(shared, ctx, username, Credential::Card(card)).await
        }
        Request::OpenCardAccount {
            username,
            initial_cents,
            txid,
            card,
        } => open_card_account(shared, ctx, username, initial_cents, txid, card).await,
        Request::Balance {} => balance(shared, ctx).await,
        Request::Deposit { txid, amount_cents } => {
            movement(shared, ctx, TxKind::Deposit, txid, amount_cents).await
        }
        Request::Withdraw { txid, amount_cents } => {
            movement(shared, ctx, TxKind::Withdraw, txid, amount_cents).await
        }
        Request::History { limit } => history(shared, ctx, limit).await,
        // Routed to the console above; an ATM never gets here with one.
        Request::OperatorLogin { .. }
        | Request::ConsoleOverview {}
        | Request::ConsoleAudit {}
        | Request::ConsoleTerminals {}
        | Request::AddTerminal { .. }
        | Request::RevokeTerminal { .. } => refuse(ErrorCode::NotAllowed),
    };
    (response, After::Continue)
}

async fn register(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    username: Username,
    full_name: FullName,
    password: Password,
) -> Response {
    if ctx.user.is_some() {
        return refuse(ErrorCode::AlreadyLoggedIn);
    }
    if password.expose().chars().count() < protocol::MIN_PASSWORD_CHARS {
        return refuse(ErrorCode::WeakPassword);
    }
    let name = username.clone();
    match ledger(shared, move |l| l.user(&name)).await {
        Ok(Some(_)) => return refuse(ErrorCode::NameTaken),
        Ok(None) => {}
        Err(e) => return refusal(&e),
    }
    let hash = match shared.passwords.hash(password).await {
        Ok(hash) => hash,
        Err(e) => return hash_refusal(e),
    };
    let mut event = ctx.event("register");
    event.user = Some(username.to_string());
    let new = NewAccount {
        username,
        full_name,
        password_hash: Some(hash),
        card_sha256: None,
        opening: None,
    };
    let user = match ledger(shared, move |l| l.open_account(new, now_ms(), &event)).await {
        Ok(user) => user,
        Err(e) => return refusal(&e),
    };
    if let Err(reply) = durable(shared).await {
        return reply;
    }
    shared.config.output.summary(
        user.username.as_str(),
        SummaryField::InitialBalance,
        Cents::ZERO,
    );
    tracing::debug!(user = %user.username, "registered");
    welcome(ctx, user, Cents::ZERO)
}

fn log_in(ctx: &mut SessionCtx, user: &UserRecord) {
    ctx.user = Some(LoggedIn {
        username: user.username.clone(),
        account: user.account.clone(),
    });
}

fn welcome(ctx: &mut SessionCtx, user: UserRecord, balance: Cents) -> Response {
    log_in(ctx, &user);
    Response::Welcome {
        username: user.username,
        full_name: user.full_name,
        account: user.account,
        balance_cents: balance,
    }
}

enum Credential {
    Password(Password),
    Card(CardSecret),
}

fn user_key(username: &Username) -> String {
    format!("user:{username}")
}

fn terminal_key(terminal: &TerminalId) -> String {
    format!("terminal:{terminal}")
}

/// The throttle keys of a login on this session: the account's (first) and the terminal's.
fn login_keys(shared: &Shared, ctx: &SessionCtx, account_key: String) -> Vec<attempts::Key> {
    vec![
        attempts::Key {
            name: account_key,
            policy: shared.config.account_backoff,
        },
        attempts::Key {
            name: terminal_key(&ctx.terminal),
            policy: shared.config.terminal_backoff,
        },
    ]
}

/// Admits a login attempt on `account_key` from this session's terminal (see
/// [`crate::attempts`]), waiting up to `hash_wait` for room, then runs `lookup`. `Err` carries
/// the reply: `throttled` while a key is locked, `busy` when no room came in time, or a
/// storage failure.
pub(crate) async fn begin_login<T: Send + 'static>(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    account_key: String,
    lookup: impl FnOnce(&dyn Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<(Ticket, T), Response> {
    let keys = login_keys(shared, ctx, account_key);
    let deadline = tokio::time::Instant::now() + shared.config.hash_wait;
    loop {
        // Listening before the check: an attempt that settles during it still wakes us.
        let settled = shared.attempts.settled().notified();
        tokio::pin!(settled);
        settled.as_mut().enable();
        let (in_flight, entering, now) = (
            shared.attempts.clone(),
            keys.clone(),
            shared.config.clock.now_ms(),
        );
        match ledger(shared, move |l| in_flight.enter(l, &entering, now)).await {
            Ok(Admission::Admitted) => break,
            Ok(Admission::Locked) => return Err(refuse(ErrorCode::Throttled)),
            Ok(Admission::Full) => {
                if tokio::time::timeout_at(deadline, settled).await.is_err() {
                    tracing::warn!("login attempts on one key waited too long for room");
                    return Err(refuse(ErrorCode::Busy));
                }
            }
            Err(e) => return Err(refusal(&e)),
        }
    }
    let ticket = Ticket::new(shared.attempts.clone(), keys);
    match ledger(shared, lookup).await {
        Ok(found) => Ok((ticket, found)),
        Err(e) => Err(refusal(&e)),
    }
}

/// A successful login: resets the account's failure count (writing only when there was one),
/// then runs `then` (the balance; an operator's login audit).
pub(crate) async fn login_succeeded<T: Send + 'static>(
    shared: &Arc<Shared>,
    ticket: Ticket,
    then: impl FnOnce(&dyn Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, LedgerError> {
    let (in_flight, keys) = ticket.into_settle();
    let now = shared.config.clock.now_ms();
    ledger(shared, move |l| {
        in_flight.settle(l, &keys, Outcome::Success, now)?;
        then(l)
    })
    .await
}

/// A failed login: charges the account and the terminal, audits `event` (and a lock it
/// starts), makes both durable and answers `auth_failed`.
pub(crate) async fn login_failed(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    ticket: Ticket,
    event: AuditEvent,
) -> Response {
    let (in_flight, keys) = ticket.into_settle();
    let now = shared.config.clock.now_ms();
    let locks: Vec<AuditEvent> = keys
        .iter()
        .map(|key| {
            let mut locked = ctx.event(if key.name.starts_with("terminal:") {
                "terminal_locked"
            } else {
                "account_locked"
            });
            locked.user.clone_from(&event.user);
            locked
        })
        .collect();
    let recorded = ledger(shared, move |l| {
        let after = in_flight.settle(l, &keys, Outcome::Failure, now)?;
        l.audit(&event)?;
        // A failure that starts a wait is audited with the wait and how many there have been,
        // so repeated locks show in the log and on the console.
        for ((key, state), mut locked) in keys.iter().zip(after).zip(locks) {
            if key.policy.locked(&state, now) {
                let wait_s = state.locked_until_ms.saturating_sub(now) / 1000;
                locked.detail = Some(format!(
                    "lock {} after {} failures: {wait_s} s",
                    state.locks, state.failures
                ));
                l.audit(&locked)?;
            }
        }
        Ok(())
    })
    .await;
    if let Err(e) = recorded {
        return refusal(&e);
    }
    if let Err(reply) = durable(shared).await {
        return reply;
    }
    refuse(ErrorCode::AuthFailed)
}

async fn login(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    username: Username,
    credential: Credential,
) -> Response {
    if ctx.user.is_some() {
        return refuse(ErrorCode::AlreadyLoggedIn);
    }
    let name = username.clone();
    let (ticket, user) =
        match begin_login(shared, ctx, user_key(&username), move |l| l.user(&name)).await {
            Ok(found) => found,
            Err(reply) => {
                tracing::debug!(user = %username, "login refused before checking");
                return reply;
            }
        };
    // Unknown users and wrong credentials cost the same and get the same answer.
    let ok = match credential {
        Credential::Password(password) => {
            let stored = user.as_ref().and_then(|u| u.password_hash.clone());
            match shared.passwords.verify(password, stored).await {
                Ok(ok) => ok,
                Err(e) => return hash_refusal(e),
            }
        }
        Credential::Card(card) => {
            card_matches(&card, user.as_ref().and_then(|u| u.card_sha256.as_deref()))
        }
    };
    match user.filter(|_| ok) {
        // A successful login is not audited and writes nothing (the failure count it resets
        // is written only when there was one): it works on a full disk. Failures, locks and
        // every money operation are audited.
        Some(user) => {
            let account = user.account.clone();
            let balance = login_succeeded(shared, ticket, move |l| l.balance(&account)).await;
            match balance {
                Ok(balance) => {
                    tracing::debug!(user = %user.username, "logged in");
                    welcome(ctx, user, balance)
                }
                Err(e) => refusal(&e),
            }
        }
        None => {
            let mut event = ctx.event("login_failed");
            event.user = Some(username.to_string());
            tracing::debug!(user = %username, "login failed");
            login_failed(shared, ctx, ticket, event).await
        }
    }
}

fn card_hash(card: &CardSecret) -> String {
    hex::encode(protocol::primitives::sha256(&[card.expose()]))
}

/// `true` when `card` hashes to `stored` (hex), compared in constant time.
fn card_matches(card: &CardSecret, stored: Option<&str>) -> bool {
    let stored = stored
        .and_then(|h| hex::decode(h).ok())
        .and_then(|h| <[u8; 32]>::try_from(h).ok());
    let presented = protocol::primitives::sha256(&[card.expose()]);
    let matches: bool = presented.ct_eq(&stored.unwrap_or([0; 32])).into();
    matches && stored.is_some()
}

/// A `txid` already applied to an account, and what the retry that names it gets (§9.5).
enum Retry {
    /// An identical request (same name, amount and card): the first result.
    Same(UserRecord, Cents),
    /// A different request under the same txid: `tx_id_reused`.
    Different,
}

/// §9.5's idempotency lookup for `open_card_account`: txids are kept per account name.
async fn opening_retry(
    shared: &Arc<Shared>,
    user: UserRecord,
    initial: Cents,
    txid: TxId,
    card: &CardSecret,
) -> Result<Retry, Response> {
    let (account, id) = (user.account.clone(), txid);
    let entry = match ledger(shared, move |l| l.transaction(&account, &id)).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return Err(refusal(&LedgerError::NotFound)),
        Err(e) => return Err(refusal(&e)),
    };
    // Both checks always run: what differs is not told apart.
    let same_card = card_matches(card, user.card_sha256.as_deref());
    let same_amount = entry.amount_cents == initial;
    Ok(if same_card && same_amount {
        Retry::Same(user, entry.amount_cents)
    } else {
        Retry::Different
    })
}

async fn open_card_account(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    username: Username,
    initial: Cents,
    txid: TxId,
    card: CardSecret,
) -> Response {
    if ctx.user.is_some() {
        return refuse(ErrorCode::AlreadyLoggedIn);
    }
    // (3) the idempotency lookup, then (4) the request's own rules (§9.5). A second pass
    // covers an opening of the same name committed by another session between the two.
    for _ in 0..2 {
        let name = username.clone();
        let existing = match ledger(shared, move |l| l.user(&name)).await {
            Ok(existing) => existing,
            Err(e) => return refusal(&e),
        };
        let (user, opening, fresh) = match existing {
            Some(user) if user.open_txid == Some(txid) => {
                match opening_retry(shared, user, initial, txid, &card).await {
                    Ok(Retry::Same(user, opening)) => (user, opening, false),
                    Ok(Retry::Different) => {
                        return declined(
                            shared,
                            ctx,
                            "open_account",
                            initial,
                            ErrorCode::TxIdReused,
                        )
                        .await
                    }
                    Err(reply) => return reply,
                }
            }
            Some(_) => {
                return declined(shared, ctx, "open_account", initial, ErrorCode::NameTaken).await
            }
            None if initial < protocol::MIN_OPENING || initial > shared.config.max_amount => {
                return declined(
                    shared,
                    ctx,
                    "open_account",
                    initial,
                    ErrorCode::AmountInvalid,
                )
                .await
            }
            None => {
                let mut event = ctx.event("open_account");
                event.user = Some(username.to_string());
                event.amount_cents = Some(initial.0);
                let new = NewAccount {
                    // Usernames are ASCII and never blank; full names stop at 100 characters.
                    full_name: FullName::new(
                        &username.as_str()[..username.as_str().len().min(100)],
                    )
                    .expect("a username prefix is a valid full name"),
                    username: username.clone(),
                    password_hash: None,
                    card_sha256: Some(card_hash(&card)),
                    opening: Some((txid, initial)),
                };
                match ledger(shared, move |l| l.open_account(new, now_ms(), &event)).await {
                    Ok(user) => (user, initial, true),
                    // Opened meanwhile: look again (it may be this very request's retry).
                    Err(LedgerError::NameTaken) => continue,
                    Err(e) => return refusal(&e),
                }
            }
        };
        if let Err(reply) = durable(shared).await {
            return reply;
        }
        if fresh {
            shared.config.output.summary(
                user.username.as_str(),
                SummaryField::InitialBalance,
                opening,
            );
        }
        tracing::debug!(user = %user.username, retry = !fresh, "card account opened");
        let account = user.account.clone();
        log_in(ctx, &user);
        return Response::AccountOpened {
            account,
            balance_cents: opening,
        };
    }
    declined(shared, ctx, "open_account", initial, ErrorCode::NameTaken).await
}

/// A money request the bank refuses: audited as `<action>_declined` with the amount and the
/// reason code (never a secret), made durable like any entry, then answered with `code`.
async fn declined(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    action: &str,
    amount: Cents,
    code: ErrorCode,
) -> Response {
    let mut event = ctx.event(&format!("{action}_declined"));
    event.amount_cents = Some(amount.0);
    event.detail = Some(code.as_str().to_owned());
    if let Err(e) = ledger(shared, move |l| l.audit(&event)).await {
        return refusal(&e);
    }
    if let Err(reply) = durable(shared).await {
        return reply;
    }
    refuse(code)
}

fn logged_in(ctx: &SessionCtx) -> Result<LoggedIn, Response> {
    ctx.user.clone().ok_or(refuse(ErrorCode::NotLoggedIn))
}

async fn balance(shared: &Arc<Shared>, ctx: &mut SessionCtx) -> Response {
    let user = match logged_in(ctx) {
        Ok(user) => user,
        Err(reply) => return reply,
    };
    let event = ctx.event("balance");
    let account = user.account.clone();
    let result = ledger(shared, move |l| {
        let balance = l.balance(&account)?;
        let mut event = event;
        event.balance_cents = Some(balance.0);
        l.audit(&event)?;
        Ok(balance)
    })
    .await;
    match result {
        Ok(balance) => {
            shared
                .config
                .output
                .summary(user.username.as_str(), SummaryField::Balance, balance);
            Response::Balance {
                balance_cents: balance,
            }
        }
        Err(e) => refusal(&e),
    }
}

async fn movement(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    kind: TxKind,
    txid: TxId,
    amount: Cents,
) -> Response {
    let user = match logged_in(ctx) {
        Ok(user) => user,
        Err(reply) => return reply,
    };
    let (action, field) = if kind == TxKind::Deposit {
        ("deposit", SummaryField::Deposit)
    } else {
        ("withdraw", SummaryField::Withdraw)
    };
    if amount == Cents::ZERO || amount > shared.config.max_amount {
        return declined(shared, ctx, action, amount, ErrorCode::AmountInvalid).await;
    }
    let mut event = ctx.event(action);
    event.amount_cents = Some(amount.0);
    let account = user.account.clone();
    let movement = Movement { kind, txid, amount };
    let applied = match ledger(shared, move |l| {
        l.apply(&account, movement, now_ms(), &event)
    })
    .await
    {
        Ok(applied) => applied,
        Err(e) => {
            tracing::debug!(user = %user.username, action, error = %e, "refused");
            return match refusal_code(&e) {
                Some(code) => declined(shared, ctx, action, amount, code).await,
                None => refusal(&e),
            };
        }
    };
    if let Err(reply) = durable(shared).await {
        return reply;
    }
    let entry = applied.entry;
    if !applied.replay {
        shared
            .config
            .output
            .summary(user.username.as_str(), field, amount);
    }
    tracing::debug!(user = %user.username, action, replay = applied.replay, "applied");
    if kind == TxKind::Deposit {
        Response::Deposited {
            txid,
            amount_cents: entry.amount_cents,
            balance_cents: entry.balance_cents,
        }
    } else {
        Response::Withdrawn {
            txid,
            amount_cents: entry.amount_cents,
            balance_cents: entry.balance_cents,
        }
    }
}

async fn history(shared: &Arc<Shared>, ctx: &mut SessionCtx, limit: u32) -> Response {
    let user = match logged_in(ctx) {
        Ok(user) => user,
        Err(reply) => return reply,
    };
    if limit == 0 || limit > MAX_HISTORY {
        return refuse(ErrorCode::BadRequest);
    }
    let event = ctx.event("history");
    let account = user.account;
    match ledger(shared, move |l| {
        let entries = l.history(&account, limit)?;
        l.audit(&event)?;
        Ok(entries)
    })
    .await
    {
        Ok(entries) => Response::History { entries },
        Err(e) => refusal(&e),
    }
}
