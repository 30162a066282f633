import { fileURLToPath } from 'node:url';
import { runProgram } from '../support/clients.js';
import { describeUnreadDataClient } from './helpers.js';

/** Ruby's net/ftp (a bundled gem): plain and AUTH TLS (it has no implicit FTPS). */
const script = fileURLToPath(new URL('programs/net-ftp.rb', import.meta.url));

describeUnreadDataClient(
  'Ruby net/ftp',
  [
    ['plain', '-'],
    ['explicit', '1.3'],
    ['explicit', '1.2'],
  ],
  (args) => runProgram('ruby', [script, ...args], { timeoutMs: 110_000 }),
);
