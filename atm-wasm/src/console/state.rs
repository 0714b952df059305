//! The console page's state and its reducer (an `Action` enum, as in yew's function_todomvc
//! example): every change to what the console shows goes through [`ConsoleState::apply`].

use core::fmt;
use std::rc::Rc;

use protocol::console::{AuditLine, Overview, TerminalInfo};
use protocol::{BankPin, ErrorCode, Psk, Response, TerminalId};

use super::driver::{ConsoleDriver, ConsoleEvent, ConsoleKind, ConsoleOp};
use crate::link;
use crate::link::enroll::Slot;
pub use crate::link::Link;

/// Which form an error or pending mark belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsoleForm {
    /// The console enrollment form.
    Enroll,
    /// The operator login form.
    Login,
    /// The logout button.
    Logout,
    /// The form that enrolls a new terminal.
    AddTerminal,
    /// Revoke buttons in the terminals table.
    Revoke,
    /// The dashboard's periodic refresh (overview, audit, terminals).
    Refresh,
}

/// A terminal just enrolled, with its key: shown once, then dropped by
/// [`ConsoleAction::HideNewTerminal`] (or a logout). No key in `Debug`.
#[derive(Clone, PartialEq)]
pub struct NewTerminal {
    /// Its id.
    pub terminal: TerminalId,
    /// Its label.
    pub name: String,
    /// Its key (zeroized when the last copy drops).
    pub key: Psk,
}

impl fmt::Debug for NewTerminal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewTerminal")
            .field("terminal", &self.terminal.as_str())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Everything the console page shows.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ConsoleState {
    /// The enrolled console terminal's id, when this browser is enrolled as a console.
    pub terminal: Option<String>,
    /// The pin of the bank the console was enrolled with (set with `terminal`): the terminals
    /// it enrolls are given the same one, in their link and auth-file line.
    pub bank: Option<BankPin>,
    /// The link to the bank.
    pub link: Link,
    /// The logged-in operator.
    pub operator: Option<String>,
    /// The last overview.
    pub overview: Option<Overview>,
    /// The audit log's size and its newest entries, newest first.
    pub audit: Option<(u64, Vec<AuditLine>)>,
    /// How many terminals exist, and the newest of them.
    pub terminals: Option<(u64, Vec<TerminalInfo>)>,
    /// A terminal just enrolled, shown once with its key.
    pub new_terminal: Option<NewTerminal>,
    /// The web ATM's URL, when the bank serves this console on an origin of its own (the
    /// base of the enrollment links it shows); `None`: the web ATM shares this origin.
    pub atm_url: Option<String>,
    /// The terminal whose revoke button asks for confirmation.
    pub confirm_revoke: Option<String>,
    /// The terminal being revoked.
    pub revoking: Option<String>,
    /// Requests sent and not yet answered, by form.
    pub pending: Vec<ConsoleForm>,
    /// Errors shown next to what caused them.
    pub errors: Vec<(ConsoleForm, String)>,
    /// A message at the top of the page.
    pub notice: Option<String>,
    /// Bumped on each enrolled terminal, so the form clears its field.
    pub completed: u32,
}

/// Everything that can change the console page.
#[derive(Clone, Debug, PartialEq)]
pub enum ConsoleAction {
    /// This browser is now enrolled as this console terminal, of the bank with this pin.
    Enrolled(String, BankPin),
    /// The console enrollment was forgotten.
    Forgotten,
    /// The link changed.
    Link(Link),
    /// A request was sent from this form (for a revoke, about this terminal).
    Pending(ConsoleForm, Option<String>),
    /// A form's input was refused before sending.
    Invalid(ConsoleForm, String),
    /// Clear the errors of these forms.
    ClearErrors(Vec<ConsoleForm>),
    /// Something from the bank (through the driver).
    Bank(ConsoleEvent),
    /// The operator clicked "Revoke" on this terminal: ask to confirm.
    AskRevoke(String),
    /// The operator did not confirm.
    CancelRevoke,
    /// "Done, hide the key": drop the new terminal's key from the page.
    HideNewTerminal,
    /// Show a message at the top of the page (one no answer from the bank brings, like
    /// "enroll again").
    Notice(String),
    /// Hide the notice.
    DismissNotice,
    /// The bank said where its web ATM is (this console has an origin of its own).
    AtmUrl(String),
}

/// Plain words for a dropped connection.
pub const LOST: &str = "The connection to the bank was lost before it answered. Please try again.";

/// Plain words after the connection dropped under a logged-in operator.
pub const SESSION_ENDED: &str =
    "The connection to the bank dropped, so you were logged out. Please log in again.";

/// Plain words after a logout.
pub const LOGGED_OUT: &str = "You are logged out of the console.";

impl ConsoleState {
    /// The error shown for a form, if any.
    pub fn error(&self, form: ConsoleForm) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == form)
            .map(|(_, e)| e.as_str())
    }

    /// Whether a form's request is under way.
    pub fn is_pending(&self, form: ConsoleForm) -> bool {
        self.pending.contains(&form)
    }

    fn set_error(&mut self, form: ConsoleForm, message: impl Into<String>) {
        self.errors.retain(|(f, _)| *f != form);
        self.errors.push((form, message.into()));
    }

    fn done(&mut self, form: ConsoleForm) {
        self.pending.retain(|f| *f != form);
        if form == ConsoleForm::Revoke {
            self.revoking = None;
        }
    }

    /// Drops everything the operator saw (and the one-time key) and returns to the login.
    fn logged_out(&mut self, notice: &str) {
        let had_operator = self.operator.take().is_some();
        self.overview = None;
        self.audit = None;
        self.terminals = None;
        self.new_terminal = None;
        self.confirm_revoke = None;
        self.revoking = None;
        self.pending
            .retain(|f| matches!(f, ConsoleForm::Login | ConsoleForm::Enroll));
        self.errors
            .retain(|(f, _)| matches!(f, ConsoleForm::Login | ConsoleForm::Enroll));
        if had_operator {
            self.notice = Some(notice.to_owned());
        }
    }

    /// Applies one action.
    pub fn apply(&mut self, action: ConsoleAction) {
        match action {
            ConsoleAction::Enrolled(terminal, bank) => {
                self.terminal = Some(terminal);
                self.bank = Some(bank);
                self.notice = None;
                self.errors.retain(|(f, _)| *f != ConsoleForm::Enroll);
                self.link = Link::Connecting;
            }
            ConsoleAction::Forgotten => *self = Self::default(),
            ConsoleAction::Link(link) => self.link = link,
            ConsoleAction::Pending(form, terminal) => {
                if !self.pending.contains(&form) {
                    self.pending.push(form);
                }
                if form == ConsoleForm::Revoke {
                    self.revoking = terminal;
                    self.confirm_revoke = None;
                }
                self.errors.retain(|(f, _)| *f != form);
                if form != ConsoleForm::Refresh {
                    self.notice = None;
                }
            }
            ConsoleAction::Invalid(form, message) => self.set_error(form, message),
            ConsoleAction::ClearErrors(forms) => self.errors.retain(|(f, _)| !forms.contains(f)),
            ConsoleAction::Bank(event) => self.bank(event),
            ConsoleAction::AskRevoke(terminal) => {
                self.confirm_revoke = Some(terminal);
                self.errors.retain(|(f, _)| *f != ConsoleForm::Revoke);
            }
            ConsoleAction::CancelRevoke => self.confirm_revoke = None,
            ConsoleAction::HideNewTerminal => self.new_terminal = None,
            ConsoleAction::Notice(text) => self.notice = Some(text),
            ConsoleAction::DismissNotice => self.notice = None,
            ConsoleAction::AtmUrl(url) => self.atm_url = Some(url),
        }
    }

    fn bank(&mut self, event: ConsoleEvent) {
        match event {
            ConsoleEvent::Connected => self.link = Link::Up,
            ConsoleEvent::SessionEnded => self.logged_out(SESSION_ENDED),
            ConsoleEvent::Lost(kind) => {
                let form = form_of(kind);
                self.done(form);
                match kind {
                    ConsoleKind::Logout => self.logged_out(LOGGED_OUT),
                    // The refresh runs again by itself; the banner says the bank is away.
                    ConsoleKind::Overview | ConsoleKind::Audit | ConsoleKind::Terminals => {}
                    _ => self.set_error(form, LOST),
                }
            }
            ConsoleEvent::Reply(kind, response) => self.reply(kind, response),
        }
    }

    fn reply(&mut self, kind: ConsoleKind, response: Response) {
        let form = form_of(kind);
        if !matches!(
            kind,
            ConsoleKind::Overview | ConsoleKind::Audit | ConsoleKind::Terminals
        ) {
            self.done(form);
        }
        match response {
            Response::OperatorWelcome { username } => {
                self.operator = Some(username.to_string());
                self.errors.clear();
                self.notice = None;
            }
            Response::Overview(overview) => {
                self.errors.retain(|(f, _)| *f != ConsoleForm::Refresh);
                self.overview = Some(*overview);
            }
            Response::AuditEntries { total, entries } => self.audit = Some((total, entries)),
            Response::Terminals { total, terminals } => self.terminals = Some((total, terminals)),
            Response::TerminalAdded {
                terminal,
                name,
                key,
            } => {
                self.completed = self.completed.wrapping_add(1);
                self.notice = Some(format!(
                    "Terminal {} ({name}) is enrolled.",
                    terminal.as_str()
                ));
                self.new_terminal = Some(NewTerminal {
                    terminal,
                    name: name.to_string(),
                    key: key.0,
                });
            }
            Response::TerminalRevoked { terminal } => {
                self.notice = Some(format!("Terminal {} is revoked.", terminal.as_str()));
                let id = terminal.as_str();
                if let Some((_, list)) = &mut self.terminals {
                    for t in list.iter_mut().filter(|t| t.id.as_str() == id) {
                        t.revoked = true;
                    }
                }
            }
            Response::LoggedOut {} => self.logged_out(LOGGED_OUT),
            Response::Error { code } => self.refused(kind, code),
            // Not answers to console requests; nothing to show.
            _ => {}
        }
    }

    fn refused(&mut self, kind: ConsoleKind, code: ErrorCode) {
        match kind {
            // A logout ends the session here whatever the bank says.
            ConsoleKind::Logout => self.logged_out(LOGGED_OUT),
            ConsoleKind::Overview | ConsoleKind::Audit | ConsoleKind::Terminals => {
                self.set_error(ConsoleForm::Refresh, code.message());
            }
            other => self.set_error(form_of(other), code.message()),
        }
    }
}

/// The form an operation is sent from.
pub fn form_of(kind: ConsoleKind) -> ConsoleForm {
    match kind {
        ConsoleKind::Login => ConsoleForm::Login,
        ConsoleKind::Overview | ConsoleKind::Audit | ConsoleKind::Terminals => ConsoleForm::Refresh,
        ConsoleKind::AddTerminal => ConsoleForm::AddTerminal,
        ConsoleKind::Revoke => ConsoleForm::Revoke,
        ConsoleKind::Logout => ConsoleForm::Logout,
    }
}

impl yew::Reducible for ConsoleState {
    type Action = ConsoleAction;

    fn reduce(self: Rc<Self>, action: ConsoleAction) -> Rc<Self> {
        let mut next = (*self).clone();
        next.apply(action);
        Rc::new(next)
    }
}

impl link::Page for ConsoleState {
    type Driver = ConsoleDriver;
    type Action = ConsoleAction;
    const SLOT: Slot = Slot::Console;
    const NOT_STORED: &'static str = "This browser would not store the console key (private \
                                      mode?). The console works until the page is closed.";
    const NO_WEBCRYPTO: &'static str = "This browser cannot hold the console key safely \
                                        (WebCrypto is missing: open the console over https, or \
                                        on this computer). Nothing was kept.";

    fn enrolled(terminal: &TerminalId, bank: &BankPin) -> ConsoleAction {
        ConsoleAction::Enrolled(terminal.to_string(), bank.clone())
    }

    fn forgotten() -> ConsoleAction {
        ConsoleAction::Forgotten
    }

    fn notice(text: String) -> ConsoleAction {
        ConsoleAction::Notice(text)
    }

    fn link(link: Link) -> ConsoleAction {
        ConsoleAction::Link(link)
    }

    fn bank(event: ConsoleEvent) -> ConsoleAction {
        ConsoleAction::Bank(event)
    }

    /// The refresh shows nothing under way; a revoke says which terminal.
    fn pending(op: &ConsoleOp) -> Option<ConsoleAction> {
        let form = form_of(op.kind());
        let terminal = match op {
            ConsoleOp::Revoke { terminal } => Some(terminal.as_str().to_owned()),
            _ => None,
        };
        (form != ConsoleForm::Refresh).then_some(ConsoleAction::Pending(form, terminal))
    }
}
