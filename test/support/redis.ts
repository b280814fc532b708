import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { Redis } from 'ioredis';

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port ?? 0;
}

/** `count` distinct free loopback ports: all are held open until each is known, so none is handed out twice. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    return typeof address === 'object' && address ? address.port : 0;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/**
 * `count` ports for RAGLINE_METRICS_PORT: a worker serves the Temporal SDK's metrics on the next port up, so each port
 * and its neighbour must be free, and no two pairs may overlap. They are taken below the kernel's ephemeral range
 * (32768 and up), where the outgoing connections of a busy test run cannot take the neighbour in the meantime.
 */
export function freeMetricsPorts(count: number): Promise<number[]> {
  return freePortPairs(count, 1, 20_000, 32_000);
}

/**
 * `count` ports for Redis Cluster nodes, each with its cluster bus port (`port + 10000`, passed as `--cluster-port`)
 * free too. Both are below the ephemeral range: Redis refuses a port above 55535 (its bus would pass 65535), and
 * nothing reserves the bus port of an ephemeral one.
 */
export function freeClusterPorts(count: number): Promise<number[]> {
  return freePortPairs(count, CLUSTER_BUS_OFFSET, 20_000, 32_768 - CLUSTER_BUS_OFFSET);
}

export const CLUSTER_BUS_OFFSET = 10_000;

/** `count` ports in [low, high) whose `port + offset` is free too; no port of one pair is a port of another. */
async function freePortPairs(count: number, offset: number, low: number, high: number): Promise<number[]> {
  const ports: number[] = [];
  const taken = new Set<number>();
  for (let attempt = 0; ports.length < count && attempt < 1000; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (taken.has(port) || taken.has(port + offset)) continue;
    if ((await canListen(port)) && (await canListen(port + offset))) {
      ports.push(port);
      taken.add(port).add(port + offset);
    }
  }
  if (ports.length < count) {
    throw new Error(`no ${count} free ports between ${low} and ${high} with port + ${offset} free too`);
  }
  return ports;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

/** A real redis-server on a free loopback port, without persistence; can be stopped and restarted on the same port. */
export class TestRedis {
  private child?: ChildProcess;
  private constructor(readonly port: number) {}

  /** On a free port, or on `port` (a test of what a clash does). */
  static async start(port?: number): Promise<TestRedis> {
    const redis = new TestRedis(port ?? (await freePort()));
    await redis.restart();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * Starts redis-server on {@link port} (again, after {@link stop}: empty). The port was free when chosen, not
   * reserved: if something else took it meanwhile, our server cannot bind while another answers the probe. So this
   * returns only once the server answering is our child (its `process_id`), and fails saying whose it is otherwise.
   */
  async restart(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    let output = '';
    const keep = (data: Buffer) => (output = (output + data.toString()).slice(-2000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    await ownRedisServer(child, this.port, () => output, 10_000);
  }

  /**
   * An outage that keeps the data, as a network partition or a failover does: the server is frozen (SIGSTOP), so
   * clients' commands time out, until {@link resume}. `stop` + `restart` instead comes back empty (no persistence).
   */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    const child = this.child;
    // A child killed by a signal has a signalCode and a null exitCode.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}

/**
 * Waits until redis-server `child` answers on `port` itself: fails at once if it exited (a port it could not bind)
 * or if another process's server answers there (a port clash that would otherwise go unnoticed), and after
 * `timeoutMs` saying what it last saw.
 */
export async function ownRedisServer(
  child: ChildProcess,
  port: number,
  output: () => string = () => '',
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastSeen = 'nothing answered yet';
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const how = child.exitCode !== null ? `with code ${child.exitCode}` : `on ${child.signalCode}`;
      throw new Error(`redis-server for port ${port} exited ${how} before serving: ${output().trim()}`);
    }
    // A fresh client per attempt: a failed lazy connect leaves ioredis reconnecting on its own.
    const probe = new Redis(port, '127.0.0.1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      const pid = Number(/^process_id:(\d+)/m.exec(await probe.info('server'))?.[1]);
      if (pid === child.pid) return;
      throw new PortClashError(
        `port ${port} is served by another redis-server (pid ${pid}), not by ours (pid ${child.pid}): a port clash`,
      );
    } catch (error) {
      if (error instanceof PortClashError) {
        child.kill('SIGKILL');
        throw error;
      }
      lastSeen = String(error);
    } finally {
      probe.disconnect();
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer on port ${port} within ${timeoutMs} ms (last: ${lastSeen})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export class PortClashError extends Error {
  override readonly name = 'PortClashError';
}
