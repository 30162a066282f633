import { fileURLToPath } from 'node:url';
import { runProgram } from '../support/clients.js';
import { describeUnreadDataClient } from './helpers.js';

/** Perl's Net::FTP (core module; TLS through IO::Socket::SSL): plain, AUTH TLS (starttls) and implicit FTPS. */
const script = fileURLToPath(new URL('programs/net-ftp.pl', import.meta.url));

describeUnreadDataClient(
  'Perl Net::FTP',
  [
    ['plain', '-'],
    ['explicit', '1.3'],
    ['explicit', '1.2'],
    ['implicit', '1.3'],
    ['implicit', '1.2'],
  ],
  (args) => runProgram('perl', [script, ...args], { timeoutMs: 110_000 }),
);
