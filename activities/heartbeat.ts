import { Context } from '@temporalio/activity';

/**
 * Heartbeats while `body` outlasts a third of the activity's heartbeat timeout, so a worker that dies mid-activity
 * is noticed within that timeout instead of at the end of the start-to-close one and the attempt moves to another
 * worker; a quick call sends none. `details`, when given, is what each beat carries (the latest progress).
 * Activities scheduled without a heartbeat timeout run as they are.
 */
export async function keepAlive<T>(body: () => Promise<T>, details?: () => unknown): Promise<T> {
  const context = Context.current();
  const timeoutMs = context.info.heartbeatTimeoutMs;
  if (!timeoutMs) return body();
  const beat = setInterval(
    () => (details ? context.heartbeat(details()) : context.heartbeat()),
    Math.max(100, Math.floor(timeoutMs / 3)),
  );
  try {
    return await body();
  } finally {
    clearInterval(beat);
  }
}
