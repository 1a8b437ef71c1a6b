//! `SqsJobQueue` on the emulator: jobs go out ten per `SendMessageBatch`, each delayed to its
//! due instant.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use netmon_app::clock::SystemClock;
use netmon_aws::clients::Clients;
use netmon_aws::sqs::SqsJobQueue;
use netmon_core::TenantId;
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::JobQueue;
use netmon_core::target::TargetSpec;
use netmon_lambda_testkit::metrics::CallCounter;
use netmon_testkit::emulator;

async fn queue(sqs: &aws_sdk_sqs::Client) -> String {
    sqs.create_queue()
        .queue_name(emulator::unique_prefix("jobs"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url")
}

fn job(id: &str, due_in: chrono::Duration) -> ProbeJob {
    let spec: TargetSpec = serde_json::from_value(serde_json::json!({
        "id": "web", "http": {"url": "https://example.com/"}
    }))
    .unwrap();
    ProbeJob {
        job_id: id.to_owned(),
        tenant: TenantId::default_tenant(),
        scheduled_for: Utc::now() + due_in,
        targets: vec![spec],
        correlation_id: None,
        group_level: None,
        group_size: None,
    }
}

async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<ProbeJob> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let mut jobs = Vec::new();
    for m in out.messages.unwrap_or_default() {
        jobs.push(serde_json::from_str(m.body().unwrap_or_default()).expect("a job"));
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(m.receipt_handle().unwrap_or_default())
            .send()
            .await
            .expect("delete");
    }
    jobs
}

#[tokio::test]
async fn jobs_go_out_in_batches_of_ten_delayed_to_their_slot() {
    let emu = emulator::start();
    let sdk = netmon_lambda_testkit::emulator_clients(&emu.endpoint, &emu.region).await;
    let counter = CallCounter::new();
    let counted = Clients::builder(&sdk)
        .interceptor(Some(counter.interceptor()))
        .build();
    let sqs = Clients::new(&sdk).sqs;
    let url = queue(&sqs).await;
    let jobs = SqsJobQueue::new(counted.sqs, url.clone(), Arc::new(SystemClock));

    // 25 jobs due now (one second late): three requests, all visible at once.
    let now: Vec<ProbeJob> = (0..25)
        .map(|i| job(&format!("now-{i}"), chrono::Duration::seconds(-1)))
        .collect();
    jobs.enqueue(now.clone()).await.expect("enqueue");
    assert_eq!(counter.snapshot().calls("SQS", "SendMessageBatch"), 3);
    let mut got = Vec::new();
    while got.len() < 25 {
        let batch = receive(&sqs, &url).await;
        assert!(!batch.is_empty(), "only {} of 25 visible", got.len());
        got.extend(batch);
    }
    got.sort_by_key(|j| j.job_id[4..].parse::<u32>().unwrap());
    assert_eq!(got, now);

    // A job due in 3 s is not visible before its delay has passed, then it is.
    let later = job("later", chrono::Duration::seconds(3));
    let sent = tokio::time::Instant::now();
    jobs.enqueue(vec![later.clone()]).await.expect("enqueue");
    assert!(receive(&sqs, &url).await.is_empty(), "delayed");
    let mut seen = Vec::new();
    while seen.is_empty() {
        assert!(
            sent.elapsed() < Duration::from_secs(20),
            "never became visible"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        seen = receive(&sqs, &url).await;
    }
    assert!(
        sent.elapsed() >= Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(seen, vec![later]);
}
