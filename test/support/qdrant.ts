import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { listensOn } from './ports.js';
import { freePorts, PortClashError } from './redis.js';

/**
 * The Qdrant server binary beside the project (`../shared/qdrant/qdrant`, as CI lays out a clean clone), or
 * QDRANT_BINARY when set. Resolved from the project root, never from the working directory.
 */
export function qdrantBinary(): string {
  const projectRoot = path.resolve(import.meta.dirname, '../..');
  return path.resolve(projectRoot, process.env.QDRANT_BINARY?.trim() || '../shared/qdrant/qdrant');
}

export class QdrantBinaryMissingError extends Error {
  override readonly name = 'QdrantBinaryMissingError';
}

/**
 * A real Qdrant server on free loopback ports, its storage and working directory (where it writes `snapshots/`)
 * in a temporary folder removed on stop. A missing binary fails the suite with a message saying where it was
 * looked for: the Qdrant tests are part of CI, so they must never quietly skip.
 */
export class TestQdrant {
  private child?: ChildProcess;
  private output = '';
  private constructor(
    readonly httpPort: number,
    readonly grpcPort: number,
    private readonly dir: string,
  ) {}

  static async start(): Promise<TestQdrant> {
    const qdrant = await TestQdrant.create();
    await qdrant.launch();
    return qdrant;
  }

  /**
   * Ports and folder chosen, server not started: a test can point workers at a Qdrant that is not up yet, then
   * {@link launch} it.
   */
  static async create(): Promise<TestQdrant> {
    const binary = qdrantBinary();
    if (!existsSync(binary)) {
      throw new QdrantBinaryMissingError(
        `Qdrant server binary not found at ${binary}: the Qdrant suites need it (shared/qdrant/qdrant beside the ` +
          'project, or set QDRANT_BINARY)',
      );
    }
    const [httpPort, grpcPort] = await freePorts(2);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ragline-qdrant-'));
    return new TestQdrant(httpPort!, grpcPort!, dir);
  }

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  async launch(): Promise<void> {
    this.output = '';
    const child = spawn(qdrantBinary(), [], {
      cwd: this.dir,
      env: {
        PATH: process.env.PATH,
        QDRANT__SERVICE__HOST: '127.0.0.1',
        QDRANT__SERVICE__HTTP_PORT: String(this.httpPort),
        QDRANT__SERVICE__GRPC_PORT: String(this.grpcPort),
        QDRANT__STORAGE__STORAGE_PATH: path.join(this.dir, 'storage'),
        QDRANT__TELEMETRY_DISABLED: 'true',
        QDRANT__LOG_LEVEL: 'WARN',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    // The tail of its output goes into the start-up error, so a failed start says why.
    const keep = (data: Buffer) => (this.output = (this.output + data.toString()).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) {
        throw new Error(`Qdrant exited with code ${child.exitCode} at start-up: ${this.output.trim()}`);
      }
      try {
        const response = await fetch(`${this.url}/`, { signal: AbortSignal.timeout(1000) });
        if (response.ok && (await this.ownsPorts(child))) return;
      } catch (error) {
        if (error instanceof PortClashError) {
          await this.kill();
          throw error;
        }
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(
          `Qdrant did not answer GET / on ${this.url} with both its ports (gRPC ${this.grpcPort}) bound within 30 s: ` +
            this.output.trim(),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /**
   * The ports were free when {@link create} chose them, not reserved, and {@link launch} may come much later: a
   * server that answers could be another process's while ours failed to bind. Linux says which process holds a
   * listening socket (a clash fails at once; a gRPC port not bound yet is polled again); elsewhere our child must at
   * least still be running.
   */
  private async ownsPorts(child: ChildProcess): Promise<boolean> {
    const [http, grpc] = await Promise.all(
      [this.httpPort, this.grpcPort].map((port) => listensOn(child.pid ?? -1, port)),
    );
    if (http === false || child.exitCode !== null || child.signalCode !== null) {
      throw new PortClashError(
        `port ${this.httpPort} answers, but is not held by our Qdrant (pid ${child.pid}): a port clash. ` +
          `Qdrant said: ${this.output.trim()}`,
      );
    }
    return grpc !== false;
  }

  async stop(): Promise<void> {
    await this.kill();
    await fs.rm(this.dir, { recursive: true, force: true });
  }

  private async kill(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    }
  }
}
