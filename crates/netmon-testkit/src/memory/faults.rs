//! What [`super::MemoryStore`] counts and lets tests break: one [`Op`] per port method, a fault
//! hook consulted on every call, and a per-operation call counter.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Declares [`Op`] from one table: variant, method name, and whether it may write.
macro_rules! ops {
    ($($variant:ident => $name:literal, $write:literal;)*) => {
        /// A store port method, as counted and offered to the fault hook.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Op {
            $(#[doc = concat!("`", $name, "`")] $variant,)*
        }

        impl Op {
            /// Every method, in declaration order.
            pub const ALL: &'static [Op] = &[$(Op::$variant),*];

            /// The port method's name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Op::$variant => $name,)*
                }
            }

            /// Whether the method may change stored data (`claim` is a conditional put, so a
            /// write).
            pub(crate) fn is_write(self) -> bool {
                match self {
                    $(Op::$variant => $write,)*
                }
            }
        }
    };
}

ops! {
    // TargetStore
    GetTarget => "get_target", false;
    ListTargets => "list_targets", false;
    AllTargets => "all_targets", false;
    PutTarget => "put_target", true;
    DeleteTarget => "delete_target", true;
    FindByHeartbeatToken => "find_by_heartbeat_token", false;
    // ChannelStore
    ListChannels => "list_channels", false;
    PutChannel => "put_channel", true;
    DeleteChannel => "delete_channel", true;
    // StateStore
    LoadState => "load_state", false;
    CommitState => "commit_state", true;
    ListStates => "list_states", false;
    ListIncidents => "list_incidents", false;
    // Outbox
    Pending => "pending", false;
    MarkPublished => "mark_published", true;
    // Idempotency
    Claim => "claim", true;
    Complete => "complete", true;
    Release => "release", true;
    // HistoryStore
    Record => "record", true;
    Buckets => "buckets", false;
    ResultsSince => "results_since", false;
    // HeartbeatStore
    RecordPing => "record_ping", true;
    LastPings => "last_pings", false;
    // ApiKeyStore
    CreateKey => "create_key", true;
    GetKey => "get_key", false;
    ListKeys => "list_keys", false;
    RevokeKey => "revoke_key", true;
    // MaintenanceStore
    GetWindow => "get_window", false;
    ListWindows => "list_windows", false;
    PutWindow => "put_window", true;
    DeleteWindow => "delete_window", true;
    // ReplyStore
    PutReply => "put_reply", true;
    GetReply => "get_reply", false;
    // NotificationLog
    RecordAttempt => "record_attempt", true;
    Notifications => "notifications", false;
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One call as the fault hook sees it: which method, and which call of that method it is
/// (1 for the first since the store was made or its counts were reset), so a hook can pick
/// "the second `commit_state`" without keeping state of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub op: Op,
    pub nth: u64,
}

/// What the fault hook decides for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Run normally.
    #[default]
    None,
    /// Fail with `StoreError::Unavailable` without touching anything (throttling, an outage).
    Before,
    /// Run the call, so a write lands, then fail with `StoreError::Unavailable` whatever the
    /// call returned (a Lambda timeout or a lost response).
    After,
}

pub(super) type Hook = dyn Fn(Call) -> Fault + Send + Sync;

/// Call counts and the hook, under their own lock (never held while the hook runs, so a hook
/// may read the counts).
#[derive(Default)]
pub(super) struct Calls {
    inner: Mutex<CallsInner>,
}

#[derive(Default)]
struct CallsInner {
    counts: BTreeMap<Op, u64>,
    hook: Option<Arc<Hook>>,
}

impl Calls {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallsInner> {
        // Counters stay meaningful after a panicking test thread; nothing here is half-written.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the call and asks the hook about it.
    pub(super) fn begin(&self, op: Op) -> Fault {
        let (nth, hook) = {
            let mut inner = self.lock();
            let n = inner.counts.entry(op).or_default();
            *n += 1;
            (*n, inner.hook.clone())
        };
        hook.map_or(Fault::None, |h| h(Call { op, nth }))
    }

    pub(super) fn set_hook(&self, hook: Option<Arc<Hook>>) {
        self.lock().hook = hook;
    }

    pub(super) fn count(&self, op: Op) -> u64 {
        self.lock().counts.get(&op).copied().unwrap_or(0)
    }

    pub(super) fn counts(&self) -> BTreeMap<Op, u64> {
        self.lock().counts.clone()
    }

    pub(super) fn reset(&self) {
        self.lock().counts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct() {
        let names: std::collections::BTreeSet<_> = Op::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), Op::ALL.len());
        assert_eq!(Op::ALL.len(), 35);
        assert_eq!(Op::ALL.iter().filter(|o| o.is_write()).count(), 17);
    }

    #[test]
    fn calls_are_numbered_per_op_and_reset() {
        let calls = Calls::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        calls.set_hook(Some(Arc::new(move |c: Call| {
            s.lock().unwrap().push(c);
            if c.nth == 2 {
                Fault::After
            } else {
                Fault::None
            }
        })));
        assert_eq!(calls.begin(Op::Claim), Fault::None);
        assert_eq!(calls.begin(Op::Record), Fault::None);
        assert_eq!(calls.begin(Op::Claim), Fault::After);
        assert_eq!(calls.count(Op::Claim), 2);
        assert_eq!(calls.count(Op::Release), 0);
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            [
                Call {
                    op: Op::Claim,
                    nth: 1
                },
                Call {
                    op: Op::Record,
                    nth: 1
                },
                Call {
                    op: Op::Claim,
                    nth: 2
                },
            ]
        );
        calls.reset();
        assert_eq!(calls.begin(Op::Claim), Fault::None, "numbering restarts");
        calls.set_hook(None);
        assert_eq!(calls.begin(Op::Claim), Fault::None);
        assert_eq!(calls.counts().get(&Op::Claim), Some(&2));
    }
}
