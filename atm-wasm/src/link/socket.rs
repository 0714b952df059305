//! One WebSocket to the bank, shared by the ATM's and the console's controllers: where the
//! bank is, opening a socket with a writer task and a reader loop, the generation that makes
//! an old socket's late callbacks harmless, and the reconnect backoff.

use futures_channel::mpsc;
use futures_util::{SinkExt as _, StreamExt as _};
use gloo_net::websocket::{futures::WebSocket, Message};
use wasm_bindgen_futures::spawn_local;

use crate::link::connection::Broken;

/// The bank's WebSocket address: `ATM_BANK_URL` at build time, or else `/ws` on the host
/// that served this page (`wss:` when the page came over https).
fn bank_url() -> String {
    if let Some(url) = option_env!("ATM_BANK_URL") {
        return url.to_owned();
    }
    let location = web_sys::window().map(|w| w.location());
    let host = location
        .as_ref()
        .and_then(|l| l.host().ok())
        .unwrap_or_else(|| format!("127.0.0.1:{}", protocol::WEB_BANK_PORT));
    let secure = location
        .and_then(|l| l.protocol().ok())
        .is_some_and(|p| p == "https:");
    format!("{}://{host}/ws", if secure { "wss" } else { "ws" })
}

/// Delay before the next reconnect after `failures` failed attempts in a row.
fn backoff_ms(failures: u32) -> u32 {
    match failures {
        0 | 1 => 500,
        2 => 1_000,
        3 => 2_000,
        4 => 4_000,
        _ => 8_000,
    }
}

/// Waits before a reconnect (a short pause after no failure, else the backoff), then calls
/// `again`.
pub(crate) fn after_backoff(failures: u32, again: impl FnOnce() + 'static) {
    let delay = if failures == 0 {
        100
    } else {
        backoff_ms(failures)
    };
    spawn_local(async move {
        gloo_timers::future::TimeoutFuture::new(delay).await;
        again();
    });
}

/// The writer of the current socket, and its generation: bumped per connection, so late
/// callbacks of an old socket are ignored.
#[derive(Default)]
pub(crate) struct Socket {
    tx: Option<mpsc::UnboundedSender<String>>,
    generation: u64,
}

impl Socket {
    /// Drops the current socket (if any) and returns the generation of the next one.
    pub(crate) fn next(&mut self) -> u64 {
        self.generation += 1;
        self.tx = None;
        self.generation
    }

    /// The current generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether `generation` is still the current one.
    pub(crate) fn is_current(&self, generation: u64) -> bool {
        self.generation == generation
    }

    /// Drops the writer: the socket closes and nothing more is sent on it.
    pub(crate) fn close(&mut self) {
        self.tx = None;
    }

    /// Writes these frames, in order, to the current socket (if there is one).
    pub(crate) fn send(&self, frames: Vec<String>) {
        if let Some(tx) = &self.tx {
            for frame in frames {
                let _ = tx.unbounded_send(frame);
            }
        }
    }

    /// Opens a WebSocket to the bank and writes `hello` first; it becomes the current socket.
    /// Each text frame read goes to `frame`; when the socket ends, a message that is not text
    /// arrives, or `frame` refuses one, `closed` gets the reason (`None`: the socket just
    /// closed). Returns `false` (and calls neither) when the socket cannot be opened.
    pub(crate) fn open(
        &mut self,
        hello: String,
        mut frame: impl FnMut(&[u8]) -> Result<(), Broken> + 'static,
        closed: impl FnOnce(Option<Broken>) + 'static,
    ) -> bool {
        let Ok(socket) = WebSocket::open(&bank_url()) else {
            return false;
        };
        let (mut sink, mut stream) = socket.split();
        let (tx, mut rx) = mpsc::unbounded::<String>();
        let _ = tx.unbounded_send(hello);
        self.tx = Some(tx);
        spawn_local(async move {
            while let Some(text) = rx.next().await {
                if sink.send(Message::Text(text)).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        spawn_local(async move {
            let mut broken = None;
            while let Some(message) = stream.next().await {
                let Ok(Message::Text(text)) = message else {
                    break;
                };
                if let Err(why) = frame(text.as_bytes()) {
                    broken = Some(why);
                    break;
                }
            }
            closed(broken);
        });
        true
    }
}
