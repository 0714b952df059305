//! Concurrency against a real bank: racing withdrawals never overdraw, and under parallel
//! deposits and withdrawals every balance equals the sum of its acknowledged transactions.

mod common;

use std::sync::Arc;

use common::*;
use protocol::{ErrorCode, Request, Response};
use tokio::sync::Barrier;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_racing_withdrawals_of_60_against_100_exactly_one_wins() {
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    let mut owner = registered(&bank, "alice").await;
    assert!(matches!(
        owner.call(&deposit_req(10_000)).await.unwrap(),
        Response::Deposited { .. }
    ));

    let mut sessions = Vec::new();
    for _ in 0..50 {
        sessions.push(logged_in(&bank, "alice").await);
    }
    let barrier = Arc::new(Barrier::new(sessions.len()));
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut client| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let request = withdraw_req(6_000);
                let sealed = client.seal(&request).unwrap();
                barrier.wait().await;
                client.conn().send_text(sealed).await.unwrap();
                let reply = client.conn().recv_text().await.unwrap();
                client.open(&reply).unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Response::Withdrawn { balance_cents, .. } => {
                assert_eq!(balance_cents.0, 4_000);
                won += 1;
            }
            Response::Error {
                code: ErrorCode::InsufficientFunds,
            } => {}
            other => panic!("unexpected reply {other:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one withdrawal of 60.00 fits in 100.00");
    assert_eq!(balance(&mut owner).await, 4_000);
    let Response::History { entries } = owner.call(&Request::History { limit: 25 }).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(entries.len(), 2);
    let config = bank.config.clone();
    bank.stop().await;

    // The auditor sees the one withdrawal and the 49 refusals, each with its amount and
    // reason, as `audit show` prints them.
    let ledger = bank_server::store::open_existing(&config.storage, &config.data_dir).unwrap();
    let key = bank_server::admin::read_audit_keys(&config.audit_key_file).unwrap();
    let events = bank_server::admin::verify_audit(&*ledger, &key).unwrap();
    let shown: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(seq, e)| bank_server::admin::format_event(seq, e))
        .collect();
    let withdrawn = shown
        .iter()
        .filter(|l| l.contains(" withdraw user="))
        .count();
    let declined: Vec<&String> = shown
        .iter()
        .filter(|l| l.contains(" withdraw_declined "))
        .collect();
    assert_eq!(withdrawn, 1, "{shown:#?}");
    assert_eq!(declined.len(), 49, "{shown:#?}");
    for line in declined {
        assert!(
            line.contains("user=alice")
                && line.contains("amount=60.00")
                && line.ends_with("detail=insufficient_funds"),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_traffic_on_many_accounts_adds_up() {
    const ACCOUNTS: usize = 6;
    const SESSIONS_PER_ACCOUNT: usize = 3;
    const OPS: u64 = 20;
    let dir = temp();
    let bank = TestBank::in_dir(dir.path()).await;
    for a in 0..ACCOUNTS {
        drop(registered(&bank, &format!("user{a}")).await);
    }
    let mut tasks = Vec::new();
    for a in 0..ACCOUNTS {
        for s in 0..SESSIONS_PER_ACCOUNT {
            let mut client = logged_in(&bank, &format!("user{a}")).await;
            tasks.push(tokio::spawn(async move {
                // Net effect of what the bank acknowledged, in cents.
                let mut net: i128 = 0;
                for op in 0..OPS {
                    let amount = (op * 7_919 + s as u64 * 104_729 + a as u64 * 31) % 5_000 + 1;
                    let request = if (op + s as u64) % 3 == 0 {
                        withdraw_req(amount)
                    } else {
                        deposit_req(amount)
                    };
                    match client.call(&request).await.unwrap() {
                        Response::Deposited { amount_cents, .. } => {
                            net += i128::from(amount_cents.0)
                        }
                        Response::Withdrawn { amount_cents, .. } => {
                            net -= i128::from(amount_cents.0)
                        }
                        Response::Error {
                            code: ErrorCode::InsufficientFunds,
                        } => {}
                        other => panic!("unexpected reply {other:?}"),
                    }
                }
                client.close().await.unwrap();
                (a, net)
            }));
        }
    }
    let mut expected = [0i128; ACCOUNTS];
    for task in tasks {
        let (a, net) = task.await.unwrap();
        expected[a] += net;
    }
    for (a, want) in expected.iter().enumerate() {
        let mut client = logged_in(&bank, &format!("user{a}")).await;
        assert_eq!(i128::from(balance(&mut client).await), *want, "user{a}");
        client.close().await.unwrap();
    }
    // The console's running totals, moved by each batch the writer committed, agree.
    let now = atm_client::now_ms();
    let totals = bank.bank.ledger().totals(now, 0, 60).unwrap();
    assert_eq!(totals.accounts, ACCOUNTS as u64);
    assert_eq!(
        i128::try_from(totals.deposits_cents).unwrap(),
        expected.iter().sum::<i128>()
    );
    bank.stop().await;
}
