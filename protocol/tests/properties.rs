//! Property tests (native only): round trips for arbitrary messages, and refusal of any bit flip,
//! truncation, replay, reorder or drop of records and handshake messages.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::*;
use proptest::prelude::*;
use protocol::{Cents, Config, Error, Request, Response, TxId};

fn request() -> impl Strategy<Value = Request> {
    let txid = any::<[u8; 16]>().prop_map(TxId::from_bytes);
    prop_oneof![
        Just(Request::Balance {}),
        Just(Request::Logout {}),
        (txid.clone(), any::<u64>()).prop_map(|(txid, c)| Request::Deposit {
            txid,
            amount_cents: Cents(c)
        }),
        (txid, any::<u64>()).prop_map(|(txid, c)| Request::Withdraw {
            txid,
            amount_cents: Cents(c)
        }),
        any::<u32>().prop_map(|limit| Request::History { limit }),
        ("[a-z0-9_.-]{1,40}", "\\PC{1,200}").prop_map(|(u, p)| Request::Login {
            username: protocol::Username::new(u).unwrap(),
            password: protocol::Password::new(p).unwrap(),
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_request_round_trips(seed in any::<u64>(), reqs in proptest::collection::vec(request(), 1..8)) {
        let (mut atm, mut bank) = established(&mut rng(seed));
        let mut r = rng(seed ^ 1);
        for req in reqs {
            let wire = atm.seal(&req, &mut r, NOW).unwrap();
            prop_assert_eq!(bank.open(wire.as_bytes(), NOW).unwrap(), req);
            let resp = Response::Balance { balance_cents: Cents(seed) };
            let wire = bank.seal(&resp, &mut r, NOW).unwrap();
            prop_assert_eq!(atm.open(wire.as_bytes(), NOW).unwrap(), resp);
        }
    }

    #[test]
    fn any_bit_flip_in_a_record_is_refused(seed in any::<u64>(), req in request(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (mut atm, mut bank) = established(&mut rng(seed));
        let mut wire = atm.seal(&req, &mut rng(seed ^ 2), NOW).unwrap().into_bytes();
        let i = pos.index(wire.len());
        wire[i] ^= 1 << bit;
        prop_assert!(matches!(bank.open(&wire, NOW), Err(Error::BadRecord(_))));
    }

    #[test]
    fn any_truncation_or_extension_is_refused(seed in any::<u64>(), req in request(), cut in any::<prop::sample::Index>(), junk in "\\PC{1,8}") {
        let (mut atm, _) = established(&mut rng(seed));
        let wire = atm.seal(&req, &mut rng(seed ^ 3), NOW).unwrap();
        let (_, mut bank) = established(&mut rng(seed));
        let cut = cut.index(wire.len());
        prop_assert!(bank.open(&wire.as_bytes()[..cut], NOW).is_err());
        let (_, mut bank) = established(&mut rng(seed));
        // Appending anything but JSON whitespace after the object is refused.
        prop_assume!(!junk.trim().is_empty());
        let extended = format!("{wire}{junk}");
        prop_assert!(bank.open(extended.as_bytes(), NOW).is_err());
    }

    #[test]
    fn replays_reorders_and_drops_are_refused(seed in any::<u64>(), n in 2usize..6, order in any::<prop::sample::Index>(), target in any::<prop::sample::Index>()) {
        let (mut atm, mut bank) = established(&mut rng(seed));
        let mut r = rng(seed ^ 4);
        let wires: Vec<String> = (0..n).map(|_| atm.seal(&Request::Balance {}, &mut r, NOW).unwrap()).collect();
        let delivered = order.index(n);
        for w in &wires[..delivered] {
            prop_assert!(bank.open(w.as_bytes(), NOW).is_ok());
        }
        // Anything but the next record — an earlier one (replay) or a later one (drop/reorder).
        let pick = target.index(n);
        prop_assume!(pick != delivered);
        prop_assert!(matches!(bank.open(wires[pick].as_bytes(), NOW), Err(Error::BadRecord(_))));
    }

    #[test]
    fn any_bit_flip_in_any_handshake_message_fails_the_handshake(seed in any::<u64>(), which in 0usize..3, pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let atm = terminal();
        let flights = [Flight::ClientHello, Flight::ServerHello, Flight::ClientFinished];
        let res = handshake_with(&Config::default(), &atm, known(&atm), &mut rng(seed), NOW, NOW, |f, m| {
            if f == flights[which] {
                let i = pos.index(m.len());
                m[i] ^= 1 << bit;
            }
        });
        prop_assert!(res.is_err());
    }
}
