//! A man in the middle between the `atm` and a real bank: a WebSocket proxy on 127.0.0.1 that
//! sees every frame and flips bytes in, drops, duplicates, reorders, replays or cuts them. The
//! atm must exit 63 (nothing on stdout) and no balance may change other than by exactly the
//! operation the atm asked for.
//!
//! The main proxy ends the WebSocket on both sides and re-frames what it forwards, so a flipped
//! byte is a flipped byte of the message the peer reads. A second, TCP-level proxy
//! ([`wire_proxy`]) flips bits in the raw frames, under the client's WebSocket mask (a public
//! XOR, so the same bit flips in what the bank reads): integrity comes from the protocol's MAC
//! alone. Frames are counted per direction from 1: up (atm to bank) 1 = client_hello,
//! 2 = client_finished, 3 = card_login or open_card_account, 4 = the operation; down (bank to
//! atm) 1 = server_hello, 2 = welcome or account_opened, 3 = the operation's answer.

mod common;

use std::sync::{Arc, Mutex};

use common::{line, Env, Run};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// atm to bank.
    Up,
    /// bank to atm.
    Down,
}

/// What the man in the middle does. Frame numbers count text frames per direction from 1.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// Forward everything unchanged.
    Pass,
    /// XOR 0x01 into the byte at `permille`/1000 of the frame's length.
    Flip {
        dir: Dir,
        frame: usize,
        permille: usize,
    },
    /// Swallow the frame.
    Drop { dir: Dir, frame: usize },
    /// Forward the frame twice.
    Duplicate { dir: Dir, frame: usize },
    /// Hold the frame and forward it after the next one.
    Swap { dir: Dir, frame: usize },
    /// Close both connections instead of forwarding the frame.
    Cut { dir: Dir, frame: usize },
    /// Answer the atm with the bank's frames recorded on an earlier connection.
    OldAnswers { from_conn: usize },
}

/// Every text frame the proxy saw, per connection.
#[derive(Clone, Debug, Default)]
struct Seen {
    up: Vec<String>,
    down: Vec<String>,
}

struct Proxy {
    port: u16,
    /// The plan, and the one connection it applies to (`None`: every connection).
    plan: Arc<Mutex<(Plan, Option<usize>)>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    async fn start(bank_port: u16, plan: Plan) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let plan = Arc::new(Mutex::new((plan, None)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (p, s) = (plan.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let conn = {
                    let mut seen = s.lock().unwrap();
                    seen.push(Seen::default());
                    seen.len() - 1
                };
                let plan = match *p.lock().unwrap() {
                    (plan, None) => plan,
                    (plan, Some(only)) if only == conn => plan,
                    _ => Plan::Pass,
                };
                tokio::spawn(relay(stream, bank_port, plan, s.clone(), conn));
            }
        });
        Self { port, plan, seen }
    }

    fn set(&self, plan: Plan) {
        *self.plan.lock().unwrap() = (plan, None);
    }

    /// Applies `plan` to the next connection only; later ones pass.
    fn set_once(&self, plan: Plan) {
        let next = self.seen.lock().unwrap().len();
        *self.plan.lock().unwrap() = (plan, Some(next));
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Runs the atm in `env`'s directory through this proxy.
    async fn atm(&self, env: &Env, args: &[&str]) -> Run {
        let port = self.port.to_string();
        let mut all = args.to_vec();
        all.extend(["-p", &port]);
        env.atm_raw(&all).await
    }

    /// Runs the atm through the proxy and requires exit 63 with nothing on stdout.
    async fn fails(&self, env: &Env, args: &[&str]) {
        let run = self.atm(env, args).await;
        let plan = self.plan.lock().unwrap().0;
        assert_eq!(run.code, 63, "{plan:?} atm {args:?}: {run:?}");
        assert_eq!(run.stdout, "", "{plan:?} atm {args:?}");
    }
}

/// One proxied connection: the atm's WebSocket in, a fresh WebSocket to the bank out.
async fn relay(
    atm: tokio::net::TcpStream,
    bank_port: u16,
    plan: Plan,
    seen: Arc<Mutex<Vec<Seen>>>,
    conn: usize,
) {
    let Ok(atm) = tokio_tungstenite::accept_async(atm).await else {
        return;
    };
    let url = format!("ws://127.0.0.1:{bank_port}/ws");
    let Ok((bank, _)) = tokio_tungstenite::connect_async(url).await else {
        return;
    };
    let (mut atm_tx, mut atm_rx) = atm.split();
    let (mut bank_tx, mut bank_rx) = bank.split();
    let mut count = [0usize; 2];
    let mut held: [Option<String>; 2] = [None, None];
    loop {
        let (dir, next) = tokio::select! {
            m = atm_rx.next() => (Dir::Up, m),
            m = bank_rx.next() => (Dir::Down, m),
        };
        let text = match next {
            Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            // A close, a binary frame, an error or the end: drop both connections.
            _ => return,
        };
        let i = dir as usize;
        count[i] += 1;
        let n = count[i];
        {
            let mut seen = seen.lock().unwrap();
            let log = &mut seen[conn];
            match dir {
                Dir::Up => log.up.push(text.clone()),
                Dir::Down => log.down.push(text.clone()),
            }
        }
        let out = match plan {
            Plan::Flip {
                dir: d,
                frame,
                permille,
            } if d == dir && frame == n => {
                let mut bytes = text.into_bytes();
                let at = (bytes.len() * permille / 1000).min(bytes.len() - 1);
                bytes[at] ^= 0x01;
                vec![String::from_utf8(bytes).expect("ASCII stays ASCII")]
            }
            Plan::Drop { dir: d, frame } if d == dir && frame == n => vec![],
            Plan::Duplicate { dir: d, frame } if d == dir && frame == n => {
                vec![text.clone(), text]
            }
            Plan::Swap { dir: d, frame } if d == dir && frame == n => {
                held[i] = Some(text);
                vec![]
            }
            Plan::Swap { dir: d, frame } if d == dir && frame + 1 == n => {
                vec![text, held[i].take().expect("held frame")]
            }
            Plan::Cut { dir: d, frame } if d == dir && frame == n => return,
            Plan::OldAnswers { from_conn } if dir == Dir::Down => {
                let old = seen.lock().unwrap()[from_conn].down.get(n - 1).cloned();
                vec![old.unwrap_or(text)]
            }
            _ => vec![text],
        };
        for text in out {
            let sent = match dir {
                Dir::Up => bank_tx.send(Message::text(text)).await,
                Dir::Down => atm_tx.send(Message::text(text)).await,
            };
            if sent.is_err() {
                return;
            }
        }
    }
}

const POSITIONS: [usize; 5] = [0, 250, 500, 750, 999];

/// A bank with `victim` holding 100.00, and a proxy in front of it.
async fn setup(plan: Plan) -> (Env, Proxy) {
    let env = Env::start().await;
    env.open("victim", "100.00").await;
    let proxy = Proxy::start(env.port, plan).await;
    (env, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_proxy_passes_everything_and_sees_nothing_useful() {
    let (env, proxy) = setup(Plan::Pass).await;
    let run = proxy
        .atm(&env, &["-a", "other", "-n", "12.34", "-c", "other.card"])
        .await;
    assert_eq!(
        (run.code, run.stdout),
        (
            0,
            format!("{}\n", line("other", "initial_balance", "12.34"))
        )
    );
    for (args, want) in [
        (
            &["-a", "victim", "-d", "5.00"][..],
            line("victim", "deposit", "5"),
        ),
        (
            &["-a", "victim", "-w", "2.50"],
            line("victim", "withdraw", "2.5"),
        ),
        (&["-a", "victim", "-g"], line("victim", "balance", "102.5")),
    ] {
        let run = proxy.atm(&env, args).await;
        assert_eq!((run.code, run.stdout), (0, format!("{want}\n")), "{args:?}");
    }
    // What the man in the middle saw: four frames up, three down per session, and neither the
    // account names nor the card secrets nor any message type.
    let seen = proxy.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(
        seen[0].up.len(),
        3,
        "open: hello, finished, open_card_account"
    );
    for s in &seen[1..] {
        assert_eq!((s.up.len(), s.down.len()), (4, 3));
    }
    let mut secrets = vec!["victim".to_owned(), "other".to_owned()];
    for card in ["victim.card", "other.card"] {
        let card = atm_cli::files::Card::load(env.path(card).to_str().unwrap()).unwrap();
        secrets.push(card.secret.to_hex().to_string());
    }
    secrets.extend(
        [
            "deposit", "withdraw", "balance", "welcome", "card", "account",
        ]
        .map(String::from),
    );
    for frame in seen.iter().flat_map(|s| s.up.iter().chain(&s.down)) {
        for secret in &secrets {
            assert!(!frame.contains(secret.as_str()), "{secret} in {frame}");
        }
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_anywhere_before_the_commit_is_63_and_changes_nothing() {
    let (env, proxy) = setup(Plan::Pass).await;
    let lines = env.transactions();
    for (dir, frame) in [
        (Dir::Up, 1),
        (Dir::Up, 2),
        (Dir::Up, 3),
        (Dir::Up, 4),
        (Dir::Down, 1),
        (Dir::Down, 2),
    ] {
        for permille in POSITIONS {
            proxy.set(Plan::Flip {
                dir,
                frame,
                permille,
            });
            proxy.fails(&env, &["-a", "victim", "-d", "1.00"]).await;
        }
    }
    // Opening an account: the altered request is refused and nothing is created.
    for (dir, frame) in [(Dir::Up, 1), (Dir::Up, 2), (Dir::Up, 3), (Dir::Down, 1)] {
        proxy.set(Plan::Flip {
            dir,
            frame,
            permille: 500,
        });
        proxy.fails(&env, &["-a", "newbie", "-n", "10.00"]).await;
        assert!(!env.path("newbie.card").exists());
    }
    assert_eq!(env.transactions(), lines, "the bank applied nothing");
    assert!(
        env.bank_lines().iter().any(|l| l == "protocol_error"),
        "the bank noticed"
    );
    assert_eq!(
        env.balance("victim").await,
        line("victim", "balance", "100")
    );
    assert_eq!(
        env.open("newbie", "10.00").await,
        line("newbie", "initial_balance", "10")
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_answer_after_the_commit_is_63_and_the_operation_happened_exactly_once() {
    // The bank makes a change durable before it answers. If the answer is then altered or
    // replaced, the atm cannot know the outcome and says so with 63; the operation it asked
    // for happened exactly once, unchanged. (No protocol can do better for a lost answer.)
    let (env, proxy) = setup(Plan::Pass).await;
    for permille in POSITIONS {
        proxy.set(Plan::Flip {
            dir: Dir::Down,
            frame: 3,
            permille,
        });
        proxy.fails(&env, &["-a", "victim", "-d", "1.00"]).await;
    }
    assert_eq!(
        env.balance("victim").await,
        line("victim", "balance", "105")
    );
    // Opening an account whose account_opened is altered: the account exists at the bank but
    // no card was written, so the name is taken and the account is unusable.
    proxy.set(Plan::Flip {
        dir: Dir::Down,
        frame: 2,
        permille: 500,
    });
    proxy.fails(&env, &["-a", "lost", "-n", "10.00"]).await;
    assert!(!env.path("lost.card").exists());
    env.fails(255, &["-a", "lost", "-n", "10.00"]).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_whose_outcome_was_lost_is_asked_again_and_applied_once() {
    // The man in the middle interferes with the first connection only: the atm's one retry
    // (same txid, same card) gets the answer, and the bank applies the operation once.
    let (env, proxy) = setup(Plan::Pass).await;
    let plans = [
        // The request never reaches the bank.
        Plan::Cut {
            dir: Dir::Up,
            frame: 4,
        },
        // The bank applies it; its answer is lost or altered.
        Plan::Cut {
            dir: Dir::Down,
            frame: 3,
        },
        Plan::Flip {
            dir: Dir::Down,
            frame: 3,
            permille: 500,
        },
        // The request is altered and refused.
        Plan::Flip {
            dir: Dir::Up,
            frame: 4,
            permille: 500,
        },
    ];
    for plan in plans {
        proxy.set_once(plan);
        let connections = proxy.seen().len();
        let run = proxy.atm(&env, &["-a", "victim", "-d", "1.00"]).await;
        assert_eq!(proxy.seen().len(), connections + 2, "one retry: {plan:?}");
        assert_eq!(
            (run.code, run.stdout),
            (0, format!("{}\n", line("victim", "deposit", "1"))),
            "{plan:?}"
        );
    }
    proxy.set_once(Plan::Cut {
        dir: Dir::Down,
        frame: 3,
    });
    let run = proxy.atm(&env, &["-a", "victim", "-w", "0.50"]).await;
    assert_eq!(
        (run.code, run.stdout),
        (0, format!("{}\n", line("victim", "withdraw", "0.5")))
    );
    assert_eq!(
        env.balance("victim").await,
        line("victim", "balance", "103.5")
    );
    // Opening: account_opened altered on the first connection; the retry gets it and the card
    // is written.
    proxy.set_once(Plan::Flip {
        dir: Dir::Down,
        frame: 2,
        permille: 500,
    });
    let connections = proxy.seen().len();
    let run = proxy.atm(&env, &["-a", "saved", "-n", "10.00"]).await;
    assert_eq!(proxy.seen().len(), connections + 2, "one retry");
    assert_eq!(
        (run.code, run.stdout),
        (0, format!("{}\n", line("saved", "initial_balance", "10")))
    );
    assert_eq!(env.balance("saved").await, line("saved", "balance", "10"));
    // The bank printed each operation once.
    let ops: Vec<String> = env
        .transactions()
        .into_iter()
        .filter(|l| !l.contains("\"balance\""))
        .collect();
    assert_eq!(
        ops,
        [
            line("victim", "initial_balance", "100"),
            line("victim", "deposit", "1"),
            line("victim", "deposit", "1"),
            line("victim", "deposit", "1"),
            line("victim", "deposit", "1"),
            line("victim", "withdraw", "0.5"),
            line("saved", "initial_balance", "10"),
        ]
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_frames_change_nothing() {
    let (env, proxy) = setup(Plan::Pass).await;
    // A clean deposit to record.
    let run = proxy.atm(&env, &["-a", "victim", "-d", "7.00"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let recorded = proxy.seen()[0].clone();
    assert_eq!(
        env.balance("victim").await,
        line("victim", "balance", "107")
    );
    let lines = env.transactions();

    // The whole recorded session replayed straight to the bank: the bank's fresh hello
    // makes the old client_finished fail, and the bank closes without doing anything.
    let mut conn = atm_client::Connection::open(&format!("127.0.0.1:{}", env.port))
        .await
        .unwrap();
    conn.send_text(recorded.up[0].clone()).await.unwrap();
    let hello = conn.recv_text().await.unwrap();
    assert_ne!(hello, recorded.down[0], "the bank's hello is fresh");
    for frame in &recorded.up[1..] {
        let _ = conn.send_text(frame.clone()).await;
    }
    assert_eq!(conn.recv().await.unwrap(), atm_client::Frame::Closed);

    // The bank's recorded answers replayed to a new atm session.
    proxy.set(Plan::OldAnswers { from_conn: 0 });
    proxy.fails(&env, &["-a", "victim", "-d", "7.00"]).await;
    proxy.fails(&env, &["-a", "victim", "-g"]).await;
    // The login replayed inside its own session: the bank refuses the repeat and closes
    // before the deposit.
    proxy.set(Plan::Duplicate {
        dir: Dir::Up,
        frame: 3,
    });
    proxy.fails(&env, &["-a", "victim", "-d", "7.00"]).await;
    // The client's hello or finished repeated.
    for frame in [1, 2] {
        proxy.set(Plan::Duplicate {
            dir: Dir::Up,
            frame,
        });
        proxy.fails(&env, &["-a", "victim", "-d", "7.00"]).await;
    }
    // The bank's hello repeated.
    proxy.set(Plan::Duplicate {
        dir: Dir::Down,
        frame: 1,
    });
    proxy.fails(&env, &["-a", "victim", "-d", "7.00"]).await;
    assert_eq!(env.transactions(), lines, "the bank applied nothing");

    // The deposit itself repeated: applied once, and the atm has its answer.
    proxy.set(Plan::Duplicate {
        dir: Dir::Up,
        frame: 4,
    });
    let run = proxy.atm(&env, &["-a", "victim", "-d", "7.00"]).await;
    assert_eq!(
        (run.code, run.stdout),
        (0, format!("{}\n", line("victim", "deposit", "7")))
    );
    assert_eq!(
        env.balance("victim").await,
        line("victim", "balance", "114")
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_dropped_and_cut_traffic_is_63_and_changes_nothing() {
    let (env, proxy) = setup(Plan::Pass).await;
    let lines = env.transactions();
    let mut plans = vec![
        // client_finished and the login arrive swapped; the login arrives as the finished.
        Plan::Swap {
            dir: Dir::Up,
            frame: 2,
        },
        Plan::Drop {
            dir: Dir::Up,
            frame: 2,
        },
    ];
    for frame in 1..=4 {
        plans.push(Plan::Cut {
            dir: Dir::Up,
            frame,
        });
    }
    for frame in 1..=2 {
        plans.push(Plan::Cut {
            dir: Dir::Down,
            frame,
        });
    }
    for plan in plans {
        proxy.set(plan);
        proxy.fails(&env, &["-a", "victim", "-w", "1.00"]).await;
        // Opening sends three frames up and commits before its second answer: only the plans
        // that act before the commit apply.
        let before_commit = !matches!(
            plan,
            Plan::Cut {
                dir: Dir::Up,
                frame: 4
            } | Plan::Cut {
                dir: Dir::Down,
                frame: 2
            }
        );
        if before_commit {
            proxy.fails(&env, &["-a", "fresh", "-n", "10.00"]).await;
            assert!(!env.path("fresh.card").exists(), "{plan:?}");
        }
    }
    assert_eq!(env.transactions(), lines, "the bank applied nothing");
    assert_eq!(
        env.balance("victim").await,
        line("victim", "balance", "100")
    );
    assert_eq!(
        env.open("fresh", "10.00").await,
        line("fresh", "initial_balance", "10")
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_that_does_not_answer_within_10_seconds_is_63() {
    // All the silent cases at once, so the suite waits out the 10 seconds only once.
    let env = Env::start().await;
    env.open("victim", "100.00").await;
    let lines = env.transactions();
    // A TCP server that accepts and never says anything.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    // A WebSocket server that never answers the hello.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_port = mute.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = mute.accept().await {
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(s).await {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            });
        }
    });
    let drop_deposit = Proxy::start(
        env.port,
        Plan::Drop {
            dir: Dir::Up,
            frame: 4,
        },
    )
    .await;
    let drop_welcome = Proxy::start(
        env.port,
        Plan::Drop {
            dir: Dir::Down,
            frame: 2,
        },
    )
    .await;
    let drop_open = Proxy::start(
        env.port,
        Plan::Drop {
            dir: Dir::Up,
            frame: 3,
        },
    )
    .await;
    let (silent_port, mute_port) = (silent_port.to_string(), mute_port.to_string());
    type Pending<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Run> + Send + 'a>>;
    let deposit_silent = ["-a", "victim", "-d", "1.00", "-p", &silent_port];
    let deposit_mute = ["-a", "victim", "-d", "1.00", "-p", &mute_port];
    let open_silent = ["-a", "ghost", "-n", "10.00", "-p", &silent_port];
    let (deposit, open) = (
        ["-a", "victim", "-d", "1.00"],
        ["-a", "ghost", "-n", "10.00"],
    );
    let runs: Vec<Pending<'_>> = vec![
        Box::pin(env.atm_raw(&deposit_silent)),
        Box::pin(env.atm_raw(&deposit_mute)),
        Box::pin(env.atm_raw(&open_silent)),
        Box::pin(drop_deposit.atm(&env, &deposit)),
        Box::pin(drop_welcome.atm(&env, &deposit)),
        Box::pin(drop_open.atm(&env, &open)),
    ];
    for run in futures_util::future::join_all(runs).await {
        assert_eq!((run.code, run.stdout.as_str()), (63, ""), "{run:?}");
    }
    assert!(!env.path("ghost.card").exists());
    assert_eq!(env.transactions(), lines, "the bank applied nothing");
    assert_eq!(
        env.balance("victim").await,
        line("victim", "balance", "100")
    );
    env.stop().await;
}

/// A TCP-level man in the middle: passes the HTTP upgrade through, then parses WebSocket frames
/// on the raw wire and XORs 0x01 into the middle payload byte of text frame `frame` going
/// `dir` (0 = never). Client frames are masked; the flip goes into the masked bytes.
async fn wire_proxy(bank_port: u16, dir: Dir, frame: usize) -> u16 {
    use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

    async fn pump(
        mut from: impl AsyncRead + Unpin,
        mut to: impl AsyncWrite + Unpin,
        flip_frame: usize,
    ) -> std::io::Result<()> {
        // The HTTP request or response, byte by byte up to the blank line.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(from.read_u8().await?);
        }
        to.write_all(&head).await?;
        let mut texts = 0;
        loop {
            let mut header = vec![from.read_u8().await?, from.read_u8().await?];
            let len = match header[1] & 0x7f {
                126 => {
                    let n = from.read_u16().await?;
                    header.extend(n.to_be_bytes());
                    u64::from(n)
                }
                127 => {
                    let n = from.read_u64().await?;
                    header.extend(n.to_be_bytes());
                    n
                }
                n => u64::from(n),
            };
            if header[1] & 0x80 != 0 {
                let mut key = [0u8; 4];
                from.read_exact(&mut key).await?;
                header.extend(key);
            }
            let mut payload = vec![0u8; usize::try_from(len).unwrap()];
            from.read_exact(&mut payload).await?;
            if header[0] & 0x0f == 1 {
                texts += 1;
                if texts == flip_frame {
                    let at = payload.len() / 2;
                    payload[at] ^= 0x01;
                }
            }
            to.write_all(&header).await?;
            to.write_all(&payload).await?;
        }
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((atm, _)) = listener.accept().await {
            let Ok(bank) = tokio::net::TcpStream::connect(("127.0.0.1", bank_port)).await else {
                continue;
            };
            let (atm_r, atm_w) = atm.into_split();
            let (bank_r, bank_w) = bank.into_split();
            let (up, down) = match dir {
                Dir::Up => (frame, 0),
                Dir::Down => (0, frame),
            };
            tokio::spawn(async move {
                // When either direction ends, both connections close.
                tokio::select! {
                    _ = pump(atm_r, bank_w, up) => {}
                    _ = pump(bank_r, atm_w, down) => {}
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bit_flipped_on_the_wire_under_the_websocket_mask_is_63_and_changes_nothing() {
    let env = Env::start().await;
    env.open("victim", "100.00").await;
    let clean = wire_proxy(env.port, Dir::Up, 0).await.to_string();
    let run = env
        .atm_raw(&["-a", "victim", "-d", "1.00", "-p", &clean])
        .await;
    assert_eq!(
        (run.code, run.stdout),
        (0, format!("{}\n", line("victim", "deposit", "1")))
    );
    let lines = env.transactions();
    for (dir, frame) in [
        (Dir::Up, 1),
        (Dir::Up, 2),
        (Dir::Up, 3),
        (Dir::Up, 4),
        (Dir::Down, 1),
        (Dir::Down, 2),
    ] {
        let port = wire_proxy(env.port, dir, frame).await.to_string();
        let run = env
            .atm_raw(&["-a", "victim", "-d", "1.00", "-p", &port])
            .await;
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (63, ""),
            "{dir:?} {frame}: {run:?}"
        );
    }
    assert_eq!(env.transactions(), lines, "the bank applied nothing");
    assert_eq!(
        env.balance("victim").await,
        line("victim", "balance", "101")
    );
    env.stop().await;
}
