// node-redis 6 against a MooDB server, with node-redis' default options (so it opens every
// connection with HELLO 3). Run by tests/tests/it/real_clients.rs:
//
//     node tests/clients/node/node_redis_client.mjs PORT [PASSWORD]
//
// Prints `ok` and exits 0 when every check passed; a failed check exits 1 with the reason.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createClient, WatchError } from 'redis';

const require = createRequire(import.meta.url);
const version = require('@redis/client/package.json').version;
assert.ok(Number(version.split('.')[0]) >= 6, `node-redis ${version}: this test is for node-redis 6`);

const port = Number(process.argv[2]);
const password = process.argv[3];
const url = password
  ? `redis://default:${encodeURIComponent(password)}@127.0.0.1:${port}`
  : `redis://127.0.0.1:${port}`;

async function main() {
  const client = createClient({ url });
  client.on('error', (err) => {
    console.error('client error:', err);
    process.exit(1);
  });
  await client.connect();
  try {
    assert.equal(await client.ping(), 'PONG');
    const hello = await client.hello();
    assert.equal(hello.proto, 3, JSON.stringify(hello));
    assert.equal(hello.server, 'redis');

    assert.equal(await client.set('node:k', 'v'), 'OK');
    assert.equal(await client.get('node:k'), 'v');
    assert.equal(await client.get('node:missing'), null);
    assert.equal(await client.set('node:k', 'w', { condition: 'NX' }), null);
    assert.equal(await client.incr('node:n'), 1);
    assert.equal(await client.incrBy('node:n', 41), 42);
    assert.deepEqual(await client.mGet(['node:k', 'node:missing', 'node:n']), ['v', null, '42']);
    assert.equal(await client.del(['node:k', 'node:n', 'node:missing']), 2);
    assert.equal(await client.exists('node:k'), 0);

    // Pipeline: several commands in one write, no MULTI.
    const piped = await client.multi().set('node:p', '1').incr('node:p').get('node:p').get('node:nope').execAsPipeline();
    assert.deepEqual(piped, ['OK', 2, '2', null]);

    // Transaction.
    const tx = await client.multi().set('node:t', 'a').get('node:t').incr('node:tn').exec();
    assert.deepEqual(tx, ['OK', 'a', 1]);

    // WATCH, a change from another client, then EXEC: aborted (RESP3's `_` nil).
    const other = client.duplicate();
    await other.connect();
    await client.watch('node:t');
    await other.set('node:t', 'theirs');
    await assert.rejects(client.multi().set('node:t', 'mine').exec(), WatchError);
    assert.equal(await client.get('node:t'), 'theirs');
    other.destroy();

    // Many commands at once from one connection (node-redis pipelines them by itself).
    const many = await Promise.all(Array.from({ length: 100 }, (_, i) => client.set(`node:m${i}`, String(i))));
    assert.ok(many.every((r) => r === 'OK'));
    assert.equal(await client.get('node:m99'), '99');

    const config = await client.configGet('save');
    assert.deepEqual({ ...config }, { save: '' });
    console.log('ok');
  } finally {
    client.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
