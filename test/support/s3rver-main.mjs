// Runs s3rver on a loopback port for the tests; started with --openssl-legacy-provider (s3rver's
// ListObjectsV2 continuation tokens use a cipher OpenSSL 3 keeps only in its legacy provider).
import S3rver from 's3rver';

const directory = process.argv[2];
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
const { port } = await server.run();
process.stdout.write(JSON.stringify({ port }) + '\n');
const stop = () => server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
