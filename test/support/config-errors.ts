import { expect } from 'vitest';
import { ConfigError } from '../../src/config/load.js';

/**
 * Runs `fn`, expects it to throw a {@link ConfigError} whose message carries the same lines as its
 * `problems` (one per problem, after the heading line), and returns those problem lines.
 */
export function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect((err as ConfigError).message.split('\n').slice(1)).toEqual(problems);
    return problems;
  }
  throw new Error('expected a ConfigError, but the configuration was accepted');
}
