//! Fuzz target: a real bank in process (rules, sled store in a temp directory, injected clock)
//! driven through whole sessions chosen by the fuzzer, with invariants checked after every step.
//!
//! The input decodes (`arbitrary`) into a script over two ATMs (one with the default deposit
//! ceilings, one without), an operator's console and a terminal the bank does not know:
//! handshakes (genuine or tampered), sealed requests (register, login, deposit and withdraw
//! with transaction ids from a small set, so retries happen, balance, history, logout, the
//! console's requests, revoking a terminal), tampered and replayed records, clock advances and
//! dropped sessions. A model kept here checks, after every step: each balance is the sum of the
//! movements the bank accepted and equals the stored one, a withdrawal beyond the balance is
//! refused, a (account, txid) is applied at most once and a retry under it gets the first
//! result, a wrong password, an unknown or revoked terminal and a tampered or replayed record
//! never get in, and the audit chain links. Deterministic: the terminals' randomness is a
//! seeded ChaCha, the bank's clock is a counter (the bank's own nonces and IVs are random, and
//! decide nothing the script checks).
#![no_main]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod bank;

use arbitrary::Arbitrary;
use bank::{runtime, temp_dir, ARGON2};
use bank_server::testing::Connection;
use bank_server::{admin, Bank};
use libfuzzer_sys::fuzz_target;
use protocol::{
    client, AccountNumber, BankPin, Cents, ClientSession, ErrorCode, FullName, Password, Psk,
    Request, Response, TerminalId, TerminalName, TxId, Username,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

const OPERATOR: &str = "operator";
const OPERATOR_PASSWORD: &str = "operator-password";
const PASSWORDS: [&str; 3] = ["password-0", "password-1", "password-2"];
const USERS: usize = 3;
const SLOTS: usize = 4;

/// Which terminal a connection claims to be.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Who {
    /// An ATM without deposit ceilings.
    Atm,
    /// An ATM with the default ceilings.
    CeilingAtm,
    /// The operator's console.
    Console,
    /// An ATM id the bank does not know.
    Unknown,
    /// The first ATM's id with a wrong key.
    WrongKey,
}

/// A part of a handshake message to damage.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Tamper {
    None,
    Hello { at: u16, bit: u8 },
    Finished { at: u16, bit: u8 },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Req {
    Register { user: u8, password: u8 },
    Login { user: u8, password: u8 },
    Deposit { txid: u8, cents: u32 },
    Withdraw { txid: u8, cents: u32 },
    Balance,
    History { limit: u8 },
    Logout,
    OperatorLogin { wrong: bool },
    Overview,
    Audit,
    Terminals,
    AddTerminal { ceiling: Option<u16> },
    Revoke { who: Who },
    ChangePassword { wrong: bool, new: u8 },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Step {
    Connect {
        slot: u8,
        who: Who,
        tamper: Tamper,
    },
    Send {
        slot: u8,
        req: Req,
    },
    /// A request whose record is damaged at one bit before the bank sees it.
    Tampered {
        slot: u8,
        req: Req,
        at: u16,
        bit: u8,
    },
    /// The slot's last record again.
    Replay {
        slot: u8,
    },
    /// A record sealed for one slot delivered to another.
    CrossWire {
        from: u8,
        to: u8,
    },
    Advance {
        ms: u32,
        days: bool,
    },
    Drop {
        slot: u8,
    },
}

/// A terminal of the bank, as a terminal holds it.
struct Terminal {
    id: TerminalId,
    psk: Psk,
}

/// One open connection: the bank's end, the terminal's session, who is logged in on it.
struct Open {
    bank: Connection,
    atm: ClientSession,
    who: Who,
    user: Option<usize>,
    /// How many times the user's password had changed when they logged in here.
    logged_in_at: u32,
    last: Option<String>,
}

/// What the script expects of the bank.
#[derive(Default)]
struct Model {
    /// Each registered user's account and balance: the sum of its accepted movements.
    accounts: HashMap<usize, (AccountNumber, u64)>,
    /// The password each user has.
    passwords: HashMap<usize, usize>,
    /// (user, txid) → (is a deposit, amount) of the movement applied under it.
    applied: HashMap<(usize, u8), (bool, u64)>,
    /// How many times each user's password changed.
    changes: HashMap<usize, u32>,
    /// Terminals revoked by the console.
    revoked: HashSet<u8>,
    /// How many audit entries linked at the last check.
    audit_entries: u64,
}

struct World {
    bank: Bank,
    clock: Arc<AtomicU64>,
    pin: BankPin,
    atm: Terminal,
    ceiling_atm: Terminal,
    console: Terminal,
    rng: ChaCha20Rng,
    slots: Vec<Option<Open>>,
    model: Model,
    _dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        let dir = temp_dir();
        let (config, clock) = bank::config(dir.path());
        let bank = bank_server::open(config.clone()).expect("the bank opens");
        let auth = protocol::auth_file::AuthFile::parse(
            &std::fs::read_to_string(&config.auth_file).expect("the auth file"),
        )
        .expect("the bank's auth file parses");
        let ceiling = admin::add_terminal(bank.ledger(), "ceilings").expect("a terminal");
        let console = admin::add_operator(bank.ledger(), &ARGON2, OPERATOR, OPERATOR_PASSWORD)
            .expect("an operator");
        let mut world = Self {
            pin: bank.pin(),
            bank,
            clock,
            atm: Terminal {
                id: auth.terminal_id,
                psk: auth.psk,
            },
            ceiling_atm: Terminal {
                id: ceiling.id,
                psk: ceiling.psk,
            },
            console: Terminal {
                id: console.id,
                psk: console.psk,
            },
            rng: ChaCha20Rng::seed_from_u64(17),
            slots: (0..SLOTS).map(|_| None).collect(),
            model: Model::default(),
            _dir: dir,
        };
        world.check();
        world
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn terminal(&mut self, who: Who) -> (TerminalId, Psk) {
        match who {
            Who::Atm => (self.atm.id.clone(), self.atm.psk.clone()),
            Who::CeilingAtm => (self.ceiling_atm.id.clone(), self.ceiling_atm.psk.clone()),
            Who::Console => (self.console.id.clone(), self.console.psk.clone()),
            Who::Unknown => (
                TerminalId::new(format!("unknown-{}", self.rng.next_u32())).unwrap(),
                Psk::random(&mut self.rng),
            ),
            Who::WrongKey => (self.atm.id.clone(), Psk::random(&mut self.rng)),
        }
    }

    /// Whether `who` is a terminal the bank should let in.
    fn admitted(&self, who: Who) -> bool {
        let key = who_key(who);
        matches!(who, Who::Atm | Who::CeilingAtm | Who::Console)
            && !self.model.revoked.contains(&key)
    }

    async fn connect(&mut self, slot: usize, who: Who, tamper: Tamper) {
        self.slots[slot] = None;
        let (id, psk) = self.terminal(who);
        let now = self.now();
        let config = protocol::Config::default();
        let (state, hello) =
            client::start(&config, id, &psk, &self.pin, &mut self.rng, now).expect("a hello");
        let mut bank = self.bank.connect();
        let hello = match tamper {
            Tamper::Hello { at, bit } => flip(&hello, at, bit),
            _ => Some(hello),
        };
        let Some(hello) = hello else { return };
        let tampered = !matches!(tamper, Tamper::None);
        let Ok(server_hello) = bank.hello(&hello).await else {
            assert!(tampered, "a genuine hello is answered ({who:?})");
            return;
        };
        let Ok((atm, finished)) = state.read_server_hello(server_hello.as_bytes(), now) else {
            // The bank proves its key whoever the terminal claims to be; a terminal it does not
            // know fails on the key it does not share.
            assert!(
                tampered || !self.admitted(who),
                "an admitted terminal completes the handshake ({who:?})"
            );
            return;
        };
        assert!(
            self.admitted(who) || tampered,
            "only a terminal with its key gets the bank's finished ({who:?})"
        );
        let finished = match tamper {
            Tamper::Finished { at, bit } => flip(&finished, at, bit),
            _ => Some(finished),
        };
        let Some(finished) = finished else { return };
        match bank.finished(&finished).await {
            Ok(()) => {
                assert!(
                    self.admitted(who) && !matches!(tamper, Tamper::Finished { .. }),
                    "a session opened for {who:?} with {tamper:?}"
                );
                self.slots[slot] = Some(Open {
                    bank,
                    atm,
                    who,
                    user: None,
                    logged_in_at: 0,
                    last: None,
                });
            }
            Err(_) => assert!(tampered, "a genuine client_finished is accepted ({who:?})"),
        }
    }

    fn request(&self, req: Req, user: Option<usize>) -> (Request, Option<usize>) {
        let name = |u: u8| usize::from(u) % USERS;
        let username = |u: usize| Username::new(format!("user{u}")).expect("a username");
        let password = |p: u8| Password::new(PASSWORDS[usize::from(p) % PASSWORDS.len()]).unwrap();
        let txid = |t: u8| TxId::from_bytes([t % 6; 16]);
        match req {
            Req::Register { user, password: p } => (
                Request::Register {
                    username: username(name(user)),
                    full_name: FullName::new(format!("User {}", name(user))).unwrap(),
                    password: password(p),
                },
                Some(name(user)),
            ),
            Req::Login { user, password: p } => (
                Request::Login {
                    username: username(name(user)),
                    password: password(p),
                },
                Some(name(user)),
            ),
            Req::Deposit { txid: t, cents } => (
                Request::Deposit {
                    txid: txid(t),
                    amount_cents: Cents(u64::from(cents)),
                },
                user,
            ),
            Req::Withdraw { txid: t, cents } => (
                Request::Withdraw {
                    txid: txid(t),
                    amount_cents: Cents(u64::from(cents)),
                },
                user,
            ),
            Req::Balance => (Request::Balance {}, user),
            Req::History { limit } => (
                Request::History {
                    limit: u32::from(limit),
                },
                user,
            ),
            Req::Logout => (Request::Logout {}, user),
            Req::OperatorLogin { wrong } => (
                Request::OperatorLogin {
                    username: Username::new(OPERATOR).unwrap(),
                    password: Password::new(if wrong {
                        "not-the-password"
                    } else {
                        OPERATOR_PASSWORD
                    })
                    .unwrap(),
                },
                user,
            ),
            Req::Overview => (Request::ConsoleOverview {}, user),
            Req::Audit => (Request::ConsoleAudit {}, user),
            Req::Terminals => (Request::ConsoleTerminals {}, user),
            Req::AddTerminal { ceiling } => (
                Request::AddTerminal {
                    name: TerminalName::new("fuzzed").unwrap(),
                    max_deposit_cents: ceiling.map(|c| Cents(u64::from(c))),
                    max_deposit_per_day_cents: None,
                },
                user,
            ),
            Req::Revoke { who: target } => (
                Request::RevokeTerminal {
                    terminal: match target {
                        Who::CeilingAtm => self.ceiling_atm.id.clone(),
                        Who::Console => self.console.id.clone(),
                        _ => self.atm.id.clone(),
                    },
                },
                user,
            ),
            Req::ChangePassword { wrong, new } => {
                // The right old password: the logged-in user's, or else the operator's.
                let old = match user.and_then(|u| self.model.passwords.get(&u)) {
                    _ if wrong => "not-the-password",
                    Some(p) => PASSWORDS[*p],
                    None => OPERATOR_PASSWORD,
                };
                (
                    Request::ChangePassword {
                        old: Password::new(old).unwrap(),
                        new: password(new),
                    },
                    user,
                )
            }
        }
    }

    async fn send(&mut self, slot: usize, req: Req, tamper: Option<(u16, u8)>) {
        let Some(open) = self.slots[slot].as_mut() else {
            return;
        };
        let now = self.clock.load(Ordering::SeqCst);
        let (who, user) = (open.who, open.user);
        let (request, target) = self.request(req, user);
        let open = self.slots[slot].as_mut().expect("open");
        let sealed = open
            .atm
            .seal(&request, &mut self.rng, now)
            .expect("a request seals");
        let sent = match tamper {
            Some((at, bit)) => match flip(&sealed, at, bit) {
                Some(damaged) => damaged,
                None => return,
            },
            None => sealed.clone(),
        };
        open.last = Some(sent.clone());
        let logged_in_at = open.logged_in_at;
        let result = open.bank.record(&sent).await;
        if tamper.is_some() {
            assert!(result.is_err(), "a damaged record is refused");
            self.slots[slot] = None;
            return;
        }
        let reply = match result {
            Ok(reply) => reply,
            Err(closed) => {
                // Only a revoked terminal or a replaced credential ends a genuine record.
                let replaced = user.is_some_and(|u| {
                    self.model.changes.get(&u).copied().unwrap_or(0) != logged_in_at
                });
                assert!(
                    self.model.revoked.contains(&who_key(who))
                        || replaced
                        || matches!(who, Who::Console),
                    "a genuine record closed the session ({closed:?}) of {who:?}"
                );
                self.slots[slot] = None;
                return;
            }
        };
        let open = self.slots[slot].as_mut().expect("open");
        let response = open
            .atm
            .open(reply.sealed.as_bytes(), now)
            .expect("the bank's answer opens");
        self.judge(slot, req, &request, target, response);
        if reply.closes {
            self.slots[slot] = None;
        }
    }

    /// Checks one answer against the model, and moves the model.
    fn judge(
        &mut self,
        slot: usize,
        req: Req,
        request: &Request,
        target: Option<usize>,
        response: Response,
    ) {
        let who = self.slots[slot].as_ref().expect("open").who;
        let console = matches!(who, Who::Console);
        if request.is_console() != console && !request.is_for_both() {
            assert_eq!(
                response,
                Response::Error {
                    code: ErrorCode::NotAllowed
                }
            );
            return;
        }
        match (req, response) {
            (
                Req::Register { password, .. },
                Response::Welcome {
                    account,
                    balance_cents,
                    ..
                },
            ) => {
                let user = target.expect("a user");
                assert!(
                    !self.model.accounts.contains_key(&user),
                    "user{user} registered twice"
                );
                assert_eq!(balance_cents, Cents::ZERO);
                self.model.accounts.insert(user, (account, 0));
                self.model
                    .passwords
                    .insert(user, usize::from(password) % PASSWORDS.len());
                self.logged_in(slot, user);
            }
            (
                Req::Login { password, .. },
                Response::Welcome {
                    account,
                    balance_cents,
                    ..
                },
            ) => {
                let user = target.expect("a user");
                let (known, balance) = self
                    .model
                    .accounts
                    .get(&user)
                    .expect("a login to an account that exists");
                assert_eq!(*known, account);
                assert_eq!(balance_cents.0, *balance);
                assert_eq!(
                    self.model.passwords.get(&user),
                    Some(&(usize::from(password) % PASSWORDS.len())),
                    "a wrong password logged in"
                );
                self.logged_in(slot, user);
            }
            (Req::Deposit { txid, cents } | Req::Withdraw { txid, cents }, response) => {
                let deposit = matches!(req, Req::Deposit { .. });
                let Some(user) = target else {
                    assert_eq!(
                        response,
                        Response::Error {
                            code: ErrorCode::NotLoggedIn
                        }
                    );
                    return;
                };
                let key = (user, txid % 6);
                let cents = u64::from(cents);
                let balance = self.model.accounts[&user].1;
                match response {
                    Response::Deposited {
                        amount_cents,
                        balance_cents,
                        ..
                    }
                    | Response::Withdrawn {
                        amount_cents,
                        balance_cents,
                        ..
                    } => {
                        assert_eq!(matches!(response, Response::Deposited { .. }), deposit);
                        assert_eq!(amount_cents.0, cents);
                        if let Some(first) = self.model.applied.get(&key) {
                            assert_eq!(*first, (deposit, cents), "a retry got another movement");
                        } else {
                            let after = if deposit {
                                balance.checked_add(cents).expect("no overflow accepted")
                            } else {
                                balance
                                    .checked_sub(cents)
                                    .expect("no withdrawal below zero")
                            };
                            assert_eq!(balance_cents.0, after);
                            self.model.accounts.get_mut(&user).unwrap().1 = after;
                            self.model.applied.insert(key, (deposit, cents));
                        }
                    }
                    Response::Error { code } => match code {
                        ErrorCode::TxIdReused => {
                            let first = self
                                .model
                                .applied
                                .get(&key)
                                .expect("a reused txid was used");
                            assert_ne!(*first, (deposit, cents));
                        }
                        ErrorCode::InsufficientFunds => {
                            assert!(
                                !deposit
                                    && cents > balance
                                    && !self.model.applied.contains_key(&key)
                            );
                        }
                        ErrorCode::AmountInvalid => assert_eq!(cents, 0),
                        ErrorCode::DepositLimit => {
                            assert!(deposit && matches!(who, Who::CeilingAtm))
                        }
                        ErrorCode::LimitExceeded | ErrorCode::Busy => {}
                        other => panic!("a movement refused with {other:?}"),
                    },
                    other => panic!("a movement answered {other:?}"),
                }
            }
            (Req::Balance, Response::Balance { balance_cents }) => {
                let user = target.expect("logged in");
                assert_eq!(balance_cents.0, self.model.accounts[&user].1);
            }
            (Req::Revoke { who: target }, Response::TerminalRevoked { .. }) => {
                self.model.revoked.insert(who_key(target));
            }
            (Req::ChangePassword { wrong, new }, Response::PasswordChanged { .. }) => {
                assert!(!wrong, "a wrong old password changed a password");
                if let Some(user) = target {
                    *self.model.changes.entry(user).or_default() += 1;
                    self.model
                        .passwords
                        .insert(user, usize::from(new) % PASSWORDS.len());
                    // The session that changed it stays logged in.
                    self.logged_in(slot, user);
                } else {
                    // The operator's: this script keeps logging in with the old one, and is
                    // refused from now on.
                    self.model.revoked.insert(OPERATOR_CHANGED);
                }
            }
            (
                Req::Login { password, .. },
                Response::Error {
                    code: ErrorCode::AuthFailed,
                },
            ) => {
                let user = target.expect("a user");
                let right = self.model.passwords.get(&user)
                    == Some(&(usize::from(password) % PASSWORDS.len()));
                assert!(!right, "the right password was refused");
            }
            (Req::OperatorLogin { wrong: false }, Response::OperatorWelcome { .. }) => {
                assert!(
                    !self.model.revoked.contains(&OPERATOR_CHANGED),
                    "an old password logged in"
                );
            }
            (Req::OperatorLogin { wrong: true }, Response::OperatorWelcome { .. }) => {
                panic!("a wrong operator password logged in")
            }
            _ => {}
        }
    }

    fn logged_in(&mut self, slot: usize, user: usize) {
        let at = self.model.changes.get(&user).copied().unwrap_or(0);
        let open = self.slots[slot].as_mut().expect("open");
        open.user = Some(user);
        open.logged_in_at = at;
    }

    async fn replay(&mut self, slot: usize) {
        let Some(open) = self.slots[slot].as_mut() else {
            return;
        };
        let Some(last) = open.last.clone() else {
            return;
        };
        assert!(
            open.bank.record(&last).await.is_err(),
            "a replayed record is refused"
        );
        self.slots[slot] = None;
    }

    async fn cross_wire(&mut self, from: usize, to: usize) {
        if from == to {
            return;
        }
        let Some(last) = self.slots[from].as_ref().and_then(|o| o.last.clone()) else {
            return;
        };
        let Some(open) = self.slots[to].as_mut() else {
            return;
        };
        assert!(
            open.bank.record(&last).await.is_err(),
            "another session's record is refused"
        );
        self.slots[to] = None;
    }

    /// The invariants that hold after every step.
    fn check(&mut self) {
        let ledger = self.bank.ledger();
        for (user, (account, balance)) in &self.model.accounts {
            let stored = ledger.balance(account).expect("a balance");
            assert_eq!(
                stored.0, *balance,
                "user{user}'s balance is not the sum of its movements"
            );
        }
        let linked = ledger
            .check_audit_links()
            .expect("the audit log reads")
            .expect("the audit chain links");
        assert!(linked >= self.model.audit_entries, "the audit chain shrank");
        self.model.audit_entries = linked;
    }

    async fn step(&mut self, step: Step) {
        let slot = |s: u8| usize::from(s) % SLOTS;
        match step {
            Step::Connect {
                slot: s,
                who,
                tamper,
            } => self.connect(slot(s), who, tamper).await,
            Step::Send { slot: s, req } => self.send(slot(s), req, None).await,
            Step::Tampered {
                slot: s,
                req,
                at,
                bit,
            } => self.send(slot(s), req, Some((at, bit))).await,
            Step::Replay { slot: s } => self.replay(slot(s)).await,
            Step::CrossWire { from, to } => self.cross_wire(slot(from), slot(to)).await,
            Step::Advance { ms, days } => {
                let by = if days {
                    u64::from(ms % 3) * 86_400_000
                } else {
                    u64::from(ms % 600_000)
                };
                self.clock.fetch_add(by, Ordering::SeqCst);
            }
            Step::Drop { slot: s } => self.slots[slot(s)] = None,
        }
        self.check();
    }
}

/// A key in [`Model::revoked`]: a terminal revoked, or the operator's password changed.
const OPERATOR_CHANGED: u8 = 255;

fn who_key(who: Who) -> u8 {
    match who {
        Who::CeilingAtm => 1,
        Who::Console => 2,
        _ => 0,
    }
}

/// `text` with one bit flipped (at a position within it), or `None` when the flip leaves no
/// valid UTF-8 (a WebSocket text frame could not carry it).
fn flip(text: &str, at: u16, bit: u8) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    let at = usize::from(at) % bytes.len();
    bytes[at] ^= 1 << (bit % 7);
    String::from_utf8(bytes).ok()
}

fuzz_target!(|steps: Vec<Step>| {
    if steps.len() > 64 {
        return;
    }
    runtime().block_on(async {
        let mut world = World::new();
        for step in steps {
            world.step(step).await;
        }
    });
});
