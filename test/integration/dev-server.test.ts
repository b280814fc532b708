import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer } from '../../workers/dev-server.js';
import { freePorts } from '../support/redis.js';

/** Stand-ins for the temporal CLI: each records its pid, then misbehaves in its own way. */
const FAKES = {
  // Starts and never listens, as a server stuck in start-up would.
  silent: `require('fs').writeFileSync(process.env.FAKE_PID_FILE + '.silent', String(process.pid));
setInterval(() => {}, 1000);`,
  // Listens on the port it was given, but speaks no Temporal.
  impostor: `require('fs').writeFileSync(process.env.FAKE_PID_FILE + '.impostor', String(process.pid));
const port = Number(process.argv[process.argv.indexOf('--port') + 1]);
require('net').createServer((socket) => socket.on('error', () => {})).listen(port, '127.0.0.1');`,
};

/** Whether any process still runs this script: it may have been stopped before it could record its pid. */
const running = async (script: string): Promise<boolean> => {
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(script)) return true;
  }
  return false;
};

describe('dev-server launcher', () => {
  let dir: string;
  const cli: Record<keyof typeof FAKES, string> = { silent: '', impostor: '' };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ragline-devserver-'));
    process.env.FAKE_PID_FILE = path.join(dir, 'pid');
    for (const [name, body] of Object.entries(FAKES) as Array<[keyof typeof FAKES, string]>) {
      const file = path.join(dir, `temporal-${name}`);
      await fs.writeFile(file, `#!${process.execPath}\n${body}\n`, { mode: 0o755 });
      cli[name] = file;
    }
  });

  afterAll(async () => {
    delete process.env.FAKE_PID_FILE;
    await fs.rm(dir, { recursive: true, force: true });
  });

  const options = async (cliPath: string) => {
    const [port, uiPort] = await freePorts(2);
    return { cliPath, dbFile: path.join(dir, 'db', 'temporal.db'), port: port!, uiPort: uiPort!, namespace: 'default' };
  };
  const pidOf = async (name: string) => Number(await fs.readFile(`${process.env.FAKE_PID_FILE}.${name}`, 'utf8'));

  it('stops the server it spawned when start-up times out', async () => {
    await expect(startDevServer({ ...(await options(cli.silent)), timeoutMs: 500 })).rejects.toThrow(
      /did not listen on port \d+/,
    );
    expect(await running(cli.silent)).toBe(false);
  });

  it('does not take a listener that is not a Temporal frontend for its server, and stops it', async () => {
    // The launcher gives the listener the whole start-up timeout to answer, so the test takes that long; 15 s is what
    // a loaded machine may need to start the fake (a node process) and have it listen at all.
    await expect(startDevServer({ ...(await options(cli.impostor)), timeoutMs: 15_000 })).rejects.toThrow(
      /is not a Temporal frontend/,
    );
    expect(await pidOf('impostor')).toBeGreaterThan(0);
    expect(await running(cli.impostor)).toBe(false);
  });

  it('refuses a port another process already listens on, spawning nothing', async () => {
    const squatter = net.createServer();
    const opts = await options(cli.silent);
    await new Promise<void>((resolve) => squatter.listen(opts.port, '127.0.0.1', resolve));
    await fs.rm(`${process.env.FAKE_PID_FILE}.silent`, { force: true });
    try {
      await expect(startDevServer(opts)).rejects.toThrow(new RegExp(`port ${opts.port} is already in use`));
      await expect(fs.access(`${process.env.FAKE_PID_FILE}.silent`)).rejects.toThrow();
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});
