import { expect } from 'vitest';
import type { TestBridge } from './bridge.js';

/** One series of the bridge's /metrics, named as exposed (labels included: `ftp_passive_ports{state="in_use"}`). */
export async function metricValue(b: TestBridge, series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${b.httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no ${series} in /metrics`);
  return Number(line.slice(series.length + 1));
}

/**
 * Waits until the bridge counts `count` open control connections (ftp_sessions_active). The gauge
 * drops on the socket's close, with the connection-limit slot: a test that needs a slot free waits
 * for this instead of sleeping.
 */
export async function waitForSessions(b: TestBridge, count: number, timeoutMs = 30_000): Promise<void> {
  await expect.poll(() => metricValue(b, 'ftp_sessions_active'), { timeout: timeoutMs, interval: 50 }).toBe(count);
}

/** Waits until `count` passive ports are held (ftp_passive_ports in_use): a port freed is one PASV can take. */
export async function waitForPassivePortsInUse(b: TestBridge, count: number, timeoutMs = 30_000): Promise<void> {
  await expect.poll(() => metricValue(b, 'ftp_passive_ports{state="in_use"}'), { timeout: timeoutMs, interval: 50 }).toBe(count);
}
