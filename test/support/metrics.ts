import { expect } from 'vitest';
import type { TestBridge } from './bridge.js';

/** One unlabelled gauge or counter of the bridge's /metrics. */
export async function metricValue(b: TestBridge, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${b.httpPort}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
}

/**
 * Waits until the bridge counts `count` open control connections (ftp_sessions_active). The gauge
 * drops on the socket's close, with the connection-limit slot: a test that needs a slot free waits
 * for this instead of sleeping.
 */
export async function waitForSessions(b: TestBridge, count: number, timeoutMs = 30_000): Promise<void> {
  await expect.poll(() => metricValue(b, 'ftp_sessions_active'), { timeout: timeoutMs, interval: 50 }).toBe(count);
}
