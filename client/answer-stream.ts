import type { StreamMessage, TokenChannel } from '../lib/stream/token-channel.js';
import type { AnswerQueryResult } from '../contracts/query.js';

/**
 * What `askStream` yields: the answer's text as it is written, then the workflow's result. A `reset` means the
 * answer is being written again from the start (a retried generation, or the extractive fallback): drop the text
 * shown so far. The final result's `answer` is the answer of record, the same one the caches keep.
 */
export type AnswerStreamEvent =
  { type: 'delta'; text: string } | { type: 'reset' } | { type: 'final'; result: AnswerQueryResult };

/**
 * How tokens reach this stream: `redis` from any worker, `in-process` only from a worker in this process, `none` when
 * no channel reaches the caller (no Redis, no worker here, or Redis down): the final result then arrives at once.
 */
export type StreamChannelKind = 'redis' | 'in-process' | 'none';

/** How long a result waits for tokens still in flight on the channel before it is delivered anyway. */
const END_GRACE_MS = 2000;

/**
 * One query's answer as it is written. Iterate it once; leaving the loop early (or `close()`) only stops listening:
 * the workflow runs on, and its answer is cached as usual.
 */
export class AnswerStream implements AsyncIterable<AnswerStreamEvent> {
  private readonly queue: AnswerStreamEvent[] = [];
  private wake?: () => void;
  private failure?: { error: unknown };
  private ended = false;
  private abandoned = false;
  /** Tokens were heard since the last `end`: more may still be in flight when the result arrives. */
  private inFlight = false;
  private onEnd?: () => void;
  private unsubscribe: () => Promise<void> = async () => undefined;
  private stopping?: Promise<void>;
  /** Settles with the workflow's result whether or not anyone iterates or listens. */
  result!: Promise<AnswerQueryResult>;
  channel: StreamChannelKind = 'none';

  constructor(readonly queryId: string) {}

  /** Starts listening on `tokens` (before the workflow starts, so no token is published unheard). */
  async listen(tokens: TokenChannel | undefined, tenant: string): Promise<void> {
    if (!tokens) return;
    try {
      this.unsubscribe = await tokens.subscribe(tokens.name(tenant, this.queryId), (message) => this.push(message));
      this.channel = tokens.kind;
    } catch {
      // Redis unreachable: the stream still ends with the whole answer, only later.
      this.channel = 'none';
    }
  }

  /** Ends the stream with the workflow's outcome. */
  follow(result: Promise<AnswerQueryResult>): void {
    this.result = result;
    result.then(
      async (value) => {
        // The result travels through Temporal, the tokens through the channel: let the last tokens land first.
        await this.tokensSettled();
        void this.stopListening();
        this.enqueue({ type: 'final', result: value });
      },
      (error: unknown) => {
        void this.stopListening();
        this.failure = { error };
        this.wake?.();
      },
    );
  }

  /** Resolves once the last attempt's `end` is heard, or after END_GRACE_MS (a publisher that lost Redis sends none). */
  private tokensSettled(): Promise<void> {
    if (!this.inFlight) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, END_GRACE_MS);
      this.onEnd = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private push(message: StreamMessage): void {
    if (this.ended) return;
    if (message.type === 'end') {
      this.inFlight = false;
      this.onEnd?.();
      return;
    }
    this.inFlight = true;
    this.enqueue(message.type === 'delta' ? { type: 'delta', text: message.text } : { type: 'reset' });
  }

  private enqueue(event: AnswerStreamEvent): void {
    if (this.ended) return;
    if (event.type === 'final') this.ended = true;
    this.queue.push(event);
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<AnswerStreamEvent> {
    try {
      for (;;) {
        const event = this.queue.shift();
        if (event) {
          yield event;
          if (event.type === 'final') return;
          continue;
        }
        if (this.failure) throw this.failure.error;
        if (this.abandoned) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      await this.close();
    }
  }

  /** Stops listening and ends the iteration; never cancels the workflow, whose answer is still cached. */
  close(): Promise<void> {
    this.abandoned = true;
    this.wake?.();
    return this.stopListening();
  }

  private stopListening(): Promise<void> {
    this.stopping ??= this.unsubscribe().catch(() => undefined);
    return this.stopping;
  }
}
