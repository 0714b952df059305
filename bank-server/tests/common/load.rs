//! A load session for the tests that kill a bank under load: deposits and withdrawals on one
//! client, each acknowledgement (and the request in flight) remembered.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use atm_client::Client;
use protocol::{Request, Response};

use super::{deposit_req, withdraw_req};

/// What one load session saw acknowledged.
#[derive(Default)]
pub struct Acked {
    pub opening: u64,
    /// (request, the balance the bank acknowledged after it)
    pub done: Vec<(Request, u64)>,
    pub in_flight: Option<Request>,
}

impl Acked {
    /// Opening plus what was acknowledged.
    pub fn expected(&self) -> i128 {
        i128::from(self.opening) + self.done.iter().map(|(r, _)| signed(r)).sum::<i128>()
    }
}

/// A deposit's amount, or a withdrawal's negated.
pub fn signed(request: &Request) -> i128 {
    match request {
        Request::Deposit { amount_cents, .. } => i128::from(amount_cents.0),
        Request::Withdraw { amount_cents, .. } => -i128::from(amount_cents.0),
        _ => unreachable!(),
    }
}

/// Alternates deposits and withdrawals on `client` (an account holding `opening`) until the
/// bank stops answering or `stop` is set, counting each acknowledgement in `counter`.
pub async fn run(
    mut client: Client,
    opening: u64,
    counter: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Acked {
    let mut acked = Acked {
        opening,
        ..Acked::default()
    };
    for op in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let request = if op % 2 == 0 {
            deposit_req(500 + op % 97)
        } else {
            withdraw_req(200 + op % 89)
        };
        acked.in_flight = Some(request.clone());
        let balance = match client.call(&request).await {
            Ok(
                Response::Deposited { balance_cents, .. }
                | Response::Withdrawn { balance_cents, .. },
            ) => balance_cents.0,
            Ok(other) => panic!("unexpected reply {other:?}"),
            Err(_) => break, // the bank died
        };
        acked.in_flight = None;
        acked.done.push((request, balance));
        counter.fetch_add(1, Ordering::Relaxed);
    }
    acked
}
