#!/usr/bin/env node
// Renders the Helm chart and validates the server config it produces with the real schema
// (`ftp-s3-bridge check-config`), so that the chart and src/config/schema.ts cannot drift.
//   node infra/check-helm-config.mjs HELM CHART [helm template args...]
// The accounts file from the chart's own Secret is inlined as `accounts` (check-config does not read
// auth.accountsFile), so that the accounts are checked against the schema too. The chart must use
// the current key paths: a deprecation warning of check-config fails the check. The container's
// FTP_S3_BRIDGE__* environment overrides (plain values, and config secrets from the chart's Secret)
// are applied as the server applies them; a value the cluster fills in (a Downward API field, a key
// of a Secret the chart does not create) gets a stand-in of the right form, when one is known here.
// Secrets in the ConfigMap are refused.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments, parse, stringify } from 'yaml';

const [helm, chart, ...args] = process.argv.slice(2);
if (!helm || !chart) {
  console.error('usage: check-helm-config.mjs HELM CHART [helm template args...]');
  process.exit(2);
}
const rendered = execFileSync(helm, ['template', 'check', chart, ...args], { encoding: 'utf8' });
const docs = parseAllDocuments(rendered).map((d) => d.toJS()).filter(Boolean);
const configMap = docs.find((d) => d.kind === 'ConfigMap' && d.data?.['config.yaml']);
if (!configMap) throw new Error('no ConfigMap with config.yaml in the rendered chart');
const config = parse(configMap.data['config.yaml']);
const secret = docs.find((d) => d.kind === 'Secret' && d.stringData?.['accounts.yaml']);
// With existingSecret the accounts are not in the chart: auth.accountsFile alone is checked.
if (config.auth?.accountsFile && secret) {
  const accounts = parse(secret.stringData['accounts.yaml']);
  delete config.auth.accountsFile;
  config.accounts = [...(config.accounts ?? []), ...(Array.isArray(accounts) ? accounts : accounts.accounts)];
}
const env = { ...process.env };
for (const name of Object.keys(env)) if (name.startsWith('FTP_S3_BRIDGE')) delete env[name];
// Stand-ins for values only the cluster knows (the node's address, the Redis URL of an existing Secret).
const standIns = {
  FTP_S3_BRIDGE__FTP__PASSIVE__ADDRESS: '192.0.2.1',
  FTP_S3_BRIDGE__CLUSTER__REDIS__URL: 'redis://redis.check-helm-config.invalid:6379',
};
const deployment = docs.find((d) => d.kind === 'Deployment' || d.kind === 'StatefulSet');
const ownSecret = docs.find((d) => d.kind === 'Secret' && d.metadata?.name === deployment?.metadata?.name);
for (const entry of deployment?.spec.template.spec.containers[0].env ?? []) {
  if (!entry.name.startsWith('FTP_S3_BRIDGE__')) continue;
  const ref = entry.valueFrom?.secretKeyRef;
  if (entry.value !== undefined) env[entry.name] = String(entry.value);
  else if (ref && ref.name === ownSecret?.metadata.name) env[entry.name] = ownSecret.stringData[ref.key];
  else if (standIns[entry.name] !== undefined) env[entry.name] = standIns[entry.name];
}
const configText = configMap.data['config.yaml'];
for (const secret of [ownSecret?.stringData?.['events-webhook-secret'], ownSecret?.stringData?.['auth-hook-url'], ownSecret?.stringData?.['events-webhook-url']]) {
  if (secret && configText.includes(secret)) {
    process.stderr.write('a config secret of the chart\'s Secret is in the ConfigMap\n');
    process.exit(1);
  }
}
const file = join(mkdtempSync(join(tmpdir(), 'helm-config-')), 'config.yaml');
writeFileSync(file, stringify(config));
const bin = resolve(import.meta.dirname, '../dist/cli/main.js');
try {
  const run = spawnSync(process.execPath, [bin, 'check-config', '--config', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
  if (run.status !== 0) throw Object.assign(new Error(`check-config exited ${run.status ?? run.signal}`), { stderr: run.stderr });
  if (/deprecated/.test(run.stderr)) {
    process.stderr.write(`rendered config (${file}) uses deprecated key paths:\n${run.stderr}`);
    process.exit(1);
  }
  process.stdout.write(`${chart} ${args.join(' ')}: ${run.stdout}`);
} catch (err) {
  process.stderr.write(`rendered config (${file}) is refused by the server:\n${err.stderr ?? err.message}`);
  process.exit(1);
}
