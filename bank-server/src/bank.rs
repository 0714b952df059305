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

use crate::audit::AuditEvent;
use crate::ledger::{Ledger, LedgerError, Movement, NewAccount, ThrottleState, UserRecord};
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

/// Runs a ledger call on the blocking pool.
pub(crate) async fn ledger<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&dyn Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, LedgerError> {
    let ledger = shared.ledger.clone();
    tokio::task::spawn_blocking(move || f(&*ledger))
        .await
        .unwrap_or_else(|e| Err(LedgerError::Storage(format!("ledger task failed: {e}"))))
}

/// Maps a ledger refusal to its error code; storage failures become the generic `Internal`
/// (the detail goes to the log only).
pub(crate) fn refusal(e: &LedgerError) -> Response {
    match e {
        LedgerError::NameTaken => refuse(ErrorCode::NameTaken),
        LedgerError::InsufficientFunds => refuse(ErrorCode::InsufficientFunds),
        LedgerError::LimitExceeded => refuse(ErrorCode::LimitExceeded),
        LedgerError::TxIdReused => refuse(ErrorCode::TxIdReused),
        LedgerError::NotFound | LedgerError::InUse(_) | LedgerError::Storage(_) => {
            tracing::error!(error = %e, "ledger failure");
            refuse(ErrorCode::Internal)
        }
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
    shared.ledger.durable().await.map_err(|e| refusal(&e))
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
    tracing::info!(user = %user.username, "registered");
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

/// Checks the terminal's and the account's failed-login state and charges this attempt to the
/// account (atomically, before the credential is checked, so guesses sent in parallel all
/// count), then runs `lookup`. `Err` carries the reply (`throttled`, or a storage failure).
pub(crate) async fn charge_login<T: Send + 'static>(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    account_key: String,
    lookup: impl FnOnce(&dyn Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, Response> {
    let now = now_ms();
    let tkey = terminal_key(&ctx.terminal);
    let (account_policy, terminal_policy) = (
        shared.config.account_backoff,
        shared.config.terminal_backoff,
    );
    let looked_up = ledger(shared, move |l| {
        if terminal_policy.locked(&l.throttle(&tkey)?, now) {
            return Ok(None);
        }
        let before = l.update_throttle(&account_key, &mut |state| {
            if account_policy.locked(&state, now) {
                state
            } else {
                account_policy.fail(state, now)
            }
        })?;
        if account_policy.locked(&before, now) {
            return Ok(None);
        }
        lookup(l).map(Some)
    })
    .await;
    match looked_up {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(refuse(ErrorCode::Throttled)),
        Err(e) => Err(refusal(&e)),
    }
}

/// A failed login: charges the terminal, audits `event`, makes both durable and answers
/// `auth_failed`.
pub(crate) async fn login_failed(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    event: AuditEvent,
) -> Response {
    let now = now_ms();
    let tkey = terminal_key(&ctx.terminal);
    let terminal_policy = shared.config.terminal_backoff;
    let recorded = ledger(shared, move |l| {
        l.update_throttle(&tkey, &mut |state| terminal_policy.fail(state, now))?;
        l.audit(&event)
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
    let user = match charge_login(shared, ctx, user_key(&username), move |l| l.user(&name)).await {
        Ok(user) => user,
        Err(reply) => {
            tracing::info!(user = %username, "login refused before checking");
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
    let user = user.filter(|_| ok);
    let ukey = user_key(&username);
    match user {
        Some(user) => {
            let mut event = ctx.event("login_ok");
            event.user = Some(user.username.to_string());
            event.account = Some(user.account.to_string());
            let account = user.account.clone();
            let balance = ledger(shared, move |l| {
                l.update_throttle(&ukey, &mut |_| ThrottleState::default())?;
                l.audit(&event)?;
                l.balance(&account)
            })
            .await;
            match balance {
                Ok(balance) => {
                    tracing::info!(user = %user.username, "logged in");
                    welcome(ctx, user, balance)
                }
                Err(e) => refusal(&e),
            }
        }
        None => {
            let mut event = ctx.event("login_failed");
            event.user = Some(username.to_string());
            tracing::info!(user = %username, "login failed");
            login_failed(shared, ctx, event).await
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
    if initial < protocol::MIN_OPENING || initial > shared.config.max_amount {
        return refuse(ErrorCode::AmountInvalid);
    }
    let name = username.clone();
    let existing = match ledger(shared, move |l| l.user(&name)).await {
        Ok(existing) => existing,
        Err(e) => return refusal(&e),
    };
    let (user, opening, fresh) = match existing {
        // A retry of the same opening (same txid and card): the same answer, nothing changes.
        Some(user)
            if user.open_txid == Some(txid) && card_matches(&card, user.card_sha256.as_deref()) =>
        {
            let (account, id) = (user.account.clone(), txid);
            match ledger(shared, move |l| l.transaction(&account, &id)).await {
                Ok(Some(entry)) => (user, entry.amount_cents, false),
                Ok(None) => return refusal(&LedgerError::NotFound),
                Err(e) => return refusal(&e),
            }
        }
        Some(_) => return refuse(ErrorCode::NameTaken),
        None => {
            let mut event = ctx.event("open_account");
            event.user = Some(username.to_string());
            event.amount_cents = Some(initial.0);
            let new = NewAccount {
                // Usernames are ASCII and never blank; full names stop at 100 characters.
                full_name: FullName::new(&username.as_str()[..username.as_str().len().min(100)])
                    .expect("a username prefix is a valid full name"),
                username,
                password_hash: None,
                card_sha256: Some(card_hash(&card)),
                opening: Some((txid, initial)),
            };
            match ledger(shared, move |l| l.open_account(new, now_ms(), &event)).await {
                Ok(user) => (user, initial, true),
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
    tracing::info!(user = %user.username, retry = !fresh, "card account opened");
    let account = user.account.clone();
    log_in(ctx, &user);
    Response::AccountOpened {
        account,
        balance_cents: opening,
    }
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
    if amount == Cents::ZERO || amount > shared.config.max_amount {
        return refuse(ErrorCode::AmountInvalid);
    }
    let (action, field) = if kind == TxKind::Deposit {
        ("deposit", SummaryField::Deposit)
    } else {
        ("withdraw", SummaryField::Withdraw)
    };
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
            tracing::info!(user = %user.username, action, error = %e, "refused");
            return refusal(&e);
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
    tracing::info!(user = %user.username, action, replay = applied.replay, "applied");
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
