//! The recorder, fed by recorder-in: keeps probe history, one block per probe batch and
//! tenant-hour, and hourly rollups; it also sweeps the hours of tenants that stopped reporting
//! (`DynamoHistoryStore::sweep_if_due`), so they are rolled up before their blocks expire. A
//! record holds one `probe.completed` or an array of them; each is recorded.

use std::sync::Arc;

use async_trait::async_trait;
use netmon_app::clock::SystemClock;
use netmon_app::error::HandleError;
use netmon_app::services::recorder::Recorder;
use netmon_aws::clients::Clients;
use netmon_aws::dynamo::history::DynamoHistoryStore;
use netmon_aws::resources::{ENV_HISTORY_TABLE, function};
use netmon_core::events::Envelope;
use netmon_core::ports::HistoryStore;

use crate::batch::each_envelope;
use crate::env::{Env, EnvError};
use crate::policy::RECORDER_IN_FLIGHT;
use crate::runtime::{RecordHandler, SqsConsumer};

#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub history_table: String,
}

impl RecorderConfig {
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        Ok(Self {
            history_table: env.required(ENV_HISTORY_TABLE)?,
        })
    }
}

pub type RecorderFunction = SqsConsumer<ProbeHistory>;

pub struct ProbeHistory {
    recorder: Recorder,
    /// The DynamoDB store also sweeps the hours of tenants that stopped reporting.
    sweeper: Option<Arc<DynamoHistoryStore>>,
}

pub fn recorder(clients: &Clients, config: RecorderConfig) -> RecorderFunction {
    let history = Arc::new(DynamoHistoryStore::new(
        clients.dynamodb.clone(),
        config.history_table,
        Arc::new(SystemClock),
    ));
    SqsConsumer::new(
        function::RECORDER,
        RECORDER_IN_FLIGHT,
        ProbeHistory {
            recorder: Recorder::new(history.clone()),
            sweeper: Some(history),
        },
    )
}

/// The recorder over any history store (the simulation's); no sweep.
pub fn recorder_over(history: Arc<dyn HistoryStore>) -> RecorderFunction {
    SqsConsumer::new(
        function::RECORDER,
        RECORDER_IN_FLIGHT,
        ProbeHistory {
            recorder: Recorder::new(history),
            sweeper: None,
        },
    )
}

#[async_trait]
impl RecordHandler for ProbeHistory {
    type Message = Vec<Envelope>;

    async fn handle(&self, envs: Vec<Envelope>, _receive_count: u32) -> Result<(), HandleError> {
        each_envelope(&envs, |env| self.recorder.handle(env)).await?;
        if let Some(sweeper) = &self.sweeper {
            sweeper.sweep_if_due().await;
        }
        Ok(())
    }
}
