//! [`Control`]: the messages that drive a component's lifecycle from outside.

use std::time::Duration;

/// Control messages, as in the original Go Kinesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop the component for good: `stop`, then tear down. It overtakes
    /// queued messages, which get `Error::Stopping`.
    Shutdown,
    /// `stop`, then `start` again, keeping state and queued messages.
    Restart,
    /// As `Restart`, waiting this long between `stop` and `start`; messages
    /// wait meanwhile.
    RestartAfter(Duration),
    /// Write the persisted fields now, even if they did not change.
    Persist,
    /// Publish the current snapshot to callbacks and subscribers again.
    NotifyPeers,
}
