#!/usr/bin/env node
// Renders the Helm chart in each passive mode (values.yaml passive.mode; docs/kubernetes.md) and
// checks that what reaches the pods matches the config they get:
//   service   one Service exposes every passive port of the config's range, port = targetPort = a
//             container port;
//   perPod    a StatefulSet; for pod i exactly one Service, selecting that pod alone, exposes exactly
//             pod i's range (the config's range, or its ftp.passive.byHostname entry) and nothing
//             else does; pod i announces its own address (its byHostname entry, or its node's with
//             NodePort); node ports are unique cluster-wide;
//   hostPort  every passive port, the control port (and FTPS/SFTP) are host ports, the pod
//             announces its node's address and has a required anti-affinity per node.
// In every mode the control port (and the implicit FTPS and SFTP ports when on) are exposed and
// point at the ports the config listens on. Also checks that bad perPod values fail to render, and
// that PROXY protocol and Redis settings reach the config (the Redis URL only from its Secret).
//   node infra/check-helm-modes.mjs HELM CHART
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';

const [helm, chart] = process.argv.slice(2);
if (!helm || !chart) {
  console.error('usage: check-helm-modes.mjs HELM CHART');
  process.exit(2);
}

const ACCOUNT = 'accounts=[{"username":"ci","passwordHash":"$2b$10$QGKNUvNtj0kh/bBFTpFseej43XcsTFgONzsVNfuiLJt.aqEjCh5by","bucket":"ci-bucket"}]';
const POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name';
const ci = (file) => ['-f', join(chart, 'ci', file)];

/** Each case: the values, the mode it must render, and for perPod the Service type. */
const cases = [
  { name: 'service (defaults)', args: ['--set-json', ACCOUNT], mode: 'service' },
  { name: 'service (all options)', args: ci('all-options-values.yaml'), mode: 'service' },
  { name: 'perPod LoadBalancer', args: ci('perpod-loadbalancer-values.yaml'), mode: 'perPod', serviceType: 'LoadBalancer' },
  { name: 'perPod NodePort', args: ci('perpod-nodeport-values.yaml'), mode: 'perPod', serviceType: 'NodePort' },
  {
    name: 'perPod NodePort with addresses',
    args: [...ci('perpod-nodeport-values.yaml'), '--set-json', 'passive.perPod.addresses=["198.51.100.1","198.51.100.2","198.51.100.3"]'],
    mode: 'perPod',
    serviceType: 'NodePort',
  },
  { name: 'hostPort', args: ci('hostport-values.yaml'), mode: 'hostPort' },
  { name: 'hostPort with an address', args: [...ci('hostport-values.yaml'), '--set', 'passive.hostPort.address=ftp.example.com'], mode: 'hostPort' },
];

/** Values that must not render, and a piece of the message they must fail with. */
const refusals = [
  { name: 'unknown mode', args: ['--set-json', ACCOUNT, '--set', 'passive.mode=nodeIP'], message: 'passive.mode must be service, perPod or hostPort' },
  {
    name: 'perPod LoadBalancer, addresses for 2 of 3 pods',
    args: [...ci('perpod-loadbalancer-values.yaml'), '--set-json', 'passive.perPod.addresses=["203.0.113.10","203.0.113.11"]'],
    message: 'passive.perPod.addresses has 2 entries for replicaCount 3',
  },
  {
    name: 'perPod LoadBalancer without addresses',
    args: [...ci('perpod-loadbalancer-values.yaml'), '--set-json', 'passive.perPod.addresses=[]'],
    message: 'passive.perPod.addresses has 0 entries for replicaCount 3',
  },
  { name: 'perPod with autoscaling', args: [...ci('perpod-nodeport-values.yaml'), '--set', 'autoscaling.enabled=true'], message: 'needs a fixed replicaCount' },
  { name: 'perPod bad service type', args: [...ci('perpod-nodeport-values.yaml'), '--set', 'passive.perPod.serviceType=ClusterIP'], message: 'serviceType must be LoadBalancer or NodePort' },
];

const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
};

function render(args) {
  return spawnSync(helm, ['template', 'modes', chart, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

const range = (lo, hi) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
const sameSet = (a, b) => a.length === b.length && [...a].sort((x, y) => x - y).every((v, i) => v === [...b].sort((x, y) => x - y)[i]);
const selects = (selector, labels) => Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);

for (const c of cases) {
  const run = render(c.args);
  if (run.status !== 0) {
    failures.push(`${c.name}: helm template failed: ${run.stderr.trim()}`);
    continue;
  }
  const docs = parseAllDocuments(run.stdout).map((d) => d.toJS()).filter(Boolean);
  const config = parse(docs.find((d) => d.kind === 'ConfigMap' && d.data?.['config.yaml']).data['config.yaml']);
  const workloads = docs.filter((d) => d.kind === 'Deployment' || d.kind === 'StatefulSet');
  check(workloads.length === 1, `${c.name}: one workload, got ${workloads.map((w) => w.kind).join(', ')}`);
  const workload = workloads[0];
  const expectedKind = c.mode === 'perPod' ? 'StatefulSet' : 'Deployment';
  check(workload.kind === expectedKind, `${c.name}: workload is a ${workload.kind}, expected a ${expectedKind}`);
  const pod = workload.spec.template;
  const container = pod.spec.containers[0];
  const ports = container.ports ?? [];
  const byName = new Map(ports.map((p) => [p.name, p]));
  const containerPorts = new Set(ports.map((p) => p.containerPort));
  const env = new Map((container.env ?? []).map((e) => [e.name, e]));
  const services = docs.filter((d) => d.kind === 'Service' && d.metadata.labels?.['app.kubernetes.io/component'] !== 'metrics');
  const main = services.find((s) => s.metadata.name === workload.metadata.name);
  // A Service port's targetPort as a number (a name is looked up in the container's ports).
  const target = (sp) => (typeof sp.targetPort === 'string' ? byName.get(sp.targetPort)?.containerPort : sp.targetPort ?? sp.port);

  // The listeners of the config and the container ports they need.
  const listeners = [['ftp', config.ftp?.port ?? 2121]];
  if (config.ftp?.tls?.implicitPort) listeners.push(['ftps', config.ftp.tls.implicitPort]);
  if (config.sftp?.enabled) listeners.push(['sftp', config.sftp.port ?? 2222]);
  for (const [name, port] of listeners) {
    check(byName.get(name)?.containerPort === port, `${c.name}: container port ${name} is ${byName.get(name)?.containerPort}, the config listens on ${port}`);
    if (c.mode === 'hostPort') {
      check(Number.isInteger(byName.get(name)?.hostPort), `${c.name}: the ${name} port (${port}) is not a host port`);
    } else {
      const exposed = (main?.spec.ports ?? []).filter((sp) => target(sp) === port);
      check(exposed.length === 1, `${c.name}: the ${name} port (${port}) is exposed ${exposed.length} times by Service ${main?.metadata.name}`);
    }
  }
  if (main) check(selects(main.spec.selector, pod.metadata.labels), `${c.name}: Service ${main.metadata.name} does not select the pods`);

  // Every pod's effective passive settings: the config, the environment, its byHostname entry.
  const passive = config.ftp?.passive ?? {};
  const addressEnv = env.get('FTP_S3_BRIDGE__FTP__PASSIVE__ADDRESS');
  const envAddress = addressEnv?.value ?? (addressEnv?.valueFrom?.fieldRef ? `fieldRef:${addressEnv.valueFrom.fieldRef.fieldPath}` : undefined);
  const podNames = workload.kind === 'StatefulSet' ? range(0, workload.spec.replicas - 1).map((i) => `${workload.metadata.name}-${i}`) : ['(any pod)'];
  const pods = podNames.map((name) => {
    const own = passive.byHostname?.[name] ?? {};
    const min = own.portMin ?? passive.portMin ?? 30000;
    const max = own.portMax ?? passive.portMax ?? 30049;
    return { name, ports: range(min, max), address: own.address ?? envAddress ?? passive.address };
  });
  if (workload.kind !== 'StatefulSet') check(!passive.byHostname, `${c.name}: ftp.passive.byHostname without stable pod names`);

  for (const p of pods) {
    for (const port of p.ports) check(containerPorts.has(port), `${c.name}: ${p.name}'s passive port ${port} is not a container port`);
  }
  const passiveServices = services.filter((s) => s.spec.ports.some((sp) => pods.some((p) => p.ports.includes(sp.port))));

  if (c.mode === 'service') {
    const [only] = pods;
    check(passiveServices.length === 1 && passiveServices[0] === main, `${c.name}: passive ports on ${passiveServices.map((s) => s.metadata.name).join(', ')}, expected ${main?.metadata.name} alone`);
    const exposed = (main?.spec.ports ?? []).filter((sp) => sp.name?.startsWith('pasv-'));
    check(sameSet(exposed.map((sp) => sp.port), only.ports), `${c.name}: Service passive ports ${exposed.map((sp) => sp.port)} != config range ${only.ports[0]}-${only.ports.at(-1)}`);
    for (const sp of exposed) check(target(sp) === sp.port, `${c.name}: Service port ${sp.port} targets ${sp.targetPort}`);
    check(ports.every((p) => p.hostPort === undefined), `${c.name}: host ports in service mode`);
  }

  if (c.mode === 'perPod') {
    check(!(main?.spec.ports ?? []).some((sp) => sp.name?.startsWith('pasv-')), `${c.name}: the shared Service ${main?.metadata.name} exposes passive ports`);
    const addresses = new Set();
    for (const p of pods) {
      const own = services.filter((s) => s.spec.selector?.[POD_NAME_LABEL] === p.name);
      check(own.length === 1, `${c.name}: ${own.length} Services select pod ${p.name}, expected 1`);
      const svc = own[0];
      if (!svc) continue;
      check(svc.spec.type === c.serviceType, `${c.name}: ${svc.metadata.name} is a ${svc.spec.type}, expected ${c.serviceType}`);
      check(selects(svc.spec.selector, { ...pod.metadata.labels, [POD_NAME_LABEL]: p.name }), `${c.name}: ${svc.metadata.name} does not select ${p.name}`);
      check(sameSet(svc.spec.ports.map((sp) => sp.port), p.ports), `${c.name}: ${svc.metadata.name} exposes ${svc.spec.ports.map((sp) => sp.port)}, ${p.name} uses ${p.ports[0]}-${p.ports.at(-1)}`);
      for (const sp of svc.spec.ports) {
        check(target(sp) === sp.port && containerPorts.has(sp.port), `${c.name}: ${svc.metadata.name} port ${sp.port} targets ${sp.targetPort}`);
        if (c.serviceType === 'NodePort') check(sp.nodePort === sp.port, `${c.name}: ${svc.metadata.name} port ${sp.port} has nodePort ${sp.nodePort}`);
      }
      // Nothing else exposes this pod's passive ports to it.
      const others = passiveServices.filter((s) => s !== svc && selects(s.spec.selector, { ...pod.metadata.labels, [POD_NAME_LABEL]: p.name }));
      check(others.length === 0, `${c.name}: ${others.map((s) => s.metadata.name)} also expose ${p.name}'s passive ports`);
      check(typeof p.address === 'string' && p.address.length > 0, `${c.name}: ${p.name} announces no address`);
      if (c.serviceType === 'LoadBalancer') {
        check(passive.byHostname?.[p.name]?.address === p.address, `${c.name}: ${p.name}'s address is not its own ftp.passive.byHostname entry`);
        if (svc.spec.loadBalancerIP) check(svc.spec.loadBalancerIP === p.address, `${c.name}: ${svc.metadata.name} has loadBalancerIP ${svc.spec.loadBalancerIP}, ${p.name} announces ${p.address}`);
        check(!addresses.has(p.address), `${c.name}: ${p.address} announced by two pods`);
        addresses.add(p.address);
      } else if (p.address === 'fieldRef:status.hostIP') {
        // Only the pod's own node forwards its node ports then, and that is the address it announces.
        check(svc.spec.externalTrafficPolicy === 'Local', `${c.name}: ${svc.metadata.name} must keep externalTrafficPolicy Local when the pod announces its node`);
      }
    }
    const nodePorts = services.flatMap((s) => s.spec.ports.map((sp) => sp.nodePort).filter((n) => n !== undefined));
    check(new Set(nodePorts).size === nodePorts.length, `${c.name}: a node port is used twice (node ports are cluster-wide)`);
    check(services.length === 1 + pods.length, `${c.name}: ${services.length} Services, expected the shared one and one per pod`);
  }

  if (c.mode === 'hostPort') {
    const [only] = pods;
    check(passiveServices.length === 0, `${c.name}: Services ${passiveServices.map((s) => s.metadata.name)} expose passive ports in hostPort mode`);
    for (const port of only.ports) {
      const entry = ports.find((p) => p.containerPort === port);
      check(entry?.hostPort === port, `${c.name}: passive port ${port} has hostPort ${entry?.hostPort}`);
    }
    check(only.address !== undefined, `${c.name}: no announced address (status.hostIP or passive.hostPort.address)`);
    if (!addressEnv?.value) check(only.address === 'fieldRef:status.hostIP', `${c.name}: the address is ${only.address}, expected the node's (status.hostIP)`);
    const hostPorts = ports.map((p) => p.hostPort).filter((h) => h !== undefined);
    check(new Set(hostPorts).size === hostPorts.length, `${c.name}: a host port is used twice`);
    const required = pod.spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
    check(
      required.some((t) => t.topologyKey === 'kubernetes.io/hostname' && Object.keys(t.labelSelector?.matchLabels ?? {}).length > 0 && selects(t.labelSelector.matchLabels, pod.metadata.labels)),
      `${c.name}: no required pod anti-affinity on kubernetes.io/hostname that matches the pods`,
    );
    check(
      workload.spec.strategy?.rollingUpdate?.maxSurge === 0 || workload.spec.strategy?.type === 'Recreate',
      `${c.name}: a rollout would surge a pod onto host ports that are taken`,
    );
  }
  console.log(`${c.name}: ${workload.kind}, ${pods.length} pod(s), passive ${pods.map((p) => `${p.ports[0]}-${p.ports.at(-1)}@${p.address ?? '(the reached address)'}`).join(' ')}`);
}

// PROXY protocol and Redis reach the config only when set; the Redis URL only from its Secret.
{
  const configOf = (args) => {
    const run = render(args);
    if (run.status !== 0) throw new Error(`helm template ${args.join(' ')} failed: ${run.stderr}`);
    const docs = parseAllDocuments(run.stdout).map((d) => d.toJS()).filter(Boolean);
    const text = docs.find((d) => d.kind === 'ConfigMap' && d.data?.['config.yaml']).data['config.yaml'];
    const workload = docs.find((d) => d.kind === 'Deployment' || d.kind === 'StatefulSet');
    return { config: parse(text), text, env: workload.spec.template.spec.containers[0].env ?? [] };
  };
  const plain = configOf(['--set-json', ACCOUNT]);
  check(!plain.config.ftp.proxyProtocol && !plain.config.sftp?.proxyProtocol && !plain.config.cluster, 'defaults: proxyProtocol or cluster in the config');
  const file = join(chart, 'ci', 'proxy-redis-values.yaml');
  const values = parse(readFileSync(file, 'utf8'));
  const withBoth = configOf(['-f', file]);
  check(isDeepStrictEqual(withBoth.config.ftp.proxyProtocol, values.proxyProtocol.ftp), 'proxy-redis: config.ftp.proxyProtocol differs from proxyProtocol.ftp');
  check(isDeepStrictEqual(withBoth.config.sftp?.proxyProtocol, values.proxyProtocol.sftp), 'proxy-redis: config.sftp.proxyProtocol differs from proxyProtocol.sftp');
  const redis = values.cluster.redis;
  check(withBoth.config.cluster?.redis?.keyPrefix === redis.keyPrefix, 'proxy-redis: cluster.redis.keyPrefix not in the config');
  check(withBoth.config.cluster?.redis?.tls?.ca === '/etc/ftp-s3-bridge/redis/ca.crt', 'proxy-redis: cluster.redis.tls.ca is not the mounted CA');
  check(withBoth.config.cluster?.redis?.url === undefined && !/redis:\/\//.test(withBoth.text), 'proxy-redis: a Redis URL in the ConfigMap');
  const urlEnv = withBoth.env.find((e) => e.name === 'FTP_S3_BRIDGE__CLUSTER__REDIS__URL');
  check(urlEnv?.valueFrom?.secretKeyRef?.name === redis.existingSecret && urlEnv.valueFrom.secretKeyRef.key === redis.urlKey, 'proxy-redis: FTP_S3_BRIDGE__CLUSTER__REDIS__URL is not from cluster.redis.existingSecret/urlKey');
  console.log('proxy-redis: proxyProtocol and cluster.redis in the config, the Redis URL from its Secret');
}

for (const r of refusals) {
  const run = render(r.args);
  check(run.status !== 0 && run.stderr.includes(r.message), `${r.name}: expected a render failure with "${r.message}", got exit ${run.status}: ${run.stderr.trim()}`);
  if (run.status !== 0) console.log(`${r.name}: refused (${r.message})`);
}

if (failures.length) {
  console.error(`check-helm-modes: ${failures.length} problem(s):\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log('check-helm-modes: every mode exposes what its pods are configured for');
