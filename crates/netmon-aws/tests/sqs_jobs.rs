//! `SqsJobQueue` on the emulator: messages go out ten per `SendMessageBatch`, each delayed to its
//! due instant, and jobs of one delay share a message up to the probe budget.

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
        let body = m.body().unwrap_or_default();
        if body.starts_with('[') {
            jobs.extend(serde_json::from_str::<Vec<ProbeJob>>(body).expect("jobs"));
        } else {
            jobs.push(serde_json::from_str(body).expect("a job"));
        }
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
    // A budget of one probe: every job of one target is a message of its own.
    let jobs = SqsJobQueue::new(counted.sqs.clone(), url.clone(), Arc::new(SystemClock), 1);

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

    // With a budget of 20 probes the same 25 jobs are two messages in one request.
    let bundled = SqsJobQueue::new(counted.sqs, url.clone(), Arc::new(SystemClock), 20);
    let before = counter.snapshot().calls("SQS", "SendMessageBatch");
    bundled.enqueue(now.clone()).await.expect("enqueue");
    assert_eq!(
        counter.snapshot().calls("SQS", "SendMessageBatch") - before,
        1
    );
    let mut got = Vec::new();
    for _ in 0..20 {
        if got.len() == 25 {
            break;
        }
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let messages = out.messages.unwrap_or_default();
        assert!(messages.len() <= 2, "{} messages", messages.len());
        for m in &messages {
            let body = m.body().unwrap_or_default();
            got.extend(serde_json::from_str::<Vec<ProbeJob>>(body).expect("an array of jobs"));
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    got.sort_by_key(|j| j.job_id[4..].parse::<u32>().unwrap());
    assert_eq!(got, now, "every job once, each with its own id");
}
