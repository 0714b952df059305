//! The ATM's idle-logout clock in the browser: restarted by the person's activity and by a
//! welcome, it warns before, then performs, the idle logout (the rule is [`super::idle`]).

use std::cell::Cell;
use std::rc::Rc;

use protocol::Response;
use yew::Callback;

use super::driver::{Event, OpKind};
use super::idle::{self, Idle};
use super::state::{Action, State};
use crate::link::controller::{now_ms, Controller};
use crate::link::Driver as _;

/// When the person last did something, and whether the warning shows.
pub(crate) struct IdleClock {
    last_activity: Cell<u64>,
    warned: Cell<bool>,
    dispatch: Callback<Action>,
}

impl IdleClock {
    pub(crate) fn new(dispatch: Callback<Action>) -> Self {
        Self {
            last_activity: Cell::new(now_ms()),
            warned: Cell::new(false),
            dispatch,
        }
    }

    /// Restarts the clock when this action is a welcome (a login or a registration).
    pub(crate) fn heard(&self, action: &Action) {
        if matches!(
            action,
            Action::Bank(Event::Reply(
                OpKind::Login | OpKind::Register,
                Response::Welcome { .. }
            ))
        ) {
            self.touch();
        }
    }

    /// The person did something: restart the idle clock.
    pub(crate) fn touch(&self) {
        self.last_activity.set(now_ms());
        if self.warned.replace(false) {
            self.dispatch.emit(Action::IdleWarning(None));
        }
    }

    /// Called every second: warns before, then performs, the idle logout.
    pub(crate) fn tick(&self, controller: &Rc<Controller<State>>) {
        if !controller.read(|d| d.logged_in()).unwrap_or(false) {
            return;
        }
        match idle::check(self.last_activity.get(), now_ms(), idle::IDLE_LIMIT_MS) {
            Idle::Active => {}
            Idle::Warn(secs) => {
                self.warned.set(true);
                self.dispatch.emit(Action::IdleWarning(Some(secs)));
            }
            Idle::Expired => {
                self.warned.set(false);
                controller.logout();
                self.dispatch.emit(Action::IdleLogout);
            }
        }
    }
}
