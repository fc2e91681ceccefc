//! What a completion means for the IO: done, retry on another path, or fail
//! back to the application. One function, so the rule is in one place.
//!
//! Path errors are retried whatever DNR says (they describe the path, not the
//! command: NVMe Base 2.0c §8.2.3, "retry on another path"); so are commands
//! aborted by a queue deletion or by our own Abort of a timed-out command, and
//! a namespace not ready without DNR. A command error (LBA out of range,
//! invalid field, media error, anything with DNR) is returned at once: retrying it elsewhere would give the same answer
//! or, worse, execute a command the controller refused.

use engine::host::ctrlr::PathFault;
use protocol::log::AnaState;
use protocol::status::{generic, path, StatusCodeType};
use protocol::Status;

/// What to do with a completed IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Succeeded: hand it to the application.
    Done,
    /// Failed because of the path: try another one. `ana`: the ANA state the
    /// status reports for this path, to record.
    RetryPath {
        /// The path's ANA state as the status tells it.
        ana: Option<AnaState>,
        /// How the queue pair died, when it did.
        fault: Option<PathFault>,
    },
    /// Failed because of the command: hand the error to the application.
    Fail,
}

/// Classifies a completion.
pub fn classify(status: Status, fault: Option<PathFault>) -> Disposition {
    if status.is_success() {
        return Disposition::Done;
    }
    if fault.is_some() {
        return Disposition::RetryPath { ana: None, fault };
    }
    use StatusCodeType::{Generic, Path};
    match (status.sct, status.sc) {
        (Path, path::ANA_INACCESSIBLE) => Disposition::RetryPath { ana: Some(AnaState::Inaccessible), fault },
        (Path, path::ANA_PERSISTENT_LOSS) => Disposition::RetryPath { ana: Some(AnaState::PersistentLoss), fault },
        (Path, path::ANA_TRANSITION) => Disposition::RetryPath { ana: Some(AnaState::Change), fault },
        (Path, _) => Disposition::RetryPath { ana: None, fault },
        (Generic, generic::ABORTED_SQ_DELETION) => Disposition::RetryPath { ana: None, fault },
        // Only this host aborts its commands, and only ones that timed out: an
        // aborted command is over on the controller, so it is safe to send again.
        (Generic, generic::ABORT_REQUESTED) => Disposition::RetryPath { ana: None, fault },
        (Generic, generic::NAMESPACE_NOT_READY) if !status.dnr => Disposition::RetryPath { ana: None, fault },
        _ => Disposition::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_errors_are_never_retried() {
        for st in [
            Status::generic(generic::LBA_OUT_OF_RANGE).with_dnr(),
            Status::generic(generic::INVALID_FIELD).with_dnr(),
            Status::generic(generic::INVALID_FIELD),
            Status::generic(generic::NAMESPACE_NOT_READY).with_dnr(),
            Status::generic(generic::INTERNAL_ERROR),
        ] {
            assert_eq!(classify(st, None), Disposition::Fail, "{st:?}");
        }
    }

    #[test]
    fn path_errors_are_retried_even_with_dnr() {
        assert!(matches!(classify(Status::path(path::HOST_PATHING_ERROR), None), Disposition::RetryPath { .. }));
        assert!(matches!(
            classify(Status::path(path::ANA_INACCESSIBLE).with_dnr(), None),
            Disposition::RetryPath { ana: Some(AnaState::Inaccessible), .. }
        ));
        assert!(matches!(classify(Status::generic(generic::NAMESPACE_NOT_READY), None), Disposition::RetryPath { .. }));
        assert!(matches!(classify(Status::generic(generic::ABORT_REQUESTED), None), Disposition::RetryPath { .. }));
        assert!(matches!(
            classify(Status::path(path::HOST_PATHING_ERROR), Some(PathFault::PeerClosed)),
            Disposition::RetryPath { fault: Some(PathFault::PeerClosed), .. }
        ));
    }
}
