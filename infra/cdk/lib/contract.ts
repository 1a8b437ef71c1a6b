// infra/contract.json, netmon's resource contract, generated from crates/netmon-aws/src/resources.rs
// (a Rust test keeps it current). The stack builds every table, topic, queue, subscription, event
// source and function from it; nothing here repeats a name or a setting.
import * as fs from 'fs';
import * as path from 'path';

export interface Key { name: string; type: 'S' | 'N' | 'B' }
export interface Table {
  suffix: string;
  env: string;
  billing_mode: 'PAY_PER_REQUEST';
  partition_key: Key;
  sort_key: Key;
  ttl_attribute: string;
  indexes: { name: string; partition_key: Key; sort_key: Key; projection: 'ALL' }[];
}
export interface Topic { suffix: string; env: string }
export interface Queue {
  suffix: string;
  env: string;
  consumer: string;
  visibility_timeout_secs: number;
  retention_secs: number;
  dead_letter_queue: { suffix: string; env: string; retention_secs: number; max_receive_count: number };
}
export interface Subscription {
  topic: string;
  queue: string;
  raw_message_delivery: boolean;
  filter_policy_scope: 'MessageAttributes';
  filter_policy: Record<string, string[]>;
}
export interface EventSource {
  queue: string;
  function: string;
  batch_size: number;
  batching_window_secs: number;
  max_concurrency: number;
  function_response_types: string[];
}
/** Where a function variable's value comes from. */
export type EnvSource =
  | { table_name: string }
  | { topic_arn: string }
  | { queue_url: string }
  | { parameter: string; optional?: boolean }
  | { value: string };
/** A queue its function receives from itself, on a schedule, instead of an event source. */
export interface Drain {
  queue: string;
  function: string;
  every_minutes: { parameter: string; default: number; allowed: number[] };
}
export interface Function {
  name: string;
  timeout_secs: number;
  memory_mb: number;
  schedule: string | null;
  environment: Record<string, EnvSource>;
}
export interface Contract {
  version: number;
  tables: Table[];
  topics: Topic[];
  queues: Queue[];
  subscriptions: Subscription[];
  event_sources: EventSource[];
  drains: Drain[];
  functions: Function[];
}

export const CONTRACT_FILE = path.resolve(__dirname, '..', '..', 'contract.json');

export function loadContract(file: string = CONTRACT_FILE): Contract {
  const contract = JSON.parse(fs.readFileSync(file, 'utf8')) as Contract;
  if (contract.version !== 1) {
    throw new Error(`${file} is contract version ${contract.version}; this app reads version 1`);
  }
  return contract;
}

/** The item named `name`, failing synth on a name the contract does not have (a renamed resource). */
export function lookup<T>(what: string, items: Map<string, T>, name: string): T {
  const item = items.get(name);
  if (item === undefined) throw new Error(`infra/contract.json has no ${what} '${name}' (has: ${[...items.keys()].join(', ')})`);
  return item;
}
