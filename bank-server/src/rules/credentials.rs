//! A logged-in customer or operator replacing their own credential (a password, a card of
//! either kind, a legacy card by a signed one): the
//! current one is checked like a login (throttled; a wrong one is a failed login), the new one
//! stored and audited, and other sessions still logged in with the old one end at their next
//! request.

use std::sync::{Arc, OnceLock};

use protocol::{CardKey, CardPublic, CardSecret, CardSignature, ErrorCode, Password, Response};
use subtle::ConstantTimeEq;

use crate::ledger::{NewCredential, UserRecord};
use crate::Shared;

use super::ctx::{durable, hash_refusal, ledger, refusal, refuse, Fingerprint, SessionCtx};
use super::login::{begin_login, login_failed, login_succeeded, operator_key, user_key};

/// SHA-256 of a card secret, hex: what the bank stores of a card.
pub(super) fn card_hash(card: &CardSecret) -> String {
    hex::encode(protocol::primitives::sha256(&[card.expose()]))
}

/// `true` when `card` hashes to `stored` (hex), compared in constant time.
pub(super) fn card_matches(card: &CardSecret, stored: Option<&str>) -> bool {
    let stored = stored
        .and_then(|h| hex::decode(h).ok())
        .and_then(|h| <[u8; 32]>::try_from(h).ok());
    let presented = protocol::primitives::sha256(&[card.expose()]);
    let matches: bool = presented.ct_eq(&stored.unwrap_or([0; 32])).into();
    matches && stored.is_some()
}

fn weak(password: &Password) -> bool {
    password.expose().chars().count() < protocol::MIN_PASSWORD_CHARS
}

/// `change_password` from an ATM: the logged-in customer's.
pub(super) async fn change_user_password(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    old: Password,
    new: Password,
) -> Response {
    let Some(user) = ctx.user.clone() else {
        return refuse(ErrorCode::NotLoggedIn);
    };
    if weak(&new) {
        return refuse(ErrorCode::WeakPassword);
    }
    let name = user.username.clone();
    let (ticket, record) = match begin_login(shared, ctx, user_key(&user.username), move |l| {
        l.user(&name)
    })
    .await
    {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let stored = record.as_ref().and_then(|u| u.password_hash.clone());
    let ok = match shared.passwords.verify(old, stored).await {
        Ok(ok) => ok,
        Err(e) => return hash_refusal(e),
    };
    if !ok {
        tracing::info!(user = %user.username, "password change with a wrong password");
        return login_failed(shared, ctx, ticket, ctx.event("password_change_failed")).await;
    }
    let hash = match shared.passwords.hash(new).await {
        Ok(hash) => hash,
        Err(e) => return hash_refusal(e),
    };
    let hash = NewCredential::PasswordHash(hash);
    if let Err(reply) = commit(
        shared,
        ctx,
        ticket,
        &user.username,
        hash,
        "password_changed",
    )
    .await
    {
        return reply;
    }
    tracing::info!(user = %user.username, "password changed");
    Response::PasswordChanged {}
}

/// Stores `user`'s new credential (audited as `action`) as the settled success of `ticket`,
/// makes it durable, and keeps this session logged in under it.
async fn commit(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    ticket: crate::attempts::Ticket,
    user: &protocol::Username,
    credential: NewCredential,
    action: &str,
) -> Result<(), Response> {
    let (name, event) = (user.clone(), ctx.event(action));
    let changed = login_succeeded(shared, ticket, move |l| {
        l.replace_credential(&name, credential, &event)?;
        l.user(&name)
    })
    .await;
    match changed {
        Ok(Some(record)) => ctx.fingerprint = Some(Fingerprint::of_user(&record)),
        Ok(None) => return Err(refusal(&crate::ledger::LedgerError::NotFound)),
        Err(e) => return Err(refusal(&e)),
    }
    durable(shared).await
}

/// The public key to check a signed card's signature against, and whether it is `user`'s
/// own: an unknown user, a password or legacy account, or a stored key that no longer parses
/// gets a fixed dummy key instead, so that every case costs one verification (§17).
pub(super) fn stored_card_public(user: Option<&UserRecord>) -> (CardPublic, bool) {
    static DUMMY: OnceLock<CardPublic> = OnceLock::new();
    match user
        .and_then(|u| u.card_public.as_deref())
        .and_then(CardPublic::from_hex)
    {
        Some(key) => (key, true),
        None => {
            let dummy = DUMMY.get_or_init(|| {
                let seed = protocol::primitives::sha256(&[b"atm-psk-v2 dummy card"]);
                CardKey::from_seed(&seed).public()
            });
            (*dummy, false)
        }
    }
}

/// `reissue_card`: the logged-in legacy card customer's card, for another legacy card.
pub(super) async fn reissue_card(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    old: CardSecret,
    new: CardSecret,
) -> Response {
    let hash = card_hash(&new);
    replace_card(
        shared,
        ctx,
        move |_, record| {
            let stored = record.and_then(|u| u.card_sha256.as_deref());
            // A new card equal to the old one would end nothing.
            card_matches(&old, stored) && !card_matches(&new, stored)
        },
        NewCredential::CardSha256(hash),
        "card_reissued",
    )
    .await
}

/// `reissue_card_signed`: the logged-in signed card customer's card, for another signed card;
/// the current card must have signed the new key on this session (§17).
pub(super) async fn reissue_signed_card(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    signature: CardSignature,
    new: CardPublic,
) -> Response {
    let hex = new.to_hex();
    replace_card(
        shared,
        ctx,
        move |ctx, record| {
            let (key, stored) = stored_card_public(record);
            let Some(user) = &ctx.user else {
                return false;
            };
            let valid = key.verify_reissue(&ctx.binding, &user.username, &new, &signature);
            valid && stored && key != new
        },
        NewCredential::CardPublic(hex),
        "card_reissued",
    )
    .await
}

/// `upgrade_card`: the logged-in legacy card customer's card, for a signed card (§17); the
/// bank then keeps the new public key only, and the secret card logs nobody in.
pub(super) async fn upgrade_card(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    old: CardSecret,
    new: CardPublic,
) -> Response {
    replace_card(
        shared,
        ctx,
        move |_, record| card_matches(&old, record.and_then(|u| u.card_sha256.as_deref())),
        NewCredential::CardPublic(new.to_hex()),
        "card_upgraded",
    )
    .await
}

/// Replaces the logged-in customer's card with `new` when `current_ok` accepts the proof of
/// the current card (checked like a login: throttled; a wrong one is a failed login, audited
/// as `card_reissue_failed`); audited as `action`.
async fn replace_card(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    current_ok: impl FnOnce(&SessionCtx, Option<&UserRecord>) -> bool,
    new: NewCredential,
    action: &str,
) -> Response {
    let Some(user) = ctx.user.clone() else {
        return refuse(ErrorCode::NotLoggedIn);
    };
    let name = user.username.clone();
    let (ticket, record) = match begin_login(shared, ctx, user_key(&user.username), move |l| {
        l.user(&name)
    })
    .await
    {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    if !current_ok(ctx, record.as_ref()) {
        tracing::info!(user = %user.username, "card reissue with a wrong card");
        return login_failed(shared, ctx, ticket, ctx.event("card_reissue_failed")).await;
    }
    if let Err(reply) = commit(shared, ctx, ticket, &user.username, new, action).await {
        return reply;
    }
    tracing::info!(user = %user.username, action, "card replaced");
    Response::CardReissued {}
}

/// `change_password` from a console: the logged-in operator's.
pub(super) async fn change_operator_password(
    shared: &Arc<Shared>,
    ctx: &mut SessionCtx,
    old: Password,
    new: Password,
) -> Response {
    let Some(operator) = ctx.operator.clone() else {
        return refuse(ErrorCode::NotAllowed);
    };
    if weak(&new) {
        return refuse(ErrorCode::WeakPassword);
    }
    let name = operator.clone();
    let (ticket, record) = match begin_login(shared, ctx, operator_key(&operator), move |l| {
        l.operator(&name)
    })
    .await
    {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let stored = record.map(|o| o.password_hash);
    let ok = match shared.passwords.verify(old, stored).await {
        Ok(ok) => ok,
        Err(e) => return hash_refusal(e),
    };
    if !ok {
        tracing::info!(operator = %operator, "operator password change with a wrong password");
        return login_failed(shared, ctx, ticket, ctx.event("password_change_failed")).await;
    }
    let hash = match shared
        .passwords
        .hash_with(shared.config.operator_argon2, new)
        .await
    {
        Ok(hash) => hash,
        Err(e) => return hash_refusal(e),
    };
    let fingerprint = Fingerprint::of_operator(&hash);
    let (name, event) = (operator.clone(), ctx.event("password_changed"));
    let changed = login_succeeded(shared, ticket, move |l| {
        l.replace_operator_password(&name, hash, &event)
    })
    .await;
    if let Err(e) = changed {
        return refusal(&e);
    }
    ctx.fingerprint = Some(fingerprint);
    if let Err(reply) = durable(shared).await {
        return reply;
    }
    tracing::info!(operator = %operator, "operator password changed");
    Response::PasswordChanged {}
}

/// `true` while the session's login still stands: no one is logged in, or the credentials
/// stored for its user or operator are those it logged in with. Read only after some
/// credential changed ([`crate::ledger::Ledger::credential_changes`]).
pub(crate) async fn login_stands(shared: &Arc<Shared>, ctx: &SessionCtx) -> bool {
    let Some(fingerprint) = ctx.fingerprint else {
        return true;
    };
    let now = if let Some(user) = &ctx.user {
        let name = user.username.clone();
        ledger(shared, move |l| l.user(&name))
            .await
            .map(|u| u.as_ref().map(Fingerprint::of_user))
    } else if let Some(operator) = &ctx.operator {
        let name = operator.clone();
        ledger(shared, move |l| l.operator(&name))
            .await
            .map(|o| o.map(|o| Fingerprint::of_operator(&o.password_hash)))
    } else {
        return true;
    };
    matches!(now, Ok(Some(current)) if current == fingerprint)
}
