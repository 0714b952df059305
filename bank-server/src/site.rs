//! Which pages and which terminals one listener serves (a [`Site`]): what the web routes and
//! the session's admission after the handshake both go by.

use protocol::TerminalRole;

/// What one listener serves. The console's page keeps its terminal key in the browser's
/// storage for its origin, so any script of a page on that origin could use the key:
/// [`Site::Console`] on a listener of its own keeps the customer pages off that origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// The web ATM and, at `/console`, the console, on one origin; sessions of every
    /// terminal (a bank without a console listener).
    Shared,
    /// The web ATM only: `/console` is 404, and console terminals' sessions are closed.
    Customer,
    /// The console only: `/` and other pages lead to `/console`, and ATM terminals' sessions
    /// (enrollments with a code included) are closed.
    Console,
}

impl Site {
    /// Whether a session of a terminal of `role` may go on here.
    pub(crate) fn admits(self, role: TerminalRole) -> bool {
        match self {
            Self::Shared => true,
            Self::Customer => role == TerminalRole::Atm,
            Self::Console => role == TerminalRole::Console,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_site_admits_its_kind_of_terminal() {
        use TerminalRole::{Atm, Console};
        assert!(Site::Shared.admits(Atm) && Site::Shared.admits(Console));
        assert!(Site::Customer.admits(Atm) && !Site::Customer.admits(Console));
        assert!(Site::Console.admits(Console) && !Site::Console.admits(Atm));
    }
}
