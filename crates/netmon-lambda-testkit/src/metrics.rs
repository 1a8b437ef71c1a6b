//! Counts AWS API calls, so tests and benchmarks can report "AWS calls per probe" and "DynamoDB
//! writes per probe" exactly (cost is a feature: design.md §5).
//!
//! An SDK interceptor sees every execution of the client it is attached to (see
//! `netmon_aws::clients::Clients::builder`): one *call* per operation invoked, one *attempt* per
//! HTTP request sent (SDK retries included), one *error* per call that finally failed. DynamoDB
//! item writes are read from the typed inputs: PutItem, UpdateItem and DeleteItem write one
//! item, BatchWriteItem one per request, TransactWriteItems one per Put/Update/Delete
//! (ConditionCheck items write nothing), and PartiQL statements count when they are INSERT,
//! UPDATE or DELETE. A write is counted when it is sent, whatever its outcome: a failed
//! conditional write consumes write capacity too. Items a BatchWriteItem returns as unprocessed
//! are counted again when the caller resends them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::batch_execute_statement::BatchExecuteStatementInput;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::execute_statement::ExecuteStatementInput;
use aws_sdk_dynamodb::operation::execute_transaction::ExecuteTransactionInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef, Input,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Per-operation numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpStats {
    /// Operations invoked (one per `send()`).
    pub calls: u64,
    /// HTTP requests sent, retries included.
    pub attempts: u64,
    /// Calls that finally returned an error.
    pub errors: u64,
}

/// A point-in-time copy of the counters. Subtract two with [`CallSnapshot::since`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallSnapshot {
    /// Keyed by (service, operation) as the SDK names them: `("DynamoDB", "PutItem")`,
    /// `("SNS", "PublishBatch")`, `("SQS", "SendMessageBatch")`.
    pub operations: BTreeMap<(String, String), OpStats>,
    /// DynamoDB items written (see the module docs for what counts).
    pub dynamodb_item_writes: u64,
    /// The part of `dynamodb_item_writes` made in transactions (billed at twice the units).
    pub dynamodb_transactional_item_writes: u64,
}

impl CallSnapshot {
    pub fn total_calls(&self) -> u64 {
        self.operations.values().map(|s| s.calls).sum()
    }

    pub fn total_attempts(&self) -> u64 {
        self.operations.values().map(|s| s.attempts).sum()
    }

    pub fn total_errors(&self) -> u64 {
        self.operations.values().map(|s| s.errors).sum()
    }

    /// Calls of one operation (`calls("SQS", "SendMessageBatch")`).
    pub fn calls(&self, service: &str, operation: &str) -> u64 {
        self.operations
            .get(&(service.to_owned(), operation.to_owned()))
            .map_or(0, |s| s.calls)
    }

    /// Calls to one service, every operation.
    /// What happened between `earlier` and `self` (counters only grow, so this is exact for two
    /// snapshots of one counter).
    pub fn since(&self, earlier: &CallSnapshot) -> CallSnapshot {
        let operations = self
            .operations
            .iter()
            .filter_map(|(key, now)| {
                let before = earlier.operations.get(key).copied().unwrap_or_default();
                let d = OpStats {
                    calls: now.calls.saturating_sub(before.calls),
                    attempts: now.attempts.saturating_sub(before.attempts),
                    errors: now.errors.saturating_sub(before.errors),
                };
                (d != OpStats::default()).then(|| (key.clone(), d))
            })
            .collect();
        CallSnapshot {
            operations,
            dynamodb_item_writes: self
                .dynamodb_item_writes
                .saturating_sub(earlier.dynamodb_item_writes),
            dynamodb_transactional_item_writes: self
                .dynamodb_transactional_item_writes
                .saturating_sub(earlier.dynamodb_transactional_item_writes),
        }
    }
}

impl fmt::Display for CallSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} AWS calls ({} attempts, {} errors); {} DynamoDB item writes ({} transactional)",
            self.total_calls(),
            self.total_attempts(),
            self.total_errors(),
            self.dynamodb_item_writes,
            self.dynamodb_transactional_item_writes
        )?;
        for ((service, op), s) in &self.operations {
            writeln!(
                f,
                "  {service:<9} {op:<26} {:>6} calls {:>6} attempts {:>4} errors",
                s.calls, s.attempts, s.errors
            )?;
        }
        Ok(())
    }
}

/// Shared counters. Clones count into the same numbers.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    inner: Arc<Mutex<CallSnapshot>>,
}

impl CallCounter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> CallSnapshot {
        self.lock().clone()
    }

    /// An interceptor for `netmon_aws::clients::Clients::builder` (or any SDK client config).
    pub fn interceptor(&self) -> SharedInterceptor {
        SharedInterceptor::new(CountingInterceptor {
            counter: self.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CallSnapshot> {
        // Counters stay meaningful after a panic elsewhere: every update is a single increment.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, cfg: &ConfigBag, f: impl FnOnce(&mut OpStats)) {
        let key = match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_owned(), m.name().to_owned()),
            None => ("unknown".to_owned(), "unknown".to_owned()),
        };
        f(self.lock().operations.entry(key).or_default());
    }
}

/// Attached to each client config by [`CallCounter::interceptor`].
#[derive(Debug, Clone)]
struct CountingInterceptor {
    counter: CallCounter,
}

impl Intercept for CountingInterceptor {
    fn name(&self) -> &'static str {
        "netmon.CallCounter"
    }

    // Runs once per execution after the operation's config (and so its Metadata) is in the bag;
    // `read_before_execution` runs before that for client-level interceptors.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.counter.update(cfg, |s| s.calls += 1);
        let (writes, transactional) = dynamodb_writes(context.input());
        if writes > 0 {
            let mut snap = self.counter.lock();
            snap.dynamodb_item_writes += writes;
            snap.dynamodb_transactional_item_writes += transactional;
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.counter.update(cfg, |s| s.attempts += 1);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if matches!(context.output_or_error(), Some(Err(_))) {
            self.counter.update(cfg, |s| s.errors += 1);
        }
        Ok(())
    }
}

/// (items written, of which in a transaction) for a DynamoDB input; (0, 0) for anything else.
fn dynamodb_writes(input: &Input) -> (u64, u64) {
    fn n(len: usize) -> u64 {
        u64::try_from(len).unwrap_or(u64::MAX)
    }
    if input.downcast_ref::<PutItemInput>().is_some()
        || input.downcast_ref::<UpdateItemInput>().is_some()
        || input.downcast_ref::<DeleteItemInput>().is_some()
    {
        return (1, 0);
    }
    if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
        let items = i
            .request_items()
            .map_or(0, |m| m.values().map(Vec::len).sum());
        return (n(items), 0);
    }
    if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
        let items = i
            .transact_items()
            .iter()
            .filter(|t| t.put().is_some() || t.update().is_some() || t.delete().is_some())
            .count();
        return (n(items), n(items));
    }
    if let Some(i) = input.downcast_ref::<ExecuteStatementInput>() {
        return (u64::from(is_write_statement(i.statement())), 0);
    }
    if let Some(i) = input.downcast_ref::<BatchExecuteStatementInput>() {
        let items = i
            .statements()
            .iter()
            .filter(|s| is_write_statement(Some(s.statement())))
            .count();
        return (n(items), 0);
    }
    if let Some(i) = input.downcast_ref::<ExecuteTransactionInput>() {
        let items = i
            .transact_statements()
            .iter()
            .filter(|s| is_write_statement(Some(s.statement())))
            .count();
        return (n(items), n(items));
    }
    (0, 0)
}

fn is_write_statement(statement: Option<&str>) -> bool {
    let first = statement
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default();
    ["INSERT", "UPDATE", "DELETE"]
        .iter()
        .any(|w| first.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::{
        BatchStatementRequest, ConditionCheck, DeleteRequest, ParameterizedStatement, Put,
        PutRequest, TransactWriteItem, WriteRequest,
    };
    use std::collections::HashMap;

    fn erased<T: fmt::Debug + Send + Sync + 'static>(t: T) -> Input {
        Input::erase(t)
    }

    #[test]
    fn single_item_writes_count_one() {
        let put = PutItemInput::builder().table_name("t").build().unwrap();
        assert_eq!(dynamodb_writes(&erased(put)), (1, 0));
        let upd = UpdateItemInput::builder().table_name("t").build().unwrap();
        assert_eq!(dynamodb_writes(&erased(upd)), (1, 0));
        let del = DeleteItemInput::builder().table_name("t").build().unwrap();
        assert_eq!(dynamodb_writes(&erased(del)), (1, 0));
        let get = aws_sdk_dynamodb::operation::get_item::GetItemInput::builder()
            .table_name("t")
            .build()
            .unwrap();
        assert_eq!(dynamodb_writes(&erased(get)), (0, 0));
    }

    #[test]
    fn batch_write_counts_every_request_of_every_table() {
        let put = WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .set_item(Some(HashMap::new()))
                    .build()
                    .unwrap(),
            )
            .build();
        let del = WriteRequest::builder()
            .delete_request(
                DeleteRequest::builder()
                    .set_key(Some(HashMap::new()))
                    .build()
                    .unwrap(),
            )
            .build();
        let input = BatchWriteItemInput::builder()
            .request_items("a", vec![put.clone(), del])
            .request_items("b", vec![put])
            .build()
            .unwrap();
        assert_eq!(dynamodb_writes(&erased(input)), (3, 0));
    }

    #[test]
    fn transactions_do_not_count_condition_checks() {
        let put = TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name("t")
                    .set_item(Some(HashMap::new()))
                    .build()
                    .unwrap(),
            )
            .build();
        let check = TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name("t")
                    .set_key(Some(HashMap::new()))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .unwrap(),
            )
            .build();
        let input = TransactWriteItemsInput::builder()
            .transact_items(put.clone())
            .transact_items(check)
            .transact_items(put)
            .build()
            .unwrap();
        assert_eq!(dynamodb_writes(&erased(input)), (2, 2));
    }

    #[test]
    fn partiql_counts_only_write_statements() {
        let stmt = |s: &str| {
            BatchStatementRequest::builder()
                .statement(s)
                .build()
                .unwrap()
        };
        let input = BatchExecuteStatementInput::builder()
            .statements(stmt("INSERT INTO t VALUE {'pk': 'a'}"))
            .statements(stmt("select * from t"))
            .statements(stmt("  delete FROM t WHERE pk = 'a'"))
            .build()
            .unwrap();
        assert_eq!(dynamodb_writes(&erased(input)), (2, 0));
        let tx = ExecuteTransactionInput::builder()
            .transact_statements(
                ParameterizedStatement::builder()
                    .statement("UPDATE t SET x = 1 WHERE pk = 'a'")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(dynamodb_writes(&erased(tx)), (1, 1));
    }

    #[test]
    fn since_subtracts_and_drops_unchanged_operations() {
        let mut before = CallSnapshot::default();
        before.operations.insert(
            ("SQS".into(), "SendMessageBatch".into()),
            OpStats {
                calls: 2,
                attempts: 3,
                errors: 1,
            },
        );
        before
            .operations
            .insert(("SNS".into(), "Publish".into()), OpStats::default());
        before.dynamodb_item_writes = 4;
        let mut after = before.clone();
        after.operations.insert(
            ("SQS".into(), "SendMessageBatch".into()),
            OpStats {
                calls: 5,
                attempts: 6,
                errors: 1,
            },
        );
        after.dynamodb_item_writes = 7;
        let d = after.since(&before);
        assert_eq!(d.calls("SQS", "SendMessageBatch"), 3);
        assert_eq!(d.operations.len(), 1);
        assert_eq!(d.total_attempts(), 3);
        assert_eq!(d.total_errors(), 0);
        assert_eq!(d.dynamodb_item_writes, 3);
    }
}
