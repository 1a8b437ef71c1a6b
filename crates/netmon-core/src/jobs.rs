//! Probe jobs: the scheduler's commands to the prober (an SQS message in the cloud). A job carries
//! the full specs of its targets so the prober reads nothing from the store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::TenantId;
use crate::target::TargetSpec;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeJob {
    /// Unique per job; becomes the `job_id` of the resulting `probe.completed`.
    pub job_id: String,
    pub tenant: TenantId,
    /// The instant the targets were due; probes start at or after it.
    pub scheduled_for: DateTime<Utc>,
    pub targets: Vec<TargetSpec>,
}
