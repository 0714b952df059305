//! An ATM's requests on an ATM terminal's session: register, password and card login (a legacy
//! card's secret, or a signed card's signature of the session's channel binding, §17), opening
//! a card account of either kind (idempotent by txid, §9.5), balance, deposit and withdraw (a refused amount,
//! a deposit over the terminal's ceilings included, audited as declined) and history. Identity
//! (the user, the terminal) comes from the session only; every refusal is an `ErrorCode` and
//! changes nothing.

use std::sync::Arc;

use protocol::bibifi::SummaryField;
use protocol::message::MAX_HISTORY;
use protocol::{
    CardPublic, CardSecret, CardSignature, Cents, ErrorCode, FullName, Password, Request, Response,
    TxId, TxKind, Username,
};

use crate::ledger::{LedgerError, Movement, NewAccount, UserRecord};
use crate::openings::Take;
use crate::Shared;

use super::credentials::{self, card_hash, card_matches, stored_card_public};
use super::ctx::{
    answered, durable, hash_refusal, ledger, refusal, refusal_code, refuse, Fingerprint, LoggedIn,
    SessionCtx,
};
use super::login::{begin_login, login_failed, login_succeeded, user_key};

/// Answers an ATM request (the caller has checked that the terminal is an ATM, and answers
/// `logout` itself).
pub(super) async fn handle(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    request: Request,
) -> Response {
    match request {
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
        Request::CardLoginSigned {
            username,
            signature,
        } => login(shared, ctx, username, Credential::SignedCard(signature)).await,
        Request::OpenCardAccount {
            username,
            initial_cents,
            txid,
            card,
        } => {
            let card = NewCard::Legacy(card);
            open_card_account(shared, ctx, username, initial_cents, txid, card).await
        }
        Request::OpenSignedCardAccount {
            username,
            initial_cents,
            txid,
            card_public,
        } => {
            let card = NewCard::Signed(card_public);
            open_card_account(shared, ctx, username, initial_cents, txid, card).await
        }
        Request::Balance {} => balance(shared, ctx).await,
        Request::Deposit { txid, amount_cents } => {
            movement(shared, ctx, TxKind::Deposit, txid, amount_cents).await
        }
        Request::Withdraw { txid, amount_cents } => {
            movement(shared, ctx, TxKind::Withdraw, txid, amount_cents).await
        }
        Request::History { limit } => history(shared, ctx, limit).await,
        // Routed elsewhere by the caller; an ATM never gets here with one.
        Request::Logout {}
        | Request::OperatorLogin { .. }
        | Request::ConsoleOverview {}
        | Request::ConsoleAudit {}
        | Request::ConsoleTerminals {}
        | Request::AddTerminal { .. }
        | Request::RevokeTerminal { .. }
        // Only an enrollment session (opened with a one-time code) may enroll.
        | Request::Enroll {} => refuse(ErrorCode::NotAllowed),
        Request::ChangePassword { old, new } => {
            credentials::change_user_password(shared, ctx, old, new).await
        }
        Request::ReissueCard { old, new } => credentials::reissue_card(shared, ctx, old, new).await,
        Request::ReissueCardSigned {
            signature,
            new_public,
        } => credentials::reissue_signed_card(shared, ctx, signature, new_public).await,
        Request::UpgradeCard { old, new_public } => {
            credentials::upgrade_card(shared, ctx, old, new_public).await
        }
    }
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
    // Before the name lookup and the Argon2 hash: a flood costs neither.
    if let Err(reply) = opening_allowed(shared, ctx, "register").await {
        return reply;
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
        card_public: None,
        opening: None,
        terminal: Some(ctx.terminal.clone()),
    };
    let now = shared.config.clock.now_ms();
    let user = match ledger(shared, move |l| l.open_account(new, now, &event)).await {
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
    ctx.fingerprint = Some(Fingerprint::of_user(user));
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
    /// A signed card's signature of this session's login message (§17).
    SignedCard(CardSignature),
}

/// The card an opening creates: a legacy card's secret (the bank keeps its hash) or a signed
/// card's public key (the bank keeps it; the seed never left the ATM).
enum NewCard {
    Legacy(CardSecret),
    Signed(CardPublic),
}

impl NewCard {
    /// Whether `user`'s stored card is this one (a retried opening's check).
    fn is_stored(&self, user: &UserRecord) -> bool {
        match self {
            Self::Legacy(card) => card_matches(card, user.card_sha256.as_deref()),
            Self::Signed(public) => user.card_public.as_deref() == Some(public.to_hex().as_str()),
        }
    }
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
        Credential::SignedCard(signature) => {
            // An unknown user, a password or legacy account, or a corrupt key: a dummy key is
            // checked instead, so every case costs one verification.
            let (key, stored) = stored_card_public(user.as_ref());
            let valid = key.verify_login(&ctx.binding, &username, &signature);
            valid && stored
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

/// Takes a token from the session's terminal's openings bucket for `action` (`register`,
/// `open_account`). Refused with the generic `busy`; the first refusal of a run is logged at
/// warn and audited (`openings_throttled`, the rate in `detail`), later ones only logged at
/// debug, so a flood writes at most one audit entry per opening it was granted.
async fn opening_allowed(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    action: &str,
) -> Result<(), Response> {
    if shared.openings.rate().is_none() {
        return Ok(());
    }
    let now = shared.config.clock.now_ms();
    let (bank, terminal) = (shared.clone(), ctx.terminal.clone());
    let taken = ledger(shared, move |l| bank.openings.take_from(l, &terminal, now)).await;
    let first = match taken {
        Ok(Take::Granted) => return Ok(()),
        Ok(Take::Refused { first }) => first,
        Err(e) => return Err(refusal(&e)),
    };
    if !first {
        tracing::debug!(terminal = %ctx.terminal, action, "openings throttled");
        return Err(refuse(ErrorCode::Busy));
    }
    let rate = shared.openings.rate().map_or_else(String::new, |r| {
        format!("{} a minute, {} at once", r.per_minute, r.burst)
    });
    tracing::warn!(terminal = %ctx.terminal, action, %rate, "openings throttled: the terminal opens accounts faster than its bucket allows");
    let mut event = ctx.event("openings_throttled");
    event.detail = Some(format!("{action}: over {rate}"));
    if let Err(e) = ledger(shared, move |l| l.audit(&event)).await {
        return Err(refusal(&e));
    }
    durable(shared).await?;
    Err(refuse(ErrorCode::Busy))
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
    card: &NewCard,
) -> Result<Retry, Response> {
    let (account, id) = (user.account.clone(), txid);
    let entry = match ledger(shared, move |l| l.transaction(&account, &id)).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return Err(refusal(&LedgerError::NotFound)),
        Err(e) => return Err(refusal(&e)),
    };
    // Both checks always run: what differs is not told apart.
    let same_card = card.is_stored(&user);
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
    card: NewCard,
) -> Response {
    if ctx.user.is_some() {
        return refuse(ErrorCode::AlreadyLoggedIn);
    }
    // (3) the idempotency lookup, then (4) the request's own rules (§9.5). A second pass
    // covers an opening of the same name committed by another session between the two.
    let mut charged = false;
    for _ in 0..2 {
        let name = username.clone();
        let existing = match ledger(shared, move |l| l.user(&name)).await {
            Ok(existing) => existing,
            Err(e) => return refusal(&e),
        };
        // A retry of an opening already made creates nothing: it is answered without a token.
        let retry = matches!(&existing, Some(user) if user.open_txid == Some(txid));
        if !retry && !charged {
            if let Err(reply) = opening_allowed(shared, ctx, "open_account").await {
                return reply;
            }
            charged = true;
        }
        let (user, opening, fresh) = match existing {
            Some(user) if user.open_txid == Some(txid) => {
                match opening_retry(shared, user, initial, txid, &card).await {
                    Ok(Retry::Same(user, opening)) => (user, opening, false),
                    Ok(Retry::Different) => {
                        return declined_opening(
                            shared,
                            ctx,
                            &username,
                            initial,
                            ErrorCode::TxIdReused,
                        )
                        .await
                    }
                    Err(reply) => return reply,
                }
            }
            Some(_) => {
                return declined_opening(shared, ctx, &username, initial, ErrorCode::NameTaken)
                    .await
            }
            None if initial < protocol::MIN_OPENING || initial > shared.config.max_amount => {
                return declined_opening(shared, ctx, &username, initial, ErrorCode::AmountInvalid)
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
                    card_sha256: match &card {
                        NewCard::Legacy(secret) => Some(card_hash(secret)),
                        NewCard::Signed(_) => None,
                    },
                    card_public: match &card {
                        NewCard::Legacy(_) => None,
                        NewCard::Signed(public) => Some(public.to_hex()),
                    },
                    opening: Some((txid, initial)),
                    terminal: Some(ctx.terminal.clone()),
                };
                let now = shared.config.clock.now_ms();
                match ledger(shared, move |l| l.open_account(new, now, &event)).await {
                    Ok(user) => (user, initial, true),
                    // Opened meanwhile: look again (it may be this very request's retry).
                    Err(LedgerError::NameTaken) => continue,
                    Err(e) => {
                        return match refusal_code(&e) {
                            Some(code) => {
                                let detail = refusal_detail(ctx, &username, &e);
                                declined_for(
                                    shared,
                                    ctx,
                                    Some(&username),
                                    "open_account",
                                    initial,
                                    code,
                                    detail,
                                )
                                .await
                            }
                            None => refusal(&e),
                        }
                    }
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
    declined_opening(shared, ctx, &username, initial, ErrorCode::NameTaken).await
}

/// A money request the bank refuses: audited as `<action>_declined` with the amount and the
/// reason code (never a secret), made durable like any entry, then answered with `code`. An
/// opening names the account it asked for (the session has no user yet).
async fn declined(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    action: &str,
    amount: Cents,
    code: ErrorCode,
) -> Response {
    declined_for(shared, ctx, None, action, amount, code, None).await
}

/// [`declined`] for an opening of `claimed`.
async fn declined_opening(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    claimed: &Username,
    amount: Cents,
    code: ErrorCode,
) -> Response {
    declined_for(
        shared,
        ctx,
        Some(claimed),
        "open_account",
        amount,
        code,
        None,
    )
    .await
}

/// [`declined`] with the reason's `detail` after the code in the audit entry (which ceiling a
/// deposit would cross; the terminal is told only the code).
async fn declined_for(
    shared: &Arc<Shared>,
    ctx: &SessionCtx,
    claimed: Option<&Username>,
    action: &str,
    amount: Cents,
    code: ErrorCode,
    detail: Option<String>,
) -> Response {
    let mut event = ctx.event(&format!("{action}_declined"));
    if let Some(name) = claimed {
        event.user = Some(name.to_string());
    }
    event.amount_cents = Some(amount.0);
    event.detail = Some(match detail {
        Some(detail) => format!("{}: {detail}", code.as_str()),
        None => code.as_str().to_owned(),
    });
    if let Err(e) = ledger(shared, move |l| l.audit(&event)).await {
        return refusal(&e);
    }
    if let Err(reply) = durable(shared).await {
        return reply;
    }
    refuse(code)
}

/// What the audit entry and the log say about a refusal beyond its code: for a deposit over
/// a ceiling, which one and the figures (logged at warn: a terminal at its ceiling is worth an
/// operator's look).
fn refusal_detail(ctx: &SessionCtx, user: &Username, e: &LedgerError) -> Option<String> {
    let LedgerError::OverCeiling(ceiling) = e else {
        return None;
    };
    tracing::warn!(terminal = %ctx.terminal, %user, %ceiling, "deposit refused: over the terminal's ceiling");
    Some(ceiling.to_string())
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
    let result = answered(
        shared,
        shared.ledger.clone().audited_balance(account, event),
    )
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
    let movement = Movement {
        kind,
        txid,
        amount,
        terminal: Some(ctx.terminal.clone()),
    };
    let now = shared.config.clock.now_ms();
    // Answered once durable: the writer's flush covers it before the reply is sent.
    let applying = shared
        .ledger
        .clone()
        .apply_durably(account, movement, now, event);
    let applied = match answered(shared, applying).await {
        Ok(applied) => applied,
        Err(e) => {
            tracing::debug!(user = %user.username, action, error = %e, "refused");
            return match refusal_code(&e) {
                Some(code) => {
                    let detail = refusal_detail(ctx, &user.username, &e);
                    declined_for(shared, ctx, None, action, amount, code, detail).await
                }
                None => refusal(&e),
            };
        }
    };
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
