// netmon on AWS, the CDK twin of infra/template.yaml. Tables, topics, queues, subscriptions, event
// sources and functions (limits, variables, schedules) are built from infra/contract.json, generated
// from crates/netmon-aws/src/resources.rs; what the contract leaves open (descriptions, permissions,
// alarms, the API) is written here and in the SAM template alike. scripts/check-infra checks both
// templates against the contract and against each other.
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
import { EnvSource, Key, Queue as ContractQueue, loadContract, lookup } from './contract';

export interface NetmonConfig {
  stage: string;
  architecture: 'arm64' | 'x86_64';
  alarmEmail: string;
  allowPrivateTargets: boolean;
  /** Probing location; empty means the deployment region. */
  location: string;
  /** SES identity (an address or a domain) email channels send from; empty: no email. */
  sesIdentity: string;
  /** Public base URL notifications link to; empty: no links. */
  publicUrl: string;
  /** Signs dashboard sessions (at least 32 characters); empty: dashboard sign-in is off. */
  sessionSecret: string;
  logRetentionDays: number;
  apiThrottlingBurstLimit: number;
  apiThrottlingRateLimit: number;
  /** Minutes between recorder runs (each drains recorder-in); history lags by up to this. */
  historyFlushMinutes: number;
  /** Where scripts/package leaves target/lambda/<name>/bootstrap.zip. */
  assetDir: string;
  /** `required`: fail synth when a zip is missing (deploys); `auto`: placeholder + warning. */
  assets: 'auto' | 'required';
}

/** What the contract leaves to each template: a description and the exact permissions. */
interface FunctionWiring {
  description: string;
  statements: (r: ContractResources, cfg: NetmonConfig) => iam.PolicyStatement[];
  /** For a scheduled function's "has not run" alarm: what a missed run means, and after how
   * many minutes without an invocation (periods of `periodMinutes`) it fires. */
  missedRun?: { means: string; periodMinutes: number; periods: number };
}

interface ContractResources {
  table: (suffix: string) => dynamodb.Table;
  topic: (suffix: string) => sns.Topic;
  queue: (suffix: string) => sqs.Queue;
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
const allow = (sid: string, actions: string[], resources: string[]) =>
  new iam.PolicyStatement({ sid, effect: iam.Effect.ALLOW, actions, resources });

/** Email channels: SES SendEmail as the configured identity only (nothing when it is empty). */
const sendEmail = (cfg: NetmonConfig): iam.PolicyStatement[] =>
  cfg.sesIdentity
    ? [allow('SendEmailAsIdentity', ['ses:SendEmail'], [`arn:${Aws.PARTITION}:ses:${Aws.REGION}:${Aws.ACCOUNT_ID}:identity/${cfg.sesIdentity}`])]
    : [];

// Receive/delete on a queue fed by an event source come from its SqsEventSource; a drained
// queue's function has its own statement.
const WIRING: Record<string, FunctionWiring> = {
  scheduler: {
    description: 'Every minute, plans probe jobs onto probe-jobs, turns missed heartbeats into results, sweeps the outbox.',
    statements: (r) => [
      allow('StateTableReadWrite', TABLE_READ_WRITE, [r.table('state').tableArn]),
      allow('OutboxIndexQuery', ['dynamodb:Query'], [`${r.table('state').tableArn}/index/outbox-pending`]),
      allow('SendProbeJobs', ['sqs:SendMessage'], [r.queue('probe-jobs').queueArn]),
      allow('PublishResultsAndIncidents', ['sns:Publish'], [r.topic('probe-results').topicArn, r.topic('incidents').topicArn]),
    ],
    missedRun: { means: 'no probes are being planned', periodMinutes: 1, periods: 3 },
  },
  prober: {
    description: 'Probes the targets of each job and publishes one probe.completed per job; the events of one message go out as one SNS message.',
    statements: (r) => [allow('PublishResults', ['sns:Publish'], [r.topic('probe-results').topicArn])],
  },
  alerter: {
    description: 'Evaluates probe results against check state; writes state, incident and outbox in one transaction.',
    statements: (r) => [
      allow('StateTableReadWrite', TABLE_READ_WRITE, [r.table('state').tableArn]),
      allow('PublishIncidents', ['sns:Publish'], [r.topic('incidents').topicArn]),
    ],
  },
  notifier: {
    description: 'Sends incident notifications to each channel exactly once (idempotent claims in the state table).',
    statements: (r, cfg) => [
      allow('StateTableReadWrite', TABLE_READ_WRITE, [r.table('state').tableArn]),
      ...sendEmail(cfg),
    ],
  },
  recorder: {
    description: 'Every HistoryFlushMinutes, drains recorder-in and stores probe history blocks (one per tenant group and hour per run) and hourly rollups.',
    // No event source: it receives and deletes on its own schedule (contract drains).
    statements: (r) => [
      allow('DrainRecorderIn', ['sqs:ReceiveMessage', 'sqs:DeleteMessage'], [r.queue('recorder-in').queueArn]),
      allow('HistoryTableReadWrite', TABLE_READ_WRITE, [r.table('history').tableArn]),
    ],
    // Two runs at the longest interval (15 minutes).
    missedRun: { means: 'probe history is not being stored', periodMinutes: 30, periods: 1 },
  },
  api: {
    description: 'HTTP API - targets, channels, maintenance, heartbeats, status page, badges, check-now.',
    statements: (r, cfg) => [
      allow('StateTableReadWrite', TABLE_READ_WRITE, [r.table('state').tableArn]),
      allow('HistoryTableRead', TABLE_READ, [r.table('history').tableArn]),
      ...sendEmail(cfg), // channel test sends
      allow('PublishPingsAndTargetChanges', ['sns:Publish'], [r.topic('probe-results').topicArn, r.topic('target-changes').topicArn]),
      allow('SendCheckNowJobs', ['sqs:SendMessage'], [r.queue('probe-jobs').queueArn]),
    ],
  },
};

/** Oldest-message alarm thresholds: 5 minutes, except where a consumer batches for long. */
// The recorder drains every historyFlushMinutes (up to 15): 30 minutes is two runs missed.
const AGE_ALARM_SECONDS: Record<string, number> = { 'recorder-in': 1800 };
const DEFAULT_AGE_ALARM_SECONDS = 300;

const pascal = (s: string) => s.split('-').map((w) => w[0].toUpperCase() + w.slice(1)).join('');
const KEY_TYPES = { S: dynamodb.AttributeType.STRING, N: dynamodb.AttributeType.NUMBER, B: dynamodb.AttributeType.BINARY };
const attribute = (k: Key) => ({ name: k.name, type: KEY_TYPES[k.type] });

export class NetmonStack extends Stack {
  constructor(scope: Construct, id: string, cfg: NetmonConfig, props?: StackProps) {
    super(scope, id, props);
    const contract = loadContract();
    const prefix = `netmon-${cfg.stage}`;
    const name = (suffix: string) => `${prefix}-${suffix}`;
    Tags.of(this).add('project', 'netmon');
    Tags.of(this).add('stage', cfg.stage);

    // --- DynamoDB: on-demand, TTL, point-in-time recovery, retained -----------------------------
    const tables = new Map<string, dynamodb.Table>();
    for (const t of contract.tables) {
      if (t.billing_mode !== 'PAY_PER_REQUEST') throw new Error(`table ${t.suffix}: billing mode ${t.billing_mode} is not supported here`);
      const table = new dynamodb.Table(this, `${pascal(t.suffix)}Table`, {
        tableName: name(t.suffix),
        partitionKey: attribute(t.partition_key),
        sortKey: attribute(t.sort_key),
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        timeToLiveAttribute: t.ttl_attribute,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: dynamodb.TableEncryption.AWS_MANAGED,
        deletionProtection: cfg.stage === 'prod',
        removalPolicy: RemovalPolicy.RETAIN,
      });
      for (const i of t.indexes) {
        table.addGlobalSecondaryIndex({
          indexName: i.name,
          partitionKey: attribute(i.partition_key),
          sortKey: attribute(i.sort_key),
          projectionType: dynamodb.ProjectionType.ALL,
        });
      }
      tables.set(t.suffix, table);
    }

    // --- SNS: SSE with the AWS-managed key, TLS only ----------------------------------------------
    const snsKey = kms.Alias.fromAliasName(this, 'AwsManagedSnsKey', 'alias/aws/sns');
    const topics = new Map<string, sns.Topic>();
    for (const t of contract.topics) {
      topics.set(t.suffix, new sns.Topic(this, `${pascal(t.suffix)}Topic`, { topicName: name(t.suffix), masterKey: snsKey, enforceSSL: true }));
    }

    // --- SQS: each queue with its DLQ, redrive, visibility and retention from the contract --------
    const queues = new Map<string, { q: sqs.Queue; dlq: sqs.Queue; spec: ContractQueue }>();
    for (const spec of contract.queues) {
      const d = spec.dead_letter_queue;
      const dlq = new sqs.Queue(this, pascal(d.suffix), {
        queueName: name(d.suffix),
        retentionPeriod: Duration.seconds(d.retention_secs),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
      });
      const q = new sqs.Queue(this, `${pascal(spec.suffix)}Queue`, {
        queueName: name(spec.suffix),
        visibilityTimeout: Duration.seconds(spec.visibility_timeout_secs),
        retentionPeriod: Duration.seconds(spec.retention_secs),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        deadLetterQueue: { queue: dlq, maxReceiveCount: d.max_receive_count },
      });
      queues.set(spec.suffix, { q, dlq, spec });
    }
    const r: ContractResources = {
      table: (s) => lookup('table', tables, s),
      topic: (s) => lookup('topic', topics, s),
      queue: (s) => lookup('queue', queues, s).q,
    };

    // Subscriptions: SqsSubscription also adds the queue policy statement that lets exactly this
    // topic send.
    for (const s of contract.subscriptions) {
      r.topic(s.topic).addSubscription(new subs.SqsSubscription(r.queue(s.queue), {
        rawMessageDelivery: s.raw_message_delivery,
        filterPolicy: Object.fromEntries(Object.entries(s.filter_policy).map(
          ([attr, allowlist]) => [attr, sns.SubscriptionFilter.stringFilter({ allowlist })])),
      }));
    }

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

    // Deployment parameters a variable may take (cdk.json context netmon:<name>).
    const parameters: Record<string, string> = {
      location: cfg.location || Aws.REGION,
      allowPrivateTargets: cfg.allowPrivateTargets ? 'true' : 'false',
      sesIdentity: cfg.sesIdentity,
      publicUrl: cfg.publicUrl,
      sessionSecret: cfg.sessionSecret,
    };
    const envValue = (fn: string, variable: string, source: EnvSource): string => {
      if ('table_name' in source) return r.table(source.table_name).tableName;
      if ('topic_arn' in source) return r.topic(source.topic_arn).topicArn;
      if ('queue_url' in source) return r.queue(source.queue_url).queueUrl;
      if ('value' in source) return source.value;
      const value = parameters[source.parameter];
      if (value === undefined) throw new Error(`${fn} ${variable}: unknown deployment parameter '${source.parameter}'`);
      return value;
    };

    const functions = new Map<string, lambda.Function>();
    for (const spec of contract.functions) {
      const wiring = WIRING[spec.name];
      if (!wiring) throw new Error(`contract function '${spec.name}' has no description and permissions in WIRING (lib/netmon-stack.ts)`);
      const fnId = pascal(spec.name);
      const logGroup = new logs.LogGroup(this, `${fnId}LogGroup`, {
        logGroupName: `/aws/lambda/${name(spec.name)}`,
        retention: cfg.logRetentionDays as logs.RetentionDays,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const fn = new lambda.Function(this, `${fnId}Function`, {
        functionName: name(spec.name),
        description: wiring.description,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture,
        handler: 'bootstrap',
        code: code(spec.name),
        memorySize: spec.memory_mb,
        timeout: Duration.seconds(spec.timeout_secs),
        environment: Object.fromEntries(Object.entries(spec.environment).map(
          ([variable, source]) => [variable, envValue(spec.name, variable, source)])),
        logGroup,
      });
      wiring.statements(r, cfg).forEach((s) => fn.addToRolePolicy(s));
      // The role's only managed policy is AWSLambdaBasicExecutionRole (as SAM attaches to each).
      Validations.of(fn).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'AWSLambdaBasicExecutionRole only grants CloudWatch Logs writes; the SAM template uses the same managed policy, and every data-plane permission is an explicit statement on one resource.',
      });
      if (spec.schedule) {
        // A drain's interval is a deployment setting; the contract's schedule is its default.
        const drain = contract.drains.find((d) => d.function === spec.name);
        if (drain && !drain.every_minutes.allowed.includes(cfg.historyFlushMinutes)) {
          throw new Error(`netmon:${drain.every_minutes.parameter} must be one of ${drain.every_minutes.allowed.join(', ')}, not ${cfg.historyFlushMinutes}`);
        }
        new events.Rule(this, `${fnId}Tick`, {
          ruleName: name(`${spec.name}-tick`),
          description: `netmon ${spec.name} tick`,
          schedule: events.Schedule.expression(drain ? `rate(${cfg.historyFlushMinutes} minutes)` : spec.schedule),
          targets: [new eventsTargets.LambdaFunction(fn)],
        });
      }
      functions.set(spec.name, fn);
    }
    for (const name of Object.keys(WIRING)) {
      if (!functions.has(name)) throw new Error(`WIRING names '${name}', which is not a function of infra/contract.json`);
    }
    const fn = (name: string) => lookup('function', functions, name);

    // SQS event sources: SqsEventSource grants receive/delete/visibility on that one queue only.
    for (const e of contract.event_sources) {
      fn(e.function).addEventSource(new SqsEventSource(r.queue(e.queue), {
        batchSize: e.batch_size,
        maxBatchingWindow: Duration.seconds(e.batching_window_secs),
        reportBatchItemFailures: e.function_response_types.includes('ReportBatchItemFailures'),
        maxConcurrency: e.max_concurrency,
      }));
    }

    // --- HTTP API: one $default proxy route, throttled, access-logged ---------------------------
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogGroup', {
      logGroupName: `/netmon/${cfg.stage}/api-access`,
      retention: cfg.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const httpApi = new apigwv2.HttpApi(this, 'HttpApi', {
      description: `netmon ${cfg.stage} API`,
      createDefaultStage: false,
      defaultIntegration: new HttpLambdaIntegration('ApiIntegration', fn('api'), {
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

    for (const spec of contract.functions.filter((f) => f.schedule)) {
      const missed = WIRING[spec.name].missedRun ?? { means: 'its scheduled work is not done', periodMinutes: 1, periods: 3 };
      alarm(`${pascal(spec.name)}NotRunningAlarm`, {
        alarmName: name(`${spec.name}-not-running`),
        alarmDescription: `The ${spec.name} has not been invoked for ${missed.periodMinutes * missed.periods} minutes - ${missed.means}.`,
        metric: fn(spec.name).metricInvocations({ period: Duration.minutes(missed.periodMinutes), statistic: 'Sum' }),
        evaluationPeriods: missed.periods,
        datapointsToAlarm: missed.periods,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
    }
    // Incident events an alerter could not publish wait for the scheduler's sweep, which writes
    // their age each minute (an embedded-metric log line); no datapoint means the sweep could not
    // read the outbox.
    alarm('OutboxAgeAlarm', {
      alarmName: name('outbox-oldest-event'),
      alarmDescription: 'An incident event has waited more than 5 minutes in the outbox - notifications are late.',
      metric: new cloudwatch.Metric({
        namespace: 'netmon',
        metricName: 'OutboxOldestAgeSeconds',
        dimensionsMap: { FunctionName: fn('scheduler').functionName },
        period: Duration.minutes(1),
        statistic: 'Maximum',
      }),
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      threshold: 300,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    for (const [key, f] of functions) {
      alarm(`${pascal(key)}ErrorsAlarm`, {
        alarmName: name(`${key}-errors`),
        alarmDescription: `${key} invocations failed`,
        metric: f.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        evaluationPeriods: 1,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }, false);
    }
    for (const { q, dlq, spec } of queues.values()) {
      const id = pascal(spec.suffix);
      const age = AGE_ALARM_SECONDS[spec.suffix] ?? DEFAULT_AGE_ALARM_SECONDS;
      alarm(`${id}DlqAlarm`, {
        alarmName: name(`${spec.dead_letter_queue.suffix}-not-empty`),
        alarmDescription: `${spec.suffix} dead-letter queue has messages`,
        metric: dlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
        evaluationPeriods: 1,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm(`${id}AgeAlarm`, {
        alarmName: name(`${spec.suffix}-oldest-message`),
        alarmDescription: `oldest ${spec.suffix} message waited more than ${age / 60} minutes`,
        metric: q.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }),
        evaluationPeriods: 3,
        threshold: age,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }

    // --- Outputs: every table and topic, and the queues a function sends to ----------------------
    new CfnOutput(this, 'ApiUrl', { value: stage.url, description: 'HTTP API base URL' });
    new CfnOutput(this, 'OpsTopicArn', { value: ops.topicArn, description: 'Every alarm notifies this topic.' });
    for (const [suffix, t] of tables) new CfnOutput(this, `${pascal(suffix)}TableName`, { value: t.tableName });
    for (const [suffix, t] of topics) new CfnOutput(this, `${pascal(suffix)}TopicArn`, { value: t.topicArn });
    const sentTo = new Set(contract.functions.flatMap((f) => Object.values(f.environment))
      .flatMap((source) => ('queue_url' in source ? [source.queue_url] : [])));
    for (const suffix of sentTo) new CfnOutput(this, `${pascal(suffix)}QueueUrl`, { value: r.queue(suffix).queueUrl });
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
