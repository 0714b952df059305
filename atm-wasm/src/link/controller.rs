//! A page's link to the bank in the browser, one controller for both pages: the driver's
//! frames over a [`Socket`], a fresh handshake on every (re)connect with backoff, and what the
//! page's reducer hears (through [`Page`]).

use std::cell::RefCell;
use std::rc::Rc;

use protocol::Config;
use rand_core::OsRng;
use yew::Callback;

use super::connection::{Broken, Output};
use super::driver::{Accepted, Driver, News, Page};
use super::enroll::{self, Enrollment, Stored, ENROLL_AGAIN};
use super::keystore::StoredTerminal;
use super::socket::{self, Socket};
use super::Link;

/// The current time in Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    // Date.now() is a whole number of milliseconds well inside u64.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ms = js_sys::Date::now() as u64;
    ms
}

/// A connection closed this soon after its handshake, with nothing answered, counts as refused
/// (for a driver whose connections are accepted at their first answer).
const QUICK_DROP_MS: u64 = 5_000;

struct Inner<D> {
    driver: Option<D>,
    /// The terminal key, usable (never readable) through WebCrypto.
    key: Option<StoredTerminal>,
    socket: Socket,
    /// Failed connections in a row (see [`Accepted`]).
    failures: u32,
    /// Whether the bank answered a request on the current connection.
    answered: bool,
    /// When the current connection's handshake finished (Unix ms).
    up_since: Option<u64>,
}

/// A page's connection to the bank. Clone the `Rc` to share it with callbacks.
pub(crate) struct Controller<P: Page> {
    inner: RefCell<Inner<P::Driver>>,
    dispatch: Callback<P::Action>,
}

impl<P: Page + 'static> Controller<P> {
    pub(crate) fn new(dispatch: Callback<P::Action>) -> Rc<Self> {
        Rc::new(Self {
            inner: RefCell::new(Inner {
                driver: None,
                key: None,
                socket: Socket::default(),
                failures: 0,
                answered: false,
                up_since: None,
            }),
            dispatch,
        })
    }

    /// Makes `e` this page's terminal: shows it, turns its key into a non-extractable
    /// WebCrypto key and keeps it (as every enrollment is kept), then connects with it.
    pub(crate) fn adopt(self: &Rc<Self>, e: Enrollment) {
        self.dispatch.emit(P::enrolled(&e.terminal, &e.bank));
        let this = Rc::clone(self);
        wasm_bindgen_futures::spawn_local(async move {
            match enroll::save(P::SLOT, e).await {
                Ok((stored, kept)) => {
                    if !kept {
                        this.dispatch.emit(P::notice(P::NOT_STORED.into()));
                    }
                    this.enroll(stored);
                }
                Err(_) => {
                    this.dispatch.emit(P::forgotten());
                    this.dispatch.emit(P::notice(P::NO_WEBCRYPTO.into()));
                }
            }
        });
    }

    /// At start: speaks for the terminal this browser keeps for the page, if any (unless a
    /// link opened meanwhile made another one this page's terminal).
    pub(crate) fn restore(self: &Rc<Self>) {
        if self.has_driver() {
            return;
        }
        let this = Rc::clone(self);
        wasm_bindgen_futures::spawn_local(async move {
            match enroll::load(P::SLOT).await {
                Stored::Terminal(stored) if !this.has_driver() => {
                    this.dispatch
                        .emit(P::enrolled(&stored.terminal, &stored.bank));
                    this.enroll(stored);
                }
                Stored::FromV1 => this.dispatch.emit(P::notice(ENROLL_AGAIN.into())),
                Stored::Terminal(_) | Stored::Nothing => {}
            }
        });
    }

    /// Starts speaking for this terminal: drops any previous session and connects.
    fn enroll(self: &Rc<Self>, stored: StoredTerminal) {
        {
            let mut inner = self.inner.borrow_mut();
            inner.driver = Some(P::Driver::new(
                stored.terminal.clone(),
                stored.bank.clone(),
                Config::default(),
            ));
            inner.key = Some(stored);
            inner.failures = 0;
        }
        self.connect();
    }

    /// Forgets the terminal: closes the connection, drops every key, and removes what the
    /// browser keeps for the page.
    pub(crate) fn forget(&self) {
        {
            let mut inner = self.inner.borrow_mut();
            inner.socket.next();
            inner.driver = None;
            inner.key = None;
        }
        wasm_bindgen_futures::spawn_local(enroll::forget(P::SLOT));
        self.dispatch.emit(P::forgotten());
    }

    /// Whether a terminal is set up.
    pub(crate) fn has_driver(&self) -> bool {
        self.inner.borrow().driver.is_some()
    }

    /// What `look` reads from the driver, when a terminal is set up.
    pub(crate) fn read<R>(&self, look: impl FnOnce(&P::Driver) -> R) -> Option<R> {
        self.inner.borrow().driver.as_ref().map(look)
    }

    fn connect(self: &Rc<Self>) {
        let (generation, hello) = {
            let mut inner = self.inner.borrow_mut();
            let generation = inner.socket.next();
            inner.answered = false;
            inner.up_since = None;
            let Some(driver) = inner.driver.as_mut() else {
                return;
            };
            (generation, driver.connect(&mut OsRng, now_ms()))
        };
        if self.inner.borrow().failures == 0 {
            self.dispatch.emit(P::link(Link::Connecting));
        }
        let Ok(hello) = hello else {
            self.closed(generation, Some(Broken::Handshake));
            return;
        };
        let (this, that) = (Rc::clone(self), Rc::clone(self));
        let opened = self.inner.borrow_mut().socket.open(
            hello,
            move |frame| this.frame(generation, frame),
            move |broken| that.closed(generation, broken),
        );
        if !opened {
            self.closed(generation, None);
        }
    }

    /// One frame from the bank: hand it to the driver, send what it says, show what happened.
    /// When the handshake asks for the master secret, WebCrypto computes it with the stored
    /// key and [`Self::keyed`] goes on.
    fn frame(self: &Rc<Self>, generation: u64, frame: &[u8]) -> Result<(), Broken> {
        let (out, signing) = {
            let mut inner = self.inner.borrow_mut();
            if !inner.socket.is_current(generation) {
                return Err(Broken::Unexpected);
            }
            let Inner { driver, key, .. } = &mut *inner;
            let Some(driver) = driver.as_mut() else {
                return Err(Broken::Unexpected);
            };
            let out = driver.receive(frame, &mut OsRng, now_ms())?;
            let signing = match (driver.master_input(), key.as_ref()) {
                (Some(input), Some(key)) => Some(key.master_secret(input)),
                (Some(_), None) => return Err(Broken::Handshake),
                (None, _) => None,
            };
            Self::note(&mut inner, &out);
            (out, signing)
        };
        self.deliver(out);
        if let Some(signing) = signing {
            let this = Rc::clone(self);
            wasm_bindgen_futures::spawn_local(async move {
                match signing.await {
                    Ok(master) => this.keyed(generation, master),
                    Err(err) => {
                        web_sys::console::error_1(&format!("terminal key: {err}").into());
                        this.closed(generation, Some(Broken::Handshake));
                    }
                }
            });
        }
        Ok(())
    }

    /// The master secret from the key holder: the driver finishes the handshake.
    fn keyed(self: &Rc<Self>, generation: u64, master: protocol::MasterSecret) {
        let out = {
            let mut inner = self.inner.borrow_mut();
            if !inner.socket.is_current(generation) {
                return;
            }
            let Some(driver) = inner.driver.as_mut() else {
                return;
            };
            match driver.keyed(master, &mut OsRng, now_ms()) {
                Ok(out) => {
                    Self::note(&mut inner, &out);
                    Ok(out)
                }
                Err(broken) => Err(broken),
            }
        };
        match out {
            Ok(out) => self.deliver(out),
            Err(broken) => self.closed(generation, Some(broken)),
        }
    }

    /// What the driver's events say about the connection: up, answered.
    fn note(inner: &mut Inner<P::Driver>, out: &Output<<P::Driver as Driver>::Event>) {
        for event in &out.events {
            match P::Driver::news(event) {
                News::Up => {
                    inner.up_since = Some(now_ms());
                    if P::Driver::ACCEPTED == Accepted::AtHandshake {
                        inner.failures = 0;
                    }
                }
                News::Answer => {
                    inner.answered = true;
                    if P::Driver::ACCEPTED == Accepted::AtFirstAnswer {
                        inner.failures = 0;
                    }
                }
                News::Other => {}
            }
        }
    }

    fn deliver(self: &Rc<Self>, out: Output<<P::Driver as Driver>::Event>) {
        self.inner.borrow().socket.send(out.send);
        for event in out.events {
            let restart = P::Driver::ends_connection(&event);
            self.dispatch.emit(P::bank(event));
            if restart {
                self.restart();
            }
        }
    }

    /// Drops the current connection (nothing pending is kept) and opens a fresh one.
    fn restart(self: &Rc<Self>) {
        let events = {
            let mut inner = self.inner.borrow_mut();
            inner.socket.close();
            inner.failures = 0;
            inner
                .driver
                .as_mut()
                .map(Driver::disconnected)
                .unwrap_or_default()
        };
        for event in events {
            self.dispatch.emit(P::bank(event));
        }
        self.connect();
    }

    /// The socket closed (or must be closed): tell the driver, show it, reconnect later.
    fn closed(self: &Rc<Self>, generation: u64, broken: Option<Broken>) {
        let (events, failures, dropped_after_handshake) = {
            let mut inner = self.inner.borrow_mut();
            if !inner.socket.is_current(generation) {
                return;
            }
            inner.socket.close();
            let Some(driver) = inner.driver.as_mut() else {
                return;
            };
            let was_up = driver.is_up();
            let events = driver.disconnected();
            // A bank that drops the terminal right after the handshake, before answering
            // anything, most likely refuses its key (revoked terminal, reset bank).
            let dropped = P::Driver::ACCEPTED == Accepted::AtFirstAnswer
                && was_up
                && !inner.answered
                && inner
                    .up_since
                    .is_some_and(|t| now_ms().saturating_sub(t) < QUICK_DROP_MS);
            if !was_up || dropped {
                inner.failures += 1;
            }
            (events, inner.failures, dropped)
        };
        for event in events {
            self.dispatch.emit(P::bank(event));
        }
        let link = match broken {
            Some(Broken::Handshake) => Link::Refused,
            _ if dropped_after_handshake && failures >= 3 => Link::Refused,
            _ if failures == 0 => Link::Connecting,
            _ => Link::Down(failures),
        };
        self.dispatch.emit(P::link(link));
        let this = Rc::clone(self);
        socket::after_backoff(failures, move || {
            if this.inner.borrow().socket.is_current(generation) {
                this.connect();
            }
        });
    }

    /// Sends an operation (or queues it until the link is up). A second operation of a kind
    /// already under way is ignored, so a double click sends once.
    pub(crate) fn submit(self: &Rc<Self>, op: <P::Driver as Driver>::Op) {
        let pending = P::pending(&op);
        let result = {
            let mut inner = self.inner.borrow_mut();
            let Some(driver) = inner.driver.as_mut() else {
                return;
            };
            driver.submit(op, &mut OsRng, now_ms())
        };
        let Some(result) = result else {
            return;
        };
        if let Some(pending) = pending {
            self.dispatch.emit(pending);
        }
        match result {
            Ok(out) => self.deliver(out),
            Err(_) => {
                let generation = self.inner.borrow().socket.generation();
                self.closed(generation, Some(Broken::Record));
            }
        }
    }

    /// Logs out: asks the bank when connected; the driver ends the session here as its page's
    /// rule says, and answers at once when the bank could not be asked.
    pub(crate) fn logout(self: &Rc<Self>) {
        let up = self.read(Driver::is_up).unwrap_or(false);
        if up {
            self.submit(P::Driver::logout());
        }
        let answer = {
            let mut inner = self.inner.borrow_mut();
            inner.driver.as_mut().and_then(|d| d.logged_out(up))
        };
        if let Some(answer) = answer {
            self.dispatch.emit(P::bank(answer));
        }
    }
}
