//! The ATM's link to the bank in the browser: the session driver's frames over a [`Socket`], a
//! fresh handshake on every (re)connect, and the idle-logout clock.

use std::cell::RefCell;
use std::rc::Rc;

use protocol::{Config, Response};
use rand_core::OsRng;
use yew::Callback;

use crate::atm::driver::{Broken, Driver, Event, Op, OpKind, Output};
use crate::atm::idle::{self, Idle};
use crate::atm::state::{form_of, Action, Link};
use crate::link::enroll::Enrollment;
use crate::link::socket::{self, Socket};

/// The current time in Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    // Date.now() is a whole number of milliseconds well inside u64.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ms = js_sys::Date::now() as u64;
    ms
}

struct Inner {
    driver: Option<Driver>,
    socket: Socket,
    failures: u32,
    last_activity: u64,
    warned: bool,
}

/// The ATM's connection to the bank. Clone the `Rc` to share it with callbacks.
pub(crate) struct Controller {
    inner: RefCell<Inner>,
    dispatch: Callback<Action>,
}

impl Controller {
    pub(crate) fn new(dispatch: Callback<Action>) -> Rc<Self> {
        Rc::new(Self {
            inner: RefCell::new(Inner {
                driver: None,
                socket: Socket::default(),
                failures: 0,
                last_activity: now_ms(),
                warned: false,
            }),
            dispatch,
        })
    }

    /// Starts speaking for this terminal: drops any previous session and connects.
    pub(crate) fn enroll(self: &Rc<Self>, enrollment: &Enrollment) {
        {
            let mut inner = self.inner.borrow_mut();
            inner.driver = Some(Driver::new(
                enrollment.terminal.clone(),
                enrollment.psk.clone(),
                enrollment.bank.clone(),
                Config::default(),
            ));
            inner.failures = 0;
        }
        self.connect();
    }

    /// Forgets the terminal: closes the connection and drops every key.
    pub(crate) fn forget(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.socket.next();
        inner.driver = None;
    }

    fn connect(self: &Rc<Self>) {
        let (generation, hello) = {
            let mut inner = self.inner.borrow_mut();
            let generation = inner.socket.next();
            let Some(driver) = inner.driver.as_mut() else {
                return;
            };
            (generation, driver.connect(&mut OsRng, now_ms()))
        };
        if self.inner.borrow().failures == 0 {
            self.dispatch.emit(Action::Link(Link::Connecting));
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
    fn frame(self: &Rc<Self>, generation: u64, frame: &[u8]) -> Result<(), Broken> {
        let out = {
            let mut inner = self.inner.borrow_mut();
            if !inner.socket.is_current(generation) {
                return Err(Broken::Unexpected);
            }
            let Some(driver) = inner.driver.as_mut() else {
                return Err(Broken::Unexpected);
            };
            driver.receive(frame, &mut OsRng, now_ms())?
        };
        self.deliver(out);
        Ok(())
    }

    fn deliver(self: &Rc<Self>, out: Output) {
        self.inner.borrow().socket.send(out.send);
        for event in out.events {
            match &event {
                Event::Connected => self.inner.borrow_mut().failures = 0,
                Event::Reply(OpKind::Login | OpKind::Register, Response::Welcome { .. }) => {
                    self.touch();
                }
                _ => {}
            }
            self.dispatch.emit(Action::Bank(event));
        }
    }

    /// The socket closed (or must be closed): tell the driver, show it, reconnect later.
    fn closed(self: &Rc<Self>, generation: u64, broken: Option<Broken>) {
        let (events, failures) = {
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
            if !was_up {
                inner.failures += 1;
            }
            (events, inner.failures)
        };
        for event in events {
            self.dispatch.emit(Action::Bank(event));
        }
        let link = match broken {
            Some(Broken::Handshake) => Link::Refused,
            _ if failures == 0 => Link::Connecting,
            _ => Link::Down(failures),
        };
        self.dispatch.emit(Action::Link(link));
        let this = Rc::clone(self);
        socket::after_backoff(failures, move || {
            if this.inner.borrow().socket.is_current(generation) {
                this.connect();
            }
        });
    }

    /// Sends an operation (or queues it until the link is up). A second operation of a kind
    /// already under way is ignored, so a double click sends once.
    pub(crate) fn submit(self: &Rc<Self>, op: Op) {
        let kind = op.kind();
        let result = {
            let mut inner = self.inner.borrow_mut();
            let Some(driver) = inner.driver.as_mut() else {
                return;
            };
            driver.submit(op, &mut OsRng, now_ms())
        };
        match result {
            None => {}
            Some(Ok(out)) => {
                self.dispatch.emit(Action::Pending(form_of(kind)));
                self.deliver(out);
            }
            Some(Err(_)) => {
                self.dispatch.emit(Action::Pending(form_of(kind)));
                let generation = self.inner.borrow().socket.generation();
                self.closed(generation, Some(Broken::Record));
            }
        }
    }

    /// Whether an operation of this kind is under way.
    pub(crate) fn busy(&self, kind: OpKind) -> bool {
        self.inner
            .borrow()
            .driver
            .as_ref()
            .is_some_and(|d| d.busy(kind))
    }

    /// Logs out: asks the bank when connected, and in any case forgets the login here.
    pub(crate) fn logout(self: &Rc<Self>) {
        let up = {
            let inner = self.inner.borrow();
            inner.driver.as_ref().is_some_and(Driver::is_up)
        };
        if up {
            self.submit(Op::Logout);
        }
        if let Some(driver) = self.inner.borrow_mut().driver.as_mut() {
            driver.end_session();
        }
        if !up {
            self.dispatch.emit(Action::Bank(Event::Reply(
                OpKind::Logout,
                Response::LoggedOut {},
            )));
        }
    }

    /// The person did something: restart the idle clock.
    pub(crate) fn touch(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.last_activity = now_ms();
        if inner.warned {
            inner.warned = false;
            self.dispatch.emit(Action::IdleWarning(None));
        }
    }

    /// Called every second: warns before, then performs, the idle logout.
    pub(crate) fn tick(self: &Rc<Self>) {
        let (logged_in, last) = {
            let inner = self.inner.borrow();
            let logged_in = inner.driver.as_ref().is_some_and(Driver::logged_in);
            (logged_in, inner.last_activity)
        };
        if !logged_in {
            return;
        }
        match idle::check(last, now_ms(), idle::IDLE_LIMIT_MS) {
            Idle::Active => {}
            Idle::Warn(secs) => {
                self.inner.borrow_mut().warned = true;
                self.dispatch.emit(Action::IdleWarning(Some(secs)));
            }
            Idle::Expired => {
                self.inner.borrow_mut().warned = false;
                self.logout();
                self.dispatch.emit(Action::IdleLogout);
            }
        }
    }
}

impl Controller {
    /// Whether a terminal is set up.
    pub(crate) fn has_driver(&self) -> bool {
        self.inner.borrow().driver.is_some()
    }
}
