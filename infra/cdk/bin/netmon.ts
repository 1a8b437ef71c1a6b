#!/usr/bin/env node
// CDK entry point. Configuration comes from context (cdk.json defaults; override with
// `-c netmon:stage=prod` etc.), so synth needs no AWS account, network or credentials.
// cdk-nag's AwsSolutions pack runs as a policy validation plugin: any unsuppressed error fails synth.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { NetmonConfig, NetmonStack } from '../lib/netmon-stack';

const app = new App();
const ctx = (key: string): string => {
  const v = app.node.tryGetContext(`netmon:${key}`);
  if (v === undefined || v === null) throw new Error(`missing context netmon:${key} (see infra/cdk/cdk.json)`);
  return String(v);
};
const arch = ctx('architecture');
if (arch !== 'arm64' && arch !== 'x86_64') throw new Error(`netmon:architecture must be arm64 or x86_64, not ${arch}`);
const assets = ctx('assets');
if (assets !== 'auto' && assets !== 'required') throw new Error(`netmon:assets must be auto or required, not ${assets}`);
const stage = ctx('stage');
if (!/^[a-z][a-z0-9-]{0,15}$/.test(stage)) throw new Error(`netmon:stage must match ^[a-z][a-z0-9-]{0,15}$, not ${stage}`);

const sessionSecret = ctx('sessionSecret');
if (sessionSecret !== '' && !/^\S{32,}$/.test(sessionSecret)) throw new Error('netmon:sessionSecret must be empty or at least 32 characters without spaces');

const cfg: NetmonConfig = {
  stage,
  architecture: arch,
  alarmEmail: ctx('alarmEmail'),
  allowPrivateTargets: ctx('allowPrivateTargets') === 'true',
  location: ctx('location'),
  sesIdentity: ctx('sesIdentity'),
  publicUrl: ctx('publicUrl'),
  sessionSecret,
  logRetentionDays: Number(ctx('logRetentionDays')),
  apiThrottlingBurstLimit: Number(ctx('apiThrottlingBurstLimit')),
  apiThrottlingRateLimit: Number(ctx('apiThrottlingRateLimit')),
  historyFlushMinutes: Number(ctx('historyFlushMinutes')),
  assetDir: ctx('assetDir'),
  assets,
};

new NetmonStack(app, `netmon-${stage}`, cfg, {
  description: 'netmon - network and uptime monitor (CDK twin of infra/template.yaml)',
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
