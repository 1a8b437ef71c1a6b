// netmon on AWS, the CDK twin of infra/template.yaml. Same names, keys, filter policies, function
// settings and policies; scripts/check-infra compares both with crates/netmon-aws/src/resources.rs,
// the LocalStack/moto resource script, and each other. Change both or the check fails.
import * as fs from 'fs';
import * as path from 'path';
import { Annotations, Aws, CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Tags, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface NetmonConfig {
  stage: string;
  architecture: 'arm64' | 'x86_64';
  alarmEmail: string;
  allowPrivateTargets: boolean;
  /** Probing location; empty means the deployment region. */
  location: string;
  logRetentionDays: number;
  apiThrottlingBurstLimit: number;
  apiThrottlingRateLimit: number;
  /** Where scripts/package leaves target/lambda/<name>/bootstrap.zip. */
  assetDir: string;
  /** `required`: fail synth when a zip is missing (deploys); `auto`: placeholder + warning. */
  assets: 'auto' | 'required';
}

/** The per-function deployment contract (also in infra/template.yaml). */
interface FunctionSpec {
  name: 'scheduler' | 'prober' | 'alerter' | 'notifier' | 'recorder' | 'api';
  description: string;
  memorySize: number;
  timeoutSeconds: number;
}

/** Same policy statement sets as the SAM template: exact resources, no Scan. */
const TABLE_READ = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'];
const TABLE_READ_WRITE = [
  ...TABLE_READ,
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
];

export class NetmonStack extends Stack {
  constructor(scope: Construct, id: string, cfg: NetmonConfig, props?: StackProps) {
    super(scope, id, props);
    const prefix = `netmon-${cfg.stage}`;
    const name = (suffix: string) => `${prefix}-${suffix}`;
    Tags.of(this).add('project', 'netmon');
    Tags.of(this).add('stage', cfg.stage);

    // --- DynamoDB ------------------------------------------------------------------------------
    const tableProps = {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'ttl',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: cfg.stage === 'prod',
      removalPolicy: RemovalPolicy.RETAIN,
    };
    const stateTable = new dynamodb.Table(this, 'StateTable', { ...tableProps, tableName: name('state') });
    stateTable.addGlobalSecondaryIndex({
      indexName: 'outbox-pending',
      partitionKey: { name: 'gsi1pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'gsi1sk', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    const historyTable = new dynamodb.Table(this, 'HistoryTable', { ...tableProps, tableName: name('history') });

    // --- SNS -----------------------------------------------------------------------------------
    const snsKey = kms.Alias.fromAliasName(this, 'AwsManagedSnsKey', 'alias/aws/sns');
    const topic = (id: string, suffix: string) =>
      new sns.Topic(this, id, { topicName: name(suffix), masterKey: snsKey, enforceSSL: true });
    const probeResults = topic('ProbeResultsTopic', 'probe-results');
    const incidents = topic('IncidentsTopic', 'incidents');
    const targetChanges = topic('TargetChangesTopic', 'target-changes');

    // --- SQS: DLQ (14 days), maxReceiveCount 5, visibility 6x the consumer's timeout ------------
    const queue = (id: string, suffix: string, consumerTimeoutSeconds: number) => {
      const dlq = new sqs.Queue(this, `${id}Dlq`, {
        queueName: name(`${suffix}-dlq`),
        retentionPeriod: Duration.days(14),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
      });
      const q = new sqs.Queue(this, `${id}Queue`, {
        queueName: name(suffix),
        visibilityTimeout: Duration.seconds(6 * consumerTimeoutSeconds),
        retentionPeriod: Duration.days(4),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        deadLetterQueue: { queue: dlq, maxReceiveCount: 5 },
      });
      return { q, dlq, suffix };
    };

    const specs: Record<FunctionSpec['name'], FunctionSpec> = {
      // Holds every target decoded at once: ~140 MB at 100,000 targets (docs/dynamodb.md).
      scheduler: { name: 'scheduler', memorySize: 256, timeoutSeconds: 30,
        description: 'Every minute, plans probe jobs onto probe-jobs, turns missed heartbeats into results, sweeps the outbox.' },
      prober: { name: 'prober', memorySize: 256, timeoutSeconds: 90,
        description: 'Probes the targets of each job and publishes one probe.completed message per job.' },
      alerter: { name: 'alerter', memorySize: 128, timeoutSeconds: 30,
        description: 'Evaluates probe results against check state; writes state, incident and outbox in one transaction.' },
      notifier: { name: 'notifier', memorySize: 128, timeoutSeconds: 60,
        description: 'Sends incident notifications to each channel exactly once (idempotent claims in the state table).' },
      recorder: { name: 'recorder', memorySize: 128, timeoutSeconds: 30,
        description: 'Stores probe history blocks and hourly rollups.' },
      // "Check now" waits up to 25 s for its reply; API Gateway gives up at 30 s.
      api: { name: 'api', memorySize: 256, timeoutSeconds: 29,
        description: 'HTTP API - targets, channels, maintenance, heartbeats, status page, badges, check-now.' },
    };

    const probeJobs = queue('ProbeJobs', 'probe-jobs', specs.prober.timeoutSeconds);
    const alerterIn = queue('Alerter', 'alerter-in', specs.alerter.timeoutSeconds);
    const recorderIn = queue('Recorder', 'recorder-in', specs.recorder.timeoutSeconds);
    const notifierIn = queue('Notifier', 'notifier-in', specs.notifier.timeoutSeconds);

    // Subscriptions (resources::SUBSCRIPTIONS): raw delivery, filter on the `type` attribute.
    // SqsSubscription also adds the queue policy statement that lets exactly this topic send.
    const subscribe = (t: sns.Topic, q: sqs.Queue, types: string[]) =>
      t.addSubscription(new subs.SqsSubscription(q, {
        rawMessageDelivery: true,
        filterPolicy: { type: sns.SubscriptionFilter.stringFilter({ allowlist: types }) },
      }));
    subscribe(probeResults, alerterIn.q, ['probe.completed']);
    subscribe(probeResults, recorderIn.q, ['probe.completed']);
    subscribe(incidents, notifierIn.q, ['incident.opened', 'incident.resolved', 'incident.reminder']);

    // --- Functions -----------------------------------------------------------------------------
    const architecture = cfg.architecture === 'x86_64' ? lambda.Architecture.X86_64 : lambda.Architecture.ARM_64;
    const code = (fn: string): lambda.Code => {
      const candidates = [fn, `netmon-fn-${fn}`].map((d) => path.resolve(cfg.assetDir, d, 'bootstrap.zip'));
      const zip = candidates.find((p) => fs.existsSync(p));
      if (zip) {
        // scripts/package records the architecture it built for next to each zip.
        const archFile = path.join(path.dirname(zip), 'architecture');
        const built = fs.existsSync(archFile) ? fs.readFileSync(archFile, 'utf8').trim() : undefined;
        if (built !== undefined && built !== cfg.architecture) {
          Annotations.of(this).addError(`${zip} was built for ${built}, but netmon:architecture is ${cfg.architecture}; run scripts/package --${cfg.architecture === 'x86_64' ? 'x86-64' : 'arm64'} or set -c netmon:architecture=${built}`);
        }
        return lambda.Code.fromAsset(zip);
      }
      const msg = `no built code for '${fn}' (looked for ${candidates.join(', ')}); run scripts/package first`;
      if (cfg.assets === 'required') {
        Annotations.of(this).addError(msg);
      } else {
        Annotations.of(this).addWarningV2('netmon:placeholder-code', `${msg}. Using a placeholder that fails every invocation; deploy with -c netmon:assets=required.`);
      }
      return lambda.Code.fromAsset(path.join(__dirname, '..', 'placeholder'));
    };

    const functions = {} as Record<FunctionSpec['name'], lambda.Function>;
    const makeFunction = (spec: FunctionSpec, environment: Record<string, string>, statements: iam.PolicyStatement[]) => {
      const id = spec.name[0].toUpperCase() + spec.name.slice(1);
      const logGroup = new logs.LogGroup(this, `${id}LogGroup`, {
        logGroupName: `/aws/lambda/${name(spec.name)}`,
        retention: cfg.logRetentionDays as logs.RetentionDays,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const fn = new lambda.Function(this, `${id}Function`, {
        functionName: name(spec.name),
        description: spec.description,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture,
        handler: 'bootstrap',
        code: code(spec.name),
        memorySize: spec.memorySize,
        timeout: Duration.seconds(spec.timeoutSeconds),
        environment,
        logGroup,
      });
      statements.forEach((s) => fn.addToRolePolicy(s));
      // The role's only managed policy is AWSLambdaBasicExecutionRole (as SAM attaches to each).
      Validations.of(fn).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'AWSLambdaBasicExecutionRole only grants CloudWatch Logs writes; the SAM template uses the same managed policy, and every data-plane permission is an explicit statement on one resource.',
      });
      functions[spec.name] = fn;
      return fn;
    };
    const allow = (sid: string, actions: string[], resources: string[]) =>
      new iam.PolicyStatement({ sid, effect: iam.Effect.ALLOW, actions, resources });

    const allowPrivate = cfg.allowPrivateTargets ? 'true' : 'false';
    const scheduler = makeFunction(specs.scheduler, {
      NETMON_STATE_TABLE: stateTable.tableName,
      NETMON_PROBE_JOBS_QUEUE_URL: probeJobs.q.queueUrl,
      NETMON_PROBE_RESULTS_TOPIC_ARN: probeResults.topicArn,
      NETMON_INCIDENTS_TOPIC_ARN: incidents.topicArn,
    }, [
      allow('StateTableReadWrite', TABLE_READ_WRITE, [stateTable.tableArn]),
      allow('OutboxIndexQuery', ['dynamodb:Query'], [`${stateTable.tableArn}/index/outbox-pending`]),
      allow('SendProbeJobs', ['sqs:SendMessage'], [probeJobs.q.queueArn]),
      allow('PublishResultsAndIncidents', ['sns:Publish'], [probeResults.topicArn, incidents.topicArn]),
    ]);
    const prober = makeFunction(specs.prober, {
      NETMON_PROBE_RESULTS_TOPIC_ARN: probeResults.topicArn,
      NETMON_LOCATION: cfg.location || Aws.REGION,
      NETMON_ALLOW_PRIVATE: allowPrivate,
      NETMON_ALLOW_LINK_LOCAL: 'false',
    }, [allow('PublishResults', ['sns:Publish'], [probeResults.topicArn])]);
    const alerter = makeFunction(specs.alerter, {
      NETMON_STATE_TABLE: stateTable.tableName,
      NETMON_INCIDENTS_TOPIC_ARN: incidents.topicArn,
    }, [
      allow('StateTableReadWrite', TABLE_READ_WRITE, [stateTable.tableArn]),
      allow('PublishIncidents', ['sns:Publish'], [incidents.topicArn]),
    ]);
    const notifier = makeFunction(specs.notifier, {
      NETMON_STATE_TABLE: stateTable.tableName,
      NETMON_ALLOW_PRIVATE: allowPrivate,
      NETMON_ALLOW_LINK_LOCAL: 'false',
    }, [allow('StateTableReadWrite', TABLE_READ_WRITE, [stateTable.tableArn])]);
    const recorder = makeFunction(specs.recorder, {
      NETMON_HISTORY_TABLE: historyTable.tableName,
    }, [allow('HistoryTableReadWrite', TABLE_READ_WRITE, [historyTable.tableArn])]);
    const api = makeFunction(specs.api, {
      NETMON_STATE_TABLE: stateTable.tableName,
      NETMON_HISTORY_TABLE: historyTable.tableName,
      NETMON_PROBE_RESULTS_TOPIC_ARN: probeResults.topicArn,
      NETMON_TARGET_CHANGES_TOPIC_ARN: targetChanges.topicArn,
      NETMON_PROBE_JOBS_QUEUE_URL: probeJobs.q.queueUrl,
      NETMON_ALLOW_PRIVATE: allowPrivate,
      NETMON_ALLOW_LINK_LOCAL: 'false',
    }, [
      allow('StateTableReadWrite', TABLE_READ_WRITE, [stateTable.tableArn]),
      allow('HistoryTableRead', TABLE_READ, [historyTable.tableArn]),
      allow('PublishPingsAndTargetChanges', ['sns:Publish'], [probeResults.topicArn, targetChanges.topicArn]),
      allow('SendCheckNowJobs', ['sqs:SendMessage'], [probeJobs.q.queueArn]),
    ]);

    // SQS event sources: partial batch responses everywhere. SqsEventSource grants
    // receive/delete/visibility on that one queue only.
    prober.addEventSource(new SqsEventSource(probeJobs.q, {
      batchSize: 5, maxBatchingWindow: Duration.seconds(0), reportBatchItemFailures: true, maxConcurrency: 20 }));
    alerter.addEventSource(new SqsEventSource(alerterIn.q, { // few concurrent writers: less lock contention
      batchSize: 10, maxBatchingWindow: Duration.seconds(5), reportBatchItemFailures: true, maxConcurrency: 5 }));
    notifier.addEventSource(new SqsEventSource(notifierIn.q, { // protects the receivers
      batchSize: 10, maxBatchingWindow: Duration.seconds(0), reportBatchItemFailures: true, maxConcurrency: 5 }));
    recorder.addEventSource(new SqsEventSource(recorderIn.q, { // cost: one invocation per 100 results or 30 s
      batchSize: 100, maxBatchingWindow: Duration.seconds(30), reportBatchItemFailures: true, maxConcurrency: 2 }));

    new events.Rule(this, 'SchedulerTick', {
      ruleName: name('scheduler-tick'),
      description: 'netmon scheduler tick',
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new eventsTargets.LambdaFunction(scheduler)],
    });

    // --- HTTP API: one $default proxy route, throttled, access-logged ---------------------------
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogGroup', {
      logGroupName: `/netmon/${cfg.stage}/api-access`,
      retention: cfg.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const httpApi = new apigwv2.HttpApi(this, 'HttpApi', {
      description: `netmon ${cfg.stage} API`,
      createDefaultStage: false,
      defaultIntegration: new HttpLambdaIntegration('ApiIntegration', api, {
        payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
      }),
    });
    const stage = new apigwv2.HttpStage(this, 'HttpApiDefaultStage', {
      httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { burstLimit: cfg.apiThrottlingBurstLimit, rateLimit: cfg.apiThrottlingRateLimit },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(ACCESS_LOG_FORMAT),
      },
    });
    Validations.of(httpApi).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason: 'Public by design for /ping/{token} (the token is the secret), the status page and badges; the api function authenticates every /v1 route with hashed, tenant-scoped API keys (Authorization: Bearer).',
    });

    // --- Who monitors the monitor: alarms -> ops topic -------------------------------------------
    // Not KMS-encrypted: CloudWatch cannot publish to a topic under the AWS-managed key, and a
    // customer key costs $1/month for alarm metadata without user data.
    const ops = new sns.Topic(this, 'OpsTopic', { topicName: name('ops'), enforceSSL: true });
    ops.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowCloudWatchAlarms',
      effect: iam.Effect.ALLOW,
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [ops.topicArn],
      conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
    }));
    if (cfg.alarmEmail) ops.addSubscription(new subs.EmailSubscription(cfg.alarmEmail));
    const opsAction = new SnsAction(ops);
    const alarm = (id: string, props: cloudwatch.AlarmProps, ok = true) => {
      const a = new cloudwatch.Alarm(this, id, props);
      a.addAlarmAction(opsAction);
      if (ok) a.addOkAction(opsAction);
      return a;
    };

    alarm('SchedulerNotRunningAlarm', {
      alarmName: name('scheduler-not-running'),
      alarmDescription: 'The scheduler has not been invoked for 3 minutes - no probes are being planned.',
      metric: scheduler.metricInvocations({ period: Duration.minutes(1), statistic: 'Sum' }),
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    for (const [key, fn] of Object.entries(functions)) {
      const id = key[0].toUpperCase() + key.slice(1);
      alarm(`${id}ErrorsAlarm`, {
        alarmName: name(`${key}-errors`),
        alarmDescription: `${key} invocations failed`,
        metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        evaluationPeriods: 1,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }, false);
    }
    const ageThreshold: Record<string, number> = { 'probe-jobs': 300, 'alerter-in': 300, 'recorder-in': 900, 'notifier-in': 300 };
    for (const { q, dlq, suffix } of [probeJobs, alerterIn, recorderIn, notifierIn]) {
      const id = suffix.split('-').map((w) => w[0].toUpperCase() + w.slice(1)).join('');
      alarm(`${id}DlqAlarm`, {
        alarmName: name(`${suffix}-dlq-not-empty`),
        alarmDescription: `${suffix} dead-letter queue has messages`,
        metric: dlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
        evaluationPeriods: 1,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm(`${id}AgeAlarm`, {
        alarmName: name(`${suffix}-oldest-message`),
        alarmDescription: `oldest ${suffix} message waited more than ${ageThreshold[suffix] / 60} minutes`,
        metric: q.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }),
        evaluationPeriods: 3,
        threshold: ageThreshold[suffix],
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }

    // --- Outputs ---------------------------------------------------------------------------------
    new CfnOutput(this, 'ApiUrl', { value: stage.url, description: 'HTTP API base URL' });
    new CfnOutput(this, 'ProbeResultsTopicArn', { value: probeResults.topicArn });
    new CfnOutput(this, 'IncidentsTopicArn', { value: incidents.topicArn });
    new CfnOutput(this, 'TargetChangesTopicArn', { value: targetChanges.topicArn });
    new CfnOutput(this, 'OpsTopicArn', { value: ops.topicArn, description: 'Every alarm notifies this topic.' });
    new CfnOutput(this, 'StateTableName', { value: stateTable.tableName });
    new CfnOutput(this, 'HistoryTableName', { value: historyTable.tableName });
    new CfnOutput(this, 'ProbeJobsQueueUrl', { value: probeJobs.q.queueUrl });
  }
}

const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  method: '$context.httpMethod',
  path: '$context.path',
  status: '$context.status',
  latency: '$context.responseLatency',
  integrationError: '$context.integrationErrorMessage',
});
