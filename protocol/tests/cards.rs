//! Signed cards (§13) over real sessions: both ends of a session compute the same channel
//! binding and no two sessions share one, so a card's login signature opens its own session
//! only; a signature by another key, for another name or replayed in another session is
//! refused by the bank's check.

mod common;

use common::*;
use protocol::{CardKey, Request, Username};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn bob() -> Username {
    Username::new("bob").unwrap()
}

#[test]
fn both_ends_share_the_binding_and_sessions_do_not() {
    let (atm1, bank1) = established(&mut rng(21));
    let (atm2, bank2) = established(&mut rng(22));
    assert_eq!(atm1.channel_binding(), bank1.channel_binding());
    assert_eq!(atm2.channel_binding(), bank2.channel_binding());
    assert_ne!(atm1.channel_binding(), atm2.channel_binding());
}

#[test]
fn a_login_signature_from_another_session_is_refused() {
    let card = CardKey::from_seed(&[42; 32]);
    let public = card.public();
    let (mut atm1, mut bank1) = established(&mut rng(31));
    let (_, bank2) = established(&mut rng(32));
    let signature = card.sign_login(atm1.channel_binding(), &bob());
    let wire = atm1
        .seal(
            &Request::CardLoginSigned {
                username: bob(),
                signature,
            },
            &mut rng(33),
            NOW,
        )
        .unwrap();
    let Ok(Request::CardLoginSigned {
        username,
        signature,
    }) = bank1.open(wire.as_bytes(), NOW)
    else {
        panic!("not a signed card login");
    };
    // The bank of this session accepts it; the same signature, harvested and replayed on
    // another session (inside a record the attacker seals there), proves nothing.
    assert!(public.verify_login(bank1.channel_binding(), &username, &signature));
    assert!(!public.verify_login(bank2.channel_binding(), &username, &signature));
}

#[test]
fn a_login_signature_by_the_wrong_key_or_for_another_name_is_refused() {
    let card = CardKey::from_seed(&[42; 32]);
    let thief = CardKey::from_seed(&[43; 32]);
    let (atm, bank) = established(&mut rng(41));
    let forged = thief.sign_login(atm.channel_binding(), &bob());
    assert!(!card
        .public()
        .verify_login(bank.channel_binding(), &bob(), &forged));
    let alice = Username::new("alice").unwrap();
    let for_alice = card.sign_login(atm.channel_binding(), &alice);
    assert!(!card
        .public()
        .verify_login(bank.channel_binding(), &bob(), &for_alice));
    let good = card.sign_login(atm.channel_binding(), &bob());
    assert!(card
        .public()
        .verify_login(bank.channel_binding(), &bob(), &good));
}
