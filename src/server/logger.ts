import { pino, type Logger } from 'pino';
import type { BridgeConfig } from '../config/schema.js';

/** The process logger: JSON lines; `log.pretty` (dev only) renders them with pino-pretty when installed. */
export function createLogger(log: BridgeConfig['log']): Logger {
  const options = {
    level: log.level,
    base: { service: 'ftp-s3-bridge' },
    // Defence in depth: these never belong in a log line, whoever logs them.
    redact: { paths: ['password', '*.password', 'passwordHash', '*.passwordHash', 'secretAccessKey', '*.secretAccessKey'], censor: '[redacted]' },
  };
  if (log.pretty) {
    try {
      return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true } } });
    } catch {
      // pino-pretty is a dev dependency: fall back to JSON.
    }
  }
  return pino(options);
}
