// ioredis 6 against a MooDB server, with ioredis' default options (RESP2). Run by
// tests/tests/it/real_clients.rs:
//
//     node tests/clients/node/ioredis_client.mjs PORT [PASSWORD]
//
// Prints `ok` and exits 0 when every check passed; a failed check exits 1 with the reason.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import Redis from 'ioredis';

const require = createRequire(import.meta.url);
const version = require('ioredis/package.json').version;
assert.ok(Number(version.split('.')[0]) >= 6, `ioredis ${version}: this test is for ioredis 6`);

const port = Number(process.argv[2]);
const password = process.argv[3];

async function main() {
  const options = {
    host: '127.0.0.1',
    port,
    connectionName: 'io-app',
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  };
  if (password) options.password = password;
  const client = new Redis(options);
  client.on('error', (err) => {
    console.error('client error:', err);
    process.exit(1);
  });
  try {
    assert.equal(await client.ping(), 'PONG');
    // ioredis names the connection with CLIENT SETNAME on connect.
    assert.equal(await client.client('GETNAME'), 'io-app');
    assert.equal(typeof (await client.client('ID')), 'number');
    assert.equal(await client.set('io:k', 'v'), 'OK');
    assert.equal(await client.get('io:k'), 'v');
    assert.equal(await client.get('io:missing'), null);
    assert.equal(await client.set('io:k', 'w', 'NX'), null);

    // What ioredis users reach for that MooDB lacked before: PTTL, GETDEL, INCRBYFLOAT, RENAME.
    assert.equal(await client.set('io:ttl', '1', 'PX', 100000), 'OK');
    const pttl = await client.pttl('io:ttl');
    assert.ok(pttl > 99000 && pttl <= 100000, `pttl ${pttl}`);
    assert.equal(await client.pttl('io:missing'), -2);
    assert.equal(await client.getdel('io:ttl'), '1');
    assert.equal(await client.exists('io:ttl'), 0);
    assert.equal(await client.incrbyfloat('io:f', '10.5'), '10.5');
    assert.equal(await client.incrbyfloat('io:f', '0.1'), '10.6');
    assert.equal(await client.rename('io:f', 'io:g'), 'OK');
    assert.equal(await client.get('io:g'), '10.6');
    await assert.rejects(client.rename('io:nope', 'io:x'), /no such key/);

    assert.equal(await client.incr('io:n'), 1);
    assert.deepEqual(await client.mget('io:k', 'io:missing', 'io:n'), ['v', null, '1']);

    // A pipeline and a transaction.
    const piped = await client.pipeline().set('io:p', '1').incr('io:p').get('io:p').exec();
    assert.deepEqual(piped, [[null, 'OK'], [null, 2], [null, '2']]);
    const tx = await client.multi().set('io:t', 'a').get('io:t').exec();
    assert.deepEqual(tx, [[null, 'OK'], [null, 'a']]);

    // WATCH, a change from another connection, then EXEC: aborted (null).
    const other = client.duplicate();
    await client.watch('io:t');
    await other.set('io:t', 'theirs');
    assert.equal(await client.multi().set('io:t', 'mine').exec(), null);
    assert.equal(await client.get('io:t'), 'theirs');
    other.disconnect();

    assert.equal(await client.del('io:k', 'io:n', 'io:g', 'io:p', 'io:t'), 5);
  } finally {
    client.disconnect();
  }
  console.log('ok');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
