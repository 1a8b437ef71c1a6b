//! `ReplyStore`: EventRPC reply records; the first reply for a correlation id wins.

use std::future::Future;

use netmon_core::ports::ReplyStore;
use netmon_core::rpc::{RpcOutcome, RpcReply};
use serde_json::json;

use super::fixtures::{at, tenant, unique};

pub async fn run_all<S, F, Fut>(new_store: F)
where
    S: ReplyStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    first_reply_wins(&new_store().await).await;
    failures_round_trip(&new_store().await).await;
}

pub async fn first_reply_wins<S: ReplyStore + ?Sized>(store: &S) {
    let t = tenant("rpc");
    let id = unique("corr");
    assert_eq!(store.get_reply(&id).await.expect("get unknown"), None);
    let reply = RpcReply {
        correlation_id: id.clone(),
        tenant: t.clone(),
        at: at(5),
        outcome: RpcOutcome::Success {
            body: json!({"results": [{"target": "api", "outcome": "up"}]}),
        },
    };
    assert!(store.put_reply(&reply, at(600)).await.expect("put"));
    assert_eq!(
        store.get_reply(&id).await.expect("get"),
        Some(reply.clone())
    );
    let later = RpcReply {
        at: at(9),
        outcome: RpcOutcome::Failure {
            message: "redelivered".into(),
        },
        ..reply.clone()
    };
    assert!(!store.put_reply(&later, at(600)).await.expect("put again"));
    assert_eq!(
        store.get_reply(&id).await.expect("get after second put"),
        Some(reply),
        "the first reply is kept"
    );
}

pub async fn failures_round_trip<S: ReplyStore + ?Sized>(store: &S) {
    let t = tenant("rpcf");
    let reply = RpcReply {
        correlation_id: unique("corr"),
        tenant: t,
        at: at(1),
        outcome: RpcOutcome::Failure {
            message: "the prober could not run the job".into(),
        },
    };
    assert!(store.put_reply(&reply, at(60)).await.expect("put"));
    assert_eq!(
        store.get_reply(&reply.correlation_id).await.expect("get"),
        Some(reply)
    );
}
