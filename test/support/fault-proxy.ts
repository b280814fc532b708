import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the proxy does with each request: forward it, answer 500 at once (a store that is up but failing), or hold
 * it unanswered (a store that accepts connections and never replies — the worst case for a caller without a
 * timeout).
 */
export type FaultMode = 'pass' | 'fail' | 'hang';

/**
 * A loopback HTTP proxy in front of a real server (Qdrant in the chaos suite), switchable between passing requests
 * through, failing them and hanging them. Requests held by `hang` are cut off when the mode changes, as a restarted
 * server drops the connections it never answered.
 */
export class FaultProxy {
  mode: FaultMode = 'pass';
  /** Requests seen per mode, so a test can assert the fault was actually met. */
  readonly seen: Record<FaultMode, number> = { pass: 0, fail: 0, hang: 0 };
  private readonly held = new Set<http.ServerResponse>();
  private readonly agent = new http.Agent({ keepAlive: true });

  private constructor(
    private readonly server: http.Server,
    private readonly upstream: URL,
  ) {}

  static async start(upstream: string): Promise<FaultProxy> {
    const server = http.createServer();
    const proxy = new FaultProxy(server, new URL(upstream));
    server.on('request', (req, res) => proxy.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Switches mode; requests held by a hang are dropped. */
  set(mode: FaultMode): void {
    this.mode = mode;
    if (mode !== 'hang') this.release();
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const mode = this.mode;
    this.seen[mode] += 1;
    if (mode === 'fail') {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: { error: 'Service internal error: injected fault' }, time: 0 }));
      return;
    }
    if (mode === 'hang') {
      req.resume();
      this.held.add(res);
      res.once('close', () => this.held.delete(res));
      return;
    }
    const forward = http.request(
      {
        host: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: this.agent,
      },
      (upstream) => {
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        upstream.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  }

  private release(): void {
    for (const res of this.held) res.destroy();
    this.held.clear();
  }

  async close(): Promise<void> {
    this.release();
    this.agent.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
