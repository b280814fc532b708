import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the server does with one embeddings request, decided from the texts it carries. */
export type EmbeddingFault =
  /** Answer normally. */
  | 'none'
  /** NaN in every vector (sent as JSON null, as a real server's NaN arrives). */
  | 'nan'
  /** One vector fewer than texts. */
  | 'short'
  /** Vectors one dimension too long. */
  | 'dimensions'
  /** 413 Payload Too Large, as a proxy in front of an embeddings server answers an oversized body. */
  | 'too-large';

export interface FakeEmbeddingsOptions {
  /** @default 16 */
  dimensions?: number;
  /** Time taken per character of a request, so a big request is slow and a small one quick. @default 0 */
  msPerChar?: number;
  /** Decides each request's fault from its texts. @default always 'none' */
  fault?: (input: string[]) => EmbeddingFault;
}

/**
 * A local server speaking OpenAI's `/v1/embeddings` protocol over real HTTP, so tests exercise the real `openai`
 * client: deterministic vectors (hashed words, so texts sharing words are similar), a delay proportional to
 * what a request carries, one request at a time like a CPU-bound server, and faults chosen per request.
 */
export class FakeEmbeddings {
  /** Every request's texts, in arrival order. */
  readonly requests: string[][] = [];
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    private readonly server: ReturnType<typeof createServer>,
    readonly options: Required<FakeEmbeddingsOptions>,
  ) {}

  static async start(options: FakeEmbeddingsOptions = {}): Promise<FakeEmbeddings> {
    const server = createServer();
    const fake = new FakeEmbeddings(server, {
      dimensions: options.dimensions ?? 16,
      msPerChar: options.msPerChar ?? 0,
      fault: options.fault ?? (() => 'none'),
    });
    server.on('request', (req, res) => void fake.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get baseURL(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  /** ragline's settings for this server. */
  config(): Record<string, string> {
    return {
      OPENAI_EMBEDDING_MODEL: 'fake-embed',
      OPENAI_EMBEDDING_DIMENSIONS: String(this.options.dimensions),
      RAGLINE_EMBEDDING_URL: this.baseURL,
      RAGLINE_EMBEDDING_SEND_DIMENSIONS: 'false',
    };
  }

  /** The vector the server gives `text`. */
  vector(text: string): number[] {
    const vector = new Array<number>(this.options.dimensions).fill(0);
    for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
      vector[createHash('sha256').update(word).digest()[0]! % this.options.dimensions]! += 1;
    }
    const norm = Math.hypot(...vector) || 1;
    return vector.map((value) => value / norm);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method !== 'POST' || !req.url?.endsWith('/embeddings')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { input: string[]; model: string };
    this.requests.push(body.input);
    const fault = this.options.fault(body.input);
    if (fault === 'too-large') {
      res.writeHead(413, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'request entity too large', type: 'invalid_request_error' } }));
      return;
    }
    // One request at a time, as a CPU-bound embedder works.
    const chars = body.input.reduce((sum, text) => sum + text.length, 0);
    const turn = this.queue.then(
      () => new Promise<void>((resolve) => setTimeout(resolve, chars * this.options.msPerChar)),
    );
    this.queue = turn;
    await turn;
    const vectors = body.input.map((text) => {
      const vector = this.vector(text);
      if (fault === 'nan') return vector.map(() => null);
      if (fault === 'dimensions') return [...vector, 0];
      return vector;
    });
    if (fault === 'short') vectors.pop();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        object: 'list',
        model: body.model,
        usage: { prompt_tokens: chars, total_tokens: chars },
        data: vectors.map((embedding, index) => ({ object: 'embedding', index, embedding })),
      }),
    );
  }
}
