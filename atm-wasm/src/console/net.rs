//! The console's link to the bank in the browser: the console driver's frames over a
//! [`Socket`], a fresh handshake on every (re)connect with backoff, and the 3-second
//! refresh of the dashboard while an operator is logged in.

use std::cell::RefCell;
use std::rc::Rc;

use protocol::{Config, Response};
use rand_core::OsRng;
use yew::Callback;

use super::driver::ConsoleOutput;
use super::driver::{ConsoleBroken, ConsoleDriver, ConsoleEvent, ConsoleKind, ConsoleOp};
use super::state::{form_of, ConsoleAction, ConsoleForm, Link};
use crate::atm::net::now_ms;
use crate::link::enroll::Enrollment;
use crate::link::socket::{self, Socket};

/// How often the dashboard asks for fresh numbers.
pub(crate) const REFRESH_MS: u32 = 3_000;

/// A connection closed this soon after its handshake, with nothing answered, counts as refused.
const QUICK_DROP_MS: u64 = 5_000;

struct Inner {
    driver: Option<ConsoleDriver>,
    socket: Socket,
    /// Failed connections in a row: no handshake, or closed before the bank answered anything.
    failures: u32,
    /// Whether the bank answered a request on the current connection.
    answered: bool,
    /// When the current connection's handshake finished (Unix ms).
    up_since: Option<u64>,
}

/// The console's connection to the bank. Clone the `Rc` to share it with callbacks.
pub(crate) struct ConsoleController {
    inner: RefCell<Inner>,
    dispatch: Callback<ConsoleAction>,
}

impl ConsoleController {
    pub(crate) fn new(dispatch: Callback<ConsoleAction>) -> Rc<Self> {
        Rc::new(Self {
            inner: RefCell::new(Inner {
                driver: None,
                socket: Socket::default(),
                failures: 0,
                answered: false,
                up_since: None,
            }),
            dispatch,
        })
    }

    /// Starts speaking for this console terminal: drops any previous session and connects.
    pub(crate) fn enroll(self: &Rc<Self>, enrollment: &Enrollment) {
        {
            let mut inner = self.inner.borrow_mut();
            inner.driver = Some(ConsoleDriver::new(
                enrollment.terminal.clone(),
                enrollment.psk.clone(),
                enrollment.bank.clone(),
                Config::default(),
            ));
            inner.failures = 0;
        }
        self.connect();
    }

    /// Forgets the console terminal: closes the connection and drops every key.
    pub(crate) fn forget(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.socket.next();
        inner.driver = None;
    }

    /// Whether a console terminal is set up.
    pub(crate) fn has_driver(&self) -> bool {
        self.inner.borrow().driver.is_some()
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
            self.dispatch.emit(ConsoleAction::Link(Link::Connecting));
        }
        let Ok(hello) = hello else {
            self.closed(generation, Some(ConsoleBroken::Handshake));
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
    fn frame(self: &Rc<Self>, generation: u64, frame: &[u8]) -> Result<(), ConsoleBroken> {
        let out = {
            let mut inner = self.inner.borrow_mut();
            if !inner.socket.is_current(generation) {
                return Err(ConsoleBroken::Unexpected);
            }
            let Some(driver) = inner.driver.as_mut() else {
                return Err(ConsoleBroken::Unexpected);
            };
            let out = driver.receive(frame, &mut OsRng, now_ms())?;
            if out.events.contains(&ConsoleEvent::Connected) {
                inner.up_since = Some(now_ms());
            }
            if out
                .events
                .iter()
                .any(|e| matches!(e, ConsoleEvent::Reply(..)))
            {
                inner.answered = true;
                inner.failures = 0;
            }
            out
        };
        self.deliver(out);
        Ok(())
    }

    fn deliver(self: &Rc<Self>, out: ConsoleOutput) {
        self.inner.borrow().socket.send(out.send);
        for event in out.events {
            let (refresh, restart) = match &event {
                ConsoleEvent::Connected => (false, false),
                ConsoleEvent::Reply(ConsoleKind::Login, Response::OperatorWelcome { .. })
                | ConsoleEvent::Reply(
                    ConsoleKind::AddTerminal | ConsoleKind::Revoke,
                    Response::TerminalAdded { .. } | Response::TerminalRevoked { .. },
                ) => (true, false),
                // After a logout the connection is not reused, whatever the bank answered.
                ConsoleEvent::Reply(ConsoleKind::Logout, _) => (false, true),
                _ => (false, false),
            };
            self.dispatch.emit(ConsoleAction::Bank(event));
            if refresh {
                self.refresh();
            }
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
                .map(ConsoleDriver::disconnected)
                .unwrap_or_default()
        };
        for event in events {
            self.dispatch.emit(ConsoleAction::Bank(event));
        }
        self.connect();
    }

    /// The socket closed (or must be closed): tell the driver, show it, reconnect later.
    fn closed(self: &Rc<Self>, generation: u64, broken: Option<ConsoleBroken>) {
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
            // A bank that drops the console right after the handshake, before answering
            // anything, most likely refuses its key (revoked terminal, reset bank).
            let dropped = was_up
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
            self.dispatch.emit(ConsoleAction::Bank(event));
        }
        let link = match broken {
            Some(ConsoleBroken::Handshake) => Link::Refused,
            _ if dropped_after_handshake && failures >= 3 => Link::Refused,
            _ if failures == 0 => Link::Connecting,
            _ => Link::Down(failures),
        };
        self.dispatch.emit(ConsoleAction::Link(link));
        let this = Rc::clone(self);
        socket::after_backoff(failures, move || {
            if this.inner.borrow().socket.is_current(generation) {
                this.connect();
            }
        });
    }

    /// Sends an operation (or queues it until the link is up). A second operation of a kind
    /// already under way is ignored, so a double click sends once.
    pub(crate) fn submit(self: &Rc<Self>, op: ConsoleOp) {
        let kind = op.kind();
        let terminal = match &op {
            ConsoleOp::Revoke { terminal } => Some(terminal.as_str().to_owned()),
            _ => None,
        };
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
        let form = form_of(kind);
        if form != ConsoleForm::Refresh {
            self.dispatch.emit(ConsoleAction::Pending(form, terminal));
        }
        match result {
            Ok(out) => self.deliver(out),
            Err(_) => {
                let generation = self.inner.borrow().socket.generation();
                self.closed(generation, Some(ConsoleBroken::Record));
            }
        }
    }

    /// Asks for fresh numbers (overview, audit, terminals) when an operator is logged in; a
    /// part still under way from the last refresh is not asked twice.
    pub(crate) fn refresh(self: &Rc<Self>) {
        let logged_in = {
            let inner = self.inner.borrow();
            inner
                .driver
                .as_ref()
                .is_some_and(|d| d.is_up() && d.logged_in())
        };
        if !logged_in {
            return;
        }
        for op in [ConsoleOp::Overview, ConsoleOp::Audit, ConsoleOp::Terminals] {
            self.submit(op);
        }
    }

    /// Logs out: asks the bank when connected, then drops the connection; in any case
    /// forgets the login here.
    pub(crate) fn logout(self: &Rc<Self>) {
        let up = {
            let inner = self.inner.borrow();
            inner.driver.as_ref().is_some_and(ConsoleDriver::is_up)
        };
        if up {
            self.submit(ConsoleOp::Logout);
        } else {
            if let Some(driver) = self.inner.borrow_mut().driver.as_mut() {
                driver.end_session();
            }
            self.dispatch.emit(ConsoleAction::Bank(ConsoleEvent::Reply(
                ConsoleKind::Logout,
                Response::LoggedOut {},
            )));
        }
    }
}
