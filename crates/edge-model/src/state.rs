//! The live event state machine (AMS `LiveEventResourceState`).
//!
//! ```text
//! create ──► Stopped ──allocate──► Allocating ──► StandBy ──start──► Starting ──► Running
//!               ▲   └──────────────start─────────────────────────────┘              │
//!               └────────────── Stopping ◄───────────────stop──────────────────────┘
//! Stopped|StandBy ──delete──► Deleting ──► (gone)
//! Running ──reset──► Stopping ──► Starting ──► Running   (live outputs deleted)
//! ```
//! Every long-running action moves the event to an intermediate state at once (persisted with
//! the operation row) and to its target state when the work completes. An action that is
//! already satisfied is a no-op success, as ARM idempotency expects.

use crate::LiveEventState as S;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveEventAction {
    Allocate,
    Start,
    Stop,
    Reset,
    Delete,
    Update,
}

impl LiveEventAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveEventAction::Allocate => "allocate",
            LiveEventAction::Start => "start",
            LiveEventAction::Stop => "stop",
            LiveEventAction::Reset => "reset",
            LiveEventAction::Delete => "delete",
            LiveEventAction::Update => "update",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            LiveEventAction::Allocate,
            LiveEventAction::Start,
            LiveEventAction::Stop,
            LiveEventAction::Reset,
            LiveEventAction::Delete,
            LiveEventAction::Update,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
}

/// What an action does to an event in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Already in the requested state: succeed without an operation doing work.
    NoOp,
    /// Enter `during` now; `target` when the work completes (`None`: the event is gone).
    Run { during: S, target: Option<S> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransitionError(pub String);

pub fn transition(state: S, action: LiveEventAction) -> Result<Transition, TransitionError> {
    use LiveEventAction as A;
    let busy =
        || TransitionError(format!("The live event is {state}; wait until the current operation completes and retry."));
    match (action, state) {
        (_, S::Allocating | S::Starting | S::Stopping | S::Deleting) => Err(busy()),
        (A::Allocate, S::Stopped) => Ok(Transition::Run { during: S::Allocating, target: Some(S::StandBy) }),
        (A::Allocate, S::StandBy) => Ok(Transition::NoOp),
        (A::Allocate, S::Running) => {
            Err(TransitionError("The live event is Running; allocate applies only to a Stopped live event.".into()))
        }
        (A::Start, S::Stopped | S::StandBy) => Ok(Transition::Run { during: S::Starting, target: Some(S::Running) }),
        (A::Start, S::Running) => Ok(Transition::NoOp),
        (A::Stop, S::Running | S::StandBy) => Ok(Transition::Run { during: S::Stopping, target: Some(S::Stopped) }),
        (A::Stop, S::Stopped) => Ok(Transition::NoOp),
        (A::Reset, S::Running) => Ok(Transition::Run { during: S::Stopping, target: Some(S::Running) }),
        (A::Reset, _) => {
            Err(TransitionError(format!("The live event is {state}; reset applies only to a Running live event.")))
        }
        (A::Delete, S::Stopped | S::StandBy) => Ok(Transition::Run { during: S::Deleting, target: None }),
        (A::Delete, S::Running) => {
            Err(TransitionError("The live event is Running; stop it first (POST .../stop), then delete it.".into()))
        }
        (A::Update, s) => Ok(Transition::Run { during: s, target: Some(s) }),
    }
}

/// Where an event left in an intermediate state by a crash ends up at start-up: the action is
/// completed forwards when that is safe (a Starting event becomes Running again, so a venue's
/// encoder can reconnect after a power cut), otherwise the event is brought to rest.
pub fn recover(state: S, action: Option<LiveEventAction>) -> Option<S> {
    match (state, action) {
        (S::Starting, _) => Some(S::Running),
        (S::Allocating, _) => Some(S::StandBy),
        (S::Stopping, Some(LiveEventAction::Reset)) => Some(S::Running),
        (S::Stopping, _) => Some(S::Stopped),
        (S::Deleting, _) => None,
        (s, _) => Some(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LiveEventAction as A;

    #[test]
    fn happy_path() {
        assert_eq!(
            transition(S::Stopped, A::Start).unwrap(),
            Transition::Run { during: S::Starting, target: Some(S::Running) }
        );
        assert_eq!(
            transition(S::Running, A::Stop).unwrap(),
            Transition::Run { during: S::Stopping, target: Some(S::Stopped) }
        );
        assert_eq!(transition(S::Stopped, A::Delete).unwrap(), Transition::Run { during: S::Deleting, target: None });
        assert_eq!(
            transition(S::Stopped, A::Allocate).unwrap(),
            Transition::Run { during: S::Allocating, target: Some(S::StandBy) }
        );
        assert_eq!(
            transition(S::StandBy, A::Start).unwrap(),
            Transition::Run { during: S::Starting, target: Some(S::Running) }
        );
    }

    #[test]
    fn idempotent_actions_are_noops() {
        assert_eq!(transition(S::Running, A::Start).unwrap(), Transition::NoOp);
        assert_eq!(transition(S::Stopped, A::Stop).unwrap(), Transition::NoOp);
        assert_eq!(transition(S::StandBy, A::Allocate).unwrap(), Transition::NoOp);
    }

    #[test]
    fn refusals_say_what_to_do() {
        let e = transition(S::Running, A::Delete).unwrap_err();
        assert!(e.0.contains("stop it first"), "{e}");
        for busy in [S::Starting, S::Stopping, S::Allocating, S::Deleting] {
            for a in [A::Start, A::Stop, A::Delete, A::Reset, A::Allocate, A::Update] {
                assert!(transition(busy, a).is_err(), "{busy:?} {a:?}");
            }
        }
        assert!(transition(S::Stopped, A::Reset).is_err());
        assert!(transition(S::Running, A::Allocate).is_err());
    }

    #[test]
    fn every_state_action_pair_is_decided() {
        // Exhaustive: no pair panics, and every Run target is a resting state.
        for &s in S::ALL {
            for a in [A::Allocate, A::Start, A::Stop, A::Reset, A::Delete, A::Update] {
                if let Ok(Transition::Run { target: Some(t), .. }) = transition(s, a) {
                    assert!(matches!(t, S::Stopped | S::StandBy | S::Running), "{s:?} {a:?}");
                }
            }
        }
    }

    #[test]
    fn recovery_never_leaves_an_intermediate_state() {
        for &s in S::ALL {
            for a in [None, Some(A::Start), Some(A::Stop), Some(A::Reset), Some(A::Delete)] {
                if let Some(r) = recover(s, a) {
                    assert!(matches!(r, S::Stopped | S::StandBy | S::Running), "{s:?} -> {r:?}");
                }
            }
        }
        assert_eq!(recover(S::Starting, Some(A::Start)), Some(S::Running));
        assert_eq!(recover(S::Stopping, Some(A::Stop)), Some(S::Stopped));
        assert_eq!(recover(S::Deleting, Some(A::Delete)), None);
    }

    #[test]
    fn action_names_round_trip() {
        assert_eq!(LiveEventAction::parse("START"), Some(A::Start));
        assert_eq!(LiveEventAction::parse("nope"), None);
    }
}
