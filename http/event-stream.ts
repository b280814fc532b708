import type { FastifyReply } from 'fastify';
import type { AnswerStream } from '../client/answer-stream.js';

/** Comments keep idle proxies from closing a stream whose tokens have not started yet. */
const SSE_KEEPALIVE_MS = 15_000;

/**
 * Takes the reply over from Fastify for Server-Sent Events (its headers, rate-limit ones included, are kept) and
 * hands `body` a writer of raw frames that drops them once the client is gone. A client that goes away only stops the
 * listening: the workflow completes and is cached. The reply ends when `body` does, however it ends.
 */
export async function writeEventStream(
  reply: FastifyReply,
  stream: AnswerStream,
  body: (write: (frame: string) => void) => Promise<void>,
): Promise<void> {
  reply.hijack();
  const raw = reply.raw;
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) raw.setHeader(name, value);
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    // Proxies such as nginx would otherwise buffer the tokens into one late chunk.
    'x-accel-buffering': 'no',
  });
  const write = (frame: string) => {
    if (!raw.destroyed && !raw.writableEnded) raw.write(frame);
  };
  raw.on('close', () => void stream.close());
  const keepAlive = setInterval(() => write(': keep-alive\n\n'), SSE_KEEPALIVE_MS);
  try {
    await body(write);
  } finally {
    clearInterval(keepAlive);
    if (!raw.writableEnded) raw.end();
  }
}
