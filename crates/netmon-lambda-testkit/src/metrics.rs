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
//!
//! It also prices what it sees ([`Billed`], by the rules in [`crate::billing`]), since the
//! emulator fakes consumed capacity: DynamoDB write units from the items in the typed inputs,
//! read units from the items in the typed outputs (and the request's consistency), and the
//! 64 KB chunks SQS and SNS bill from the payloads sent and received.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::batch_execute_statement::BatchExecuteStatementInput;
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::execute_statement::ExecuteStatementInput;
use aws_sdk_dynamodb::operation::execute_transaction::ExecuteTransactionInput;
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::scan::{ScanInput, ScanOutput};
use aws_sdk_dynamodb::operation::transact_get_items::{
    TransactGetItemsInput, TransactGetItemsOutput,
};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sns::operation::publish::PublishInput;
use aws_sdk_sns::operation::publish_batch::PublishBatchInput;
use aws_sdk_sns::types::MessageAttributeValue as SnsAttr;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
use aws_sdk_sqs::operation::send_message::SendMessageInput;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput;
use aws_sdk_sqs::types::MessageAttributeValue as SqsAttr;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef, Input, Output,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use crate::billing;

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
    /// What AWS would bill, keyed by (service, what): the operation name, with the index for a
    /// DynamoDB Query of an index (`"Query outbox-pending"`) and `"ReceiveMessage (empty)"` for
    /// receives that returned nothing.
    pub billed: BTreeMap<(String, String), Billed>,
}

/// Billing units of one (service, operation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Billed {
    /// Requests as billed: one per started 64 KB of payload for SQS and SNS, one per call
    /// otherwise.
    pub requests: u64,
    /// DynamoDB write units (items sized from the request; transactional ones twice).
    pub write_units: u64,
    /// DynamoDB read units, in halves (an eventually consistent 4 KB read is one half).
    pub read_half_units: u64,
    /// Payload bytes (SQS and SNS message bodies and attributes; DynamoDB items).
    pub bytes: u64,
}

impl Billed {
    fn add(&mut self, other: &Billed) {
        self.requests += other.requests;
        self.write_units += other.write_units;
        self.read_half_units += other.read_half_units;
        self.bytes += other.bytes;
    }

    fn minus(&self, earlier: &Billed) -> Billed {
        Billed {
            requests: self.requests.saturating_sub(earlier.requests),
            write_units: self.write_units.saturating_sub(earlier.write_units),
            read_half_units: self.read_half_units.saturating_sub(earlier.read_half_units),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
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

    /// Adds `other`'s counts to these (sums over functions or rounds).
    pub fn absorb(&mut self, other: &CallSnapshot) {
        for (k, s) in &other.operations {
            let e = self.operations.entry(k.clone()).or_default();
            e.calls += s.calls;
            e.attempts += s.attempts;
            e.errors += s.errors;
        }
        for (k, b) in &other.billed {
            self.billed.entry(k.clone()).or_default().add(b);
        }
        self.dynamodb_item_writes += other.dynamodb_item_writes;
        self.dynamodb_transactional_item_writes += other.dynamodb_transactional_item_writes;
    }

    /// Billing units summed over every operation of `service`.
    pub fn billed_for(&self, service: &str) -> Billed {
        let mut sum = Billed::default();
        for ((s, _), b) in &self.billed {
            if s == service {
                sum.add(b);
            }
        }
        sum
    }

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
        let billed = self
            .billed
            .iter()
            .filter_map(|(key, now)| {
                let d = now.minus(&earlier.billed.get(key).copied().unwrap_or_default());
                (d != Billed::default()).then(|| (key.clone(), d))
            })
            .collect();
        CallSnapshot {
            operations,
            billed,
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
        f(self.lock().operations.entry(op_key(cfg)).or_default());
    }

    fn bill(&self, service: String, what: String, billed: Billed) {
        if billed != Billed::default() {
            self.lock()
                .billed
                .entry((service, what))
                .or_default()
                .add(&billed);
        }
    }
}

fn op_key(cfg: &ConfigBag) -> (String, String) {
    match cfg.load::<Metadata>() {
        Some(m) => (m.service().to_owned(), m.name().to_owned()),
        None => ("unknown".to_owned(), "unknown".to_owned()),
    }
}

/// What a read request asked for, kept from its input (gone once serialized) for pricing its
/// output.
#[derive(Debug, Clone, Default)]
struct ReadRequest {
    /// Strongly consistent (GetItem, Query, Scan); for BatchGetItem, the tables read so.
    consistent: bool,
    consistent_tables: Vec<String>,
    /// The index a Query or Scan reads, if any.
    index: Option<String>,
}

impl Storable for ReadRequest {
    type Storer = StoreReplace<Self>;
}

/// AWS's own latency for one request, standing in for the emulator's when a benchmark models
/// Lambda durations ([`EmulatorWaits::modelled`]): in-region round trips, conservative.
fn aws_latency(service: &str) -> Duration {
    Duration::from_millis(match service {
        "DynamoDB" => 10,
        "SNS" => 40,
        _ => 20,
    })
}

/// The time an invocation spent waiting on the emulator: moto answers one request at a time
/// behind a serialising proxy, at tens to hundreds of milliseconds under load, so wall times
/// measured against it say more about moto than about Lambda.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmulatorWaits {
    /// Wall time with at least one request of the invocation in flight.
    pub busy: Duration,
    /// Periods with requests in flight: requests sent together wait together.
    pub rounds: u32,
    /// The same periods at AWS's latencies: each period costs its slowest service's
    /// [`aws_latency`].
    pub modelled: Duration,
}

#[derive(Debug, Default)]
struct WaitState {
    in_flight: u32,
    since: Option<Instant>,
    round_latency: Duration,
    waits: EmulatorWaits,
}

/// Collects [`EmulatorWaits`] for the requests made inside [`time_emulator_waits`].
#[derive(Debug, Default)]
struct WaitClock(Mutex<WaitState>);

impl WaitClock {
    fn lock(&self) -> std::sync::MutexGuard<'_, WaitState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn begin(&self, service: &str) {
        let mut s = self.lock();
        if s.in_flight == 0 {
            s.since = Some(Instant::now());
            s.round_latency = Duration::ZERO;
        }
        s.in_flight += 1;
        s.round_latency = s.round_latency.max(aws_latency(service));
    }

    fn end(&self) {
        let mut guard = self.lock();
        let s = &mut *guard;
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0
            && let Some(since) = s.since.take()
        {
            s.waits.busy += since.elapsed();
            s.waits.rounds += 1;
            s.waits.modelled += s.round_latency;
        }
    }
}

tokio::task_local! {
    static WAITS: Arc<WaitClock>;
}

/// Runs `work`, timing the emulator requests its task makes through a client with a
/// [`CallCounter`] interceptor (requests of tasks it spawns are not seen: their time stays
/// in the wall time, which only overstates).
pub async fn time_emulator_waits<F: Future>(work: F) -> (F::Output, EmulatorWaits) {
    let clock = Arc::new(WaitClock::default());
    let out = WAITS.scope(clock.clone(), work).await;
    let waits = clock.lock().waits;
    (out, waits)
}

/// Marks an attempt whose wait is being timed, so that it ends exactly once.
#[derive(Debug, Clone, Copy)]
struct Waiting;

impl Storable for Waiting {
    type Storer = StoreReplace<Self>;
}

fn end_wait(cfg: &mut ConfigBag) {
    if cfg.load::<Waiting>().is_some() {
        cfg.interceptor_state().unset::<Waiting>();
        let _ = WAITS.try_with(|clock| clock.end());
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
        let input = context.input();
        let (writes, transactional) = dynamodb_writes(input);
        if writes > 0 {
            let mut snap = self.counter.lock();
            snap.dynamodb_item_writes += writes;
            snap.dynamodb_transactional_item_writes += transactional;
        }
        let (service, operation) = op_key(cfg);
        match read_request(input) {
            // Priced from the output.
            Some(read) => {
                cfg.interceptor_state().store_put(read);
            }
            // A receive is priced from what it returned.
            None if service == "SQS" && operation == "ReceiveMessage" => {}
            None => {
                let mut billed = write_billing(input);
                billed.requests = match message_payload(input) {
                    Some(bytes) => {
                        billed.bytes += bytes;
                        billing::billed_requests(bytes)
                    }
                    None => 1,
                };
                self.counter.bill(service, operation, billed);
            }
        }
        Ok(())
    }

    // Once per attempt that got an answer: a read is billed for what it returned.
    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let (service, operation) = op_key(cfg);
        if let Some(read) = cfg.load::<ReadRequest>() {
            let (bytes, read_half_units) = read_units(output, read);
            let what = match &read.index {
                Some(index) => format!("{operation} {index}"),
                None => operation,
            };
            let billed = Billed {
                requests: 1,
                read_half_units,
                bytes,
                ..Billed::default()
            };
            self.counter.bill(service, what, billed);
        } else if let Some(out) = output.downcast_ref::<ReceiveMessageOutput>() {
            let bytes: u64 = out.messages().iter().map(received_size).sum();
            let what = if out.messages().is_empty() {
                format!("{operation} (empty)")
            } else {
                operation
            };
            let billed = Billed {
                requests: billing::billed_requests(bytes),
                bytes,
                ..Billed::default()
            };
            self.counter.bill(service, what, billed);
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
        let (service, _) = op_key(cfg);
        if WAITS.try_with(|clock| clock.begin(&service)).is_ok() {
            cfg.interceptor_state().store_put(Waiting);
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        end_wait(cfg);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // An attempt that never got an answer (connection error, timeout).
        end_wait(cfg);
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

/// The read a DynamoDB input asks for; `None` for anything else.
fn read_request(input: &Input) -> Option<ReadRequest> {
    if let Some(i) = input.downcast_ref::<GetItemInput>() {
        return Some(ReadRequest {
            consistent: i.consistent_read().unwrap_or(false),
            ..ReadRequest::default()
        });
    }
    let ranged = match (
        input.downcast_ref::<QueryInput>(),
        input.downcast_ref::<ScanInput>(),
    ) {
        (Some(q), _) => Some((q.consistent_read(), q.index_name())),
        (_, Some(s)) => Some((s.consistent_read(), s.index_name())),
        _ => None,
    };
    if let Some((consistent, index)) = ranged {
        return Some(ReadRequest {
            consistent: consistent.unwrap_or(false),
            index: index.map(str::to_owned),
            ..ReadRequest::default()
        });
    }
    if let Some(i) = input.downcast_ref::<BatchGetItemInput>() {
        let consistent_tables = i
            .request_items()
            .map(|m| {
                m.iter()
                    .filter(|(_, k)| k.consistent_read().unwrap_or(false))
                    .map(|(t, _)| t.clone())
                    .collect()
            })
            .unwrap_or_default();
        return Some(ReadRequest {
            consistent_tables,
            ..ReadRequest::default()
        });
    }
    if input.downcast_ref::<TransactGetItemsInput>().is_some() {
        return Some(ReadRequest {
            consistent: true,
            ..ReadRequest::default()
        });
    }
    None
}

/// (bytes returned, read half-units) of a read's output. GetItem and BatchGetItem round each
/// item up (a missing item still costs the minimum); Query and Scan round the page's sum up
/// once; a transactional read costs twice a strongly consistent one. A Query or Scan with a
/// filter is billed for what it read before filtering: the returned size is scaled by
/// scanned / returned items (exact when the filtered items are alike).
fn read_units(output: &Output, read: &ReadRequest) -> (u64, u64) {
    if let Some(o) = output.downcast_ref::<GetItemOutput>() {
        let bytes = o.item().map_or(0, billing::item_size);
        return (bytes, billing::read_half_units(bytes, read.consistent));
    }
    let paged =
        |items: &[std::collections::HashMap<String, AttributeValue>], count: i32, scanned: i32| {
            let bytes: u64 = items.iter().map(billing::item_size).sum();
            let (count, scanned) = (
                u64::from(count.unsigned_abs()),
                u64::from(scanned.unsigned_abs()),
            );
            let billed_bytes = if scanned > count && count > 0 {
                bytes * scanned / count
            } else {
                bytes
            };
            (
                bytes,
                billing::read_half_units(billed_bytes, read.consistent),
            )
        };
    if let Some(o) = output.downcast_ref::<QueryOutput>() {
        return paged(o.items(), o.count(), o.scanned_count());
    }
    if let Some(o) = output.downcast_ref::<ScanOutput>() {
        return paged(o.items(), o.count(), o.scanned_count());
    }
    if let Some(o) = output.downcast_ref::<BatchGetItemOutput>() {
        let mut sum = (0, 0);
        for (table, items) in o.responses().into_iter().flatten() {
            let consistent = read.consistent_tables.contains(table);
            for item in items {
                let bytes = billing::item_size(item);
                sum.0 += bytes;
                sum.1 += billing::read_half_units(bytes, consistent);
            }
        }
        return sum;
    }
    if let Some(o) = output.downcast_ref::<TransactGetItemsOutput>() {
        let mut sum = (0, 0);
        for r in o.responses() {
            let bytes = r.item().map_or(0, billing::item_size);
            sum.0 += bytes;
            sum.1 += 2 * billing::read_half_units(bytes, true);
        }
        return sum;
    }
    (0, 0)
}

/// Write units of a DynamoDB write, each item sized from the request: PutItem's item exactly;
/// UpdateItem from its key and the values and names its expression sets, DeleteItem and
/// ConditionCheck from the key (lower bounds: AWS bills the larger of the item before and
/// after, which the request does not show); at least one unit per item, twice in a
/// transaction (ConditionCheck items included).
fn write_billing(input: &Input) -> Billed {
    type Item = std::collections::HashMap<String, AttributeValue>;
    let key = |k: Option<&Item>| k.map_or(0, billing::item_size);
    let update = |k: Option<&Item>,
                  values: Option<&Item>,
                  names: Option<&std::collections::HashMap<String, String>>| {
        key(k)
            + values.map_or(0, |v| v.values().map(billing::value_size).sum())
            + names.map_or(0, |n| n.values().map(|s| s.len() as u64).sum())
    };
    let mut sizes: Vec<(u64, bool)> = Vec::new();
    if let Some(i) = input.downcast_ref::<PutItemInput>() {
        sizes.push((i.item().map_or(0, billing::item_size), false));
    } else if let Some(i) = input.downcast_ref::<UpdateItemInput>() {
        sizes.push((
            update(
                i.key(),
                i.expression_attribute_values(),
                i.expression_attribute_names(),
            ),
            false,
        ));
    } else if let Some(i) = input.downcast_ref::<DeleteItemInput>() {
        sizes.push((key(i.key()), false));
    } else if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
        for r in i
            .request_items()
            .into_iter()
            .flat_map(|m| m.values().flatten())
        {
            if let Some(p) = r.put_request() {
                sizes.push((billing::item_size(p.item()), false));
            } else if let Some(d) = r.delete_request() {
                sizes.push((billing::item_size(d.key()), false));
            }
        }
    } else if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
        for t in i.transact_items() {
            let size = if let Some(p) = t.put() {
                billing::item_size(p.item())
            } else if let Some(u) = t.update() {
                update(
                    Some(u.key()),
                    u.expression_attribute_values(),
                    u.expression_attribute_names(),
                )
            } else if let Some(d) = t.delete() {
                billing::item_size(d.key())
            } else if let Some(c) = t.condition_check() {
                billing::item_size(c.key())
            } else {
                0
            };
            sizes.push((size, true));
        }
    } else {
        // PartiQL writes: one unit per write statement (their items are in the statement text).
        let (writes, transactional) = dynamodb_writes(input);
        return Billed {
            write_units: (writes - transactional) + 2 * transactional,
            ..Billed::default()
        };
    }
    Billed {
        write_units: sizes
            .iter()
            .map(|(size, tx)| billing::write_units(*size, *tx))
            .sum(),
        bytes: sizes.iter().map(|(size, _)| size).sum(),
        ..Billed::default()
    }
}

/// Payload bytes of an SQS send or an SNS publish (bodies, subjects and message attributes);
/// `None` for requests billed whatever their size.
fn message_payload(input: &Input) -> Option<u64> {
    fn l(s: Option<&str>) -> u64 {
        s.map_or(0, |s| s.len() as u64)
    }
    fn sqs_attrs(a: Option<&std::collections::HashMap<String, SqsAttr>>) -> u64 {
        a.into_iter()
            .flatten()
            .map(|(k, v)| {
                k.len() as u64
                    + v.data_type().len() as u64
                    + l(v.string_value())
                    + v.binary_value().map_or(0, |b| b.as_ref().len() as u64)
            })
            .sum()
    }
    fn sns_attrs(a: Option<&std::collections::HashMap<String, SnsAttr>>) -> u64 {
        a.into_iter()
            .flatten()
            .map(|(k, v)| {
                k.len() as u64
                    + v.data_type().len() as u64
                    + l(v.string_value())
                    + v.binary_value().map_or(0, |b| b.as_ref().len() as u64)
            })
            .sum()
    }
    if let Some(i) = input.downcast_ref::<SendMessageInput>() {
        return Some(l(i.message_body()) + sqs_attrs(i.message_attributes()));
    }
    if let Some(i) = input.downcast_ref::<SendMessageBatchInput>() {
        return Some(
            i.entries()
                .iter()
                .map(|e| e.message_body().len() as u64 + sqs_attrs(e.message_attributes()))
                .sum(),
        );
    }
    if let Some(i) = input.downcast_ref::<PublishInput>() {
        return Some(l(i.message()) + l(i.subject()) + sns_attrs(i.message_attributes()));
    }
    if let Some(i) = input.downcast_ref::<PublishBatchInput>() {
        return Some(
            i.publish_batch_request_entries()
                .iter()
                .map(|e| {
                    e.message().len() as u64 + l(e.subject()) + sns_attrs(e.message_attributes())
                })
                .sum(),
        );
    }
    None
}

/// A received message's billed size: body and message attributes.
fn received_size(m: &aws_sdk_sqs::types::Message) -> u64 {
    let attrs: u64 = m
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (k.len() + v.data_type().len() + v.string_value().map_or(0, str::len)) as u64
                + v.binary_value().map_or(0, |b| b.as_ref().len() as u64)
        })
        .sum();
    m.body().map_or(0, |b| b.len() as u64) + attrs
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

    /// Requests in flight together are one round; the emulator's time is what they waited.
    #[tokio::test]
    async fn emulator_waits_count_rounds_of_requests_in_flight() {
        use axum::routing::post;
        let app = axum::Router::new().route(
            "/",
            post(|| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                "{}"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let counter = CallCounter::new();
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests())
            .endpoint_url(format!("http://{addr}"))
            .interceptor(counter.interceptor())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        let get = || {
            client
                .get_item()
                .table_name("t")
                .key("pk", AttributeValue::S("k".into()))
                .send()
        };
        let started = Instant::now();
        let (_, waits) = time_emulator_waits(async {
            let (a, b) = tokio::join!(get(), get());
            a.unwrap();
            b.unwrap();
            get().await.unwrap();
        })
        .await;
        let wall = started.elapsed();
        assert_eq!(waits.rounds, 2, "{waits:?}");
        assert!(waits.busy >= Duration::from_millis(100), "{waits:?}");
        assert!(waits.busy <= wall, "{waits:?} in {wall:?}");
        assert_eq!(waits.modelled, Duration::from_millis(20));
        // Outside a timed scope nothing is recorded, and nothing breaks.
        get().await.unwrap();
        assert_eq!(counter.snapshot().calls("DynamoDB", "GetItem"), 4);
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

    /// An item of exactly `bytes` bytes: attribute `p` (1 byte) holding a string.
    fn sized(bytes: usize) -> HashMap<String, AttributeValue> {
        HashMap::from([("p".to_owned(), AttributeValue::S("x".repeat(bytes - 1)))])
    }

    #[test]
    fn writes_are_priced_per_item_size_and_twice_in_transactions() {
        let put = PutItemInput::builder()
            .table_name("t")
            .set_item(Some(sized(2500)))
            .build()
            .unwrap();
        let billed = write_billing(&erased(put));
        assert_eq!((billed.write_units, billed.bytes), (3, 2500));
        let tx = TransactWriteItemsInput::builder()
            .transact_items(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name("t")
                            .set_item(Some(sized(1500)))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(
                        ConditionCheck::builder()
                            .table_name("t")
                            .set_key(Some(sized(10)))
                            .condition_expression("attribute_exists(p)")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
            .unwrap();
        assert_eq!(write_billing(&erased(tx)).write_units, 2 * 2 + 2);
        let batch = BatchWriteItemInput::builder()
            .request_items(
                "t",
                vec![
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(sized(100)))
                                .build()
                                .unwrap(),
                        )
                        .build(),
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(sized(1025)))
                                .build()
                                .unwrap(),
                        )
                        .build(),
                ],
            )
            .build()
            .unwrap();
        assert_eq!(write_billing(&erased(batch)).write_units, 1 + 2);
    }

    #[test]
    fn reads_are_priced_from_what_they_returned() {
        let strong = ReadRequest {
            consistent: true,
            ..ReadRequest::default()
        };
        let eventual = ReadRequest::default();
        let get = GetItemOutput::builder().set_item(Some(sized(5000))).build();
        let get = Output::erase(get);
        assert_eq!(read_units(&get, &strong), (5000, 4));
        assert_eq!(read_units(&get, &eventual), (5000, 2));
        let missing = Output::erase(GetItemOutput::builder().build());
        assert_eq!(read_units(&missing, &strong), (0, 2));
        // A Query rounds the sum of its items once: 3 x 1,500 B = 4,500 B is 2 x 4 KB.
        let query = QueryOutput::builder()
            .items(sized(1500))
            .items(sized(1500))
            .items(sized(1500))
            .count(3)
            .scanned_count(3)
            .build();
        assert_eq!(read_units(&Output::erase(query), &eventual), (4500, 2));
        // Filtered: billed for what it read before the filter.
        let filtered = QueryOutput::builder()
            .items(sized(1000))
            .count(1)
            .scanned_count(5)
            .build();
        assert_eq!(read_units(&Output::erase(filtered), &strong), (1000, 4));
    }

    #[test]
    fn sqs_and_sns_payloads_are_measured() {
        let batch = SendMessageBatchInput::builder()
            .queue_url("q")
            .entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id("a")
                    .message_body("x".repeat(70_000))
                    .build()
                    .unwrap(),
            )
            .entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id("b")
                    .message_body("y".repeat(100))
                    .message_attributes(
                        "k",
                        SqsAttr::builder()
                            .data_type("String")
                            .string_value("v")
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let bytes = message_payload(&erased(batch)).unwrap();
        assert_eq!(bytes, 70_000 + 100 + 1 + 6 + 1);
        assert_eq!(billing::billed_requests(bytes), 2);
        let publish = PublishInput::builder()
            .message("hello")
            .subject("s")
            .build()
            .unwrap();
        assert_eq!(message_payload(&erased(publish)), Some(6));
        let get = aws_sdk_dynamodb::operation::get_item::GetItemInput::builder()
            .table_name("t")
            .build()
            .unwrap();
        assert_eq!(message_payload(&erased(get)), None);
    }
}
