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
    /// Set for request/response jobs ("check now"): the resulting `probe.completed` carries it
    /// as its envelope's `correlation_id`, so the caller's reply can be matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Set for scheduled jobs: every target is in one [`crate::group::Group`] of this level
    /// (the tenant's, from its size). Absent for "check now" and jobs of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_level: Option<u8>,
    /// Targets of the job's tenant in its group, as the scheduler counted them (set with
    /// `group_level`). The alerter reads the group's states as one range when the job's
    /// results cover enough of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_size: Option<u32>,
}

impl ProbeJob {
    /// A scheduled job (no correlation id, no group: see [`Self::in_group`]) with a fresh id.
    pub fn scheduled(tenant: TenantId, at: DateTime<Utc>, targets: Vec<TargetSpec>) -> Self {
        Self {
            job_id: uuid::Uuid::now_v7().to_string(),
            tenant,
            scheduled_for: at,
            targets,
            correlation_id: None,
            group_level: None,
            group_size: None,
        }
    }

    /// The job with its targets marked as one group of `level`, which holds `size` targets of
    /// the tenant.
    pub fn in_group(mut self, level: u8, size: usize) -> Self {
        self.group_level = Some(level);
        self.group_size = Some(u32::try_from(size).unwrap_or(u32::MAX));
        self
    }
}
