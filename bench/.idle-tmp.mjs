import { Cleanups, startS3rver, writeBridgeConfig, startBridge, hashPassword, s3Client, tempDir } from '/work/main/bench/lib.mjs';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
const cleanups = new Cleanups();
try {
  const s3 = await startS3rver(cleanups);
  await s3Client(s3).send(new CreateBucketCommand({ Bucket: 'bkt' }));
  const tmp = tempDir(cleanups, 'idle-');
  const file = join(tmp, 'c.json');
  const sftp = process.env.NO_SFTP ? {} : { sftp: { enabled: true, host: '127.0.0.1', port: 0, hostKeys: ['/tmp/idle/hk'] } };
  writeBridgeConfig(file, { store: s3, passivePorts: [39500, 39509], s3: { region: 'us-east-1', partSizeMiB: 8, queueSize: 4 },
    accounts: [{ username: 'u', passwordHash: hashPassword('pw12345678'), bucket: 'bkt' }], log: { level: 'info' }, http: { host: '127.0.0.1', port: 0 }, ...sftp });
  const nodeArgs = (process.env.NODE_ARGS || '').split(/\s+/).filter(Boolean);
  const b = await startBridge(cleanups, file, { nodeArgs, stderr: 'pipe' });
  await new Promise((r) => setTimeout(r, 4000));
  const st = readFileSync(`/proc/${b.pid}/status`, 'utf8').split('\n').filter((l) => /^(VmRSS|RssAnon|RssFile|VmHWM)/.test(l)).join(' | ');
  console.log(st.replace(/\s+/g, ' '));
  if (process.env.MAPS) {
    const sm = readFileSync(`/proc/${b.pid}/smaps`, 'utf8').split('\n'); let hdr='';
    for (const l of sm) { if (/^[0-9a-f]+-[0-9a-f]+ /.test(l)) hdr = l; else if (l.startsWith('Rss:')) { const v = Number(l.split(/\s+/)[1]); if (v >= 256) { const [a,b2]=hdr.split(' ')[0].split('-').map(x=>parseInt(x,16)); console.log(v, 'KiB rss of', ((b2-a)/1048576).toFixed(1), 'MiB', hdr.slice(0,120)); } } }
  }
  if (process.env.SMAPS) {
    const sm = readFileSync(`/proc/${b.pid}/smaps`, 'utf8').split('\n');
    let cur = ''; const agg = new Map();
    for (const l of sm) {
      if (/^[0-9a-f]+-[0-9a-f]+ /.test(l)) { const p = l.split(/\s+/); cur = p[5] || '[anon]'; }
      else if (l.startsWith('Rss:')) agg.set(cur, (agg.get(cur) || 0) + Number(l.split(/\s+/)[1]));
    }
    console.log([...agg].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, v]) => `${(v/1024).toFixed(1)} ${k}`).join('\n'));
  }
} finally { await cleanups.run?.() ?? cleanups.close?.(); }
