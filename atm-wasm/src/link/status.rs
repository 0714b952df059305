//! How the link to the bank is doing, as both pages show it.

/// How the link to the bank is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Link {
    /// Not connected and not trying (not enrolled).
    #[default]
    Idle,
    /// Opening the socket or in the handshake.
    Connecting,
    /// Handshake done.
    Up,
    /// The last attempt failed; retrying. The count is of failures in a row.
    Down(u32),
    /// The bank closed the connection during the handshake several times in a row: most
    /// likely it does not accept this terminal (revoked, or the data was reset).
    Refused,
}
