import { createRequire } from 'node:module';

/**
 * `node:http`, loaded with `require` rather than imported as an ES module. Importing it builds its
 * module namespace, which reads every export, among them the lazy `WebSocket`, `CloseEvent` and
 * `MessageEvent` getters that load undici (Node's fetch): ~2 MiB of heap and ~5 MiB of RSS that
 * the bridge never uses. Type-only imports of `node:http` cost nothing and stay plain imports.
 */
export const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');
