import { InvalidArgumentError, type Command } from 'commander';
import { ErrorType, RaglineError } from '../../lib/errors.js';
import { feedbackProblem } from '../../lib/improve/feedback.js';
import { queryInputProblem, type AnswerQueryResult } from '../../contracts/query.js';
import type { AnswerStream } from '../../client/answer-stream.js';
import { positiveInt, type CliContext } from '../context.js';
import { printJson } from '../output.js';

interface AskOptions {
  tenant?: string;
  topK?: number;
  cache: boolean;
  json?: boolean;
  stream?: boolean;
}

/** `ragline ask`, whole or streamed (`--stream`). */
export function registerAskCommand(program: Command, context: CliContext): void {
  program
    .command('ask')
    .description('answer a question through the query workflow')
    .argument('<question>')
    .option('--tenant <tenant>', 'tenant whose corpus answers')
    .option('--top-k <n>', 'chunks to retrieve', positiveInt)
    .option('--no-cache', 'skip the result cache')
    .option('--json', 'print the whole result as JSON (with --stream: one JSON line per event)')
    .option('--stream', 'print the answer as it is written (needs Redis, REDIS_URL; without it the answer comes whole)')
    .action(async (question: string, options: AskOptions) => {
      const config = context.loadConfig();
      const input = {
        query: question,
        tenant: options.tenant ?? config.RAGLINE_DEFAULT_TENANT,
        options: { topK: options.topK, bypassCache: options.cache ? undefined : true },
      };
      // Bad input is reported as such even when no server is running.
      const problem = queryInputProblem(input, { maxQueryChars: config.RAGLINE_MAX_QUERY_CHARS });
      if (problem) throw new RaglineError(ErrorType.InvalidInput, problem);
      const client = await context.connectWithWorker(config);
      if (options.stream) {
        try {
          await printStream(await client.askStream(input), options.json ?? false);
        } finally {
          await client.close();
        }
        return;
      }
      const result = await client.ask(input);
      await client.close();
      if (options.json) printJson(result);
      else printAnswer(result);
    });
}

const scoreArg = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 5) throw new InvalidArgumentError('must be an integer from 1 to 5');
  return n;
};

/** `ragline feedback`: a person's rating of an answer, which the improvement workflow of its tenant counts. */
export function registerFeedbackCommand(program: Command, context: CliContext): void {
  program
    .command('feedback')
    .description('rate an answer from 1 (useless) to 5 (exactly right), by the query id `ask` printed')
    .argument('<queryId>')
    .argument('<score>', 'an integer from 1 to 5', scoreArg)
    .option('--comment <text>', 'what was wrong or right')
    .action(async (queryId: string, score: number, options: { comment?: string }) => {
      const problem = feedbackProblem({ queryId, score, comment: options.comment });
      if (problem) throw new RaglineError(ErrorType.InvalidInput, problem);
      const client = await context.connectWithWorker(context.loadConfig());
      const improvement = client.improvement;
      const result = await improvement.feedback({ queryId, score, comment: options.comment });
      console.log(`feedback recorded for ${result.queryId} (tenant ${result.tenant})`);
    });
}

/**
 * Prints tokens as they arrive, then the sources and flags. The final result's answer is the answer of record: it is
 * printed again only when what was streamed differs from it (a rewrite after a reset, or citations it corrected).
 */
async function printStream(stream: AnswerStream, json: boolean): Promise<void> {
  if (stream.channel === 'none' && !json) {
    console.error(
      '(no token channel reaches this process — set REDIS_URL on workers and here; the answer comes whole)',
    );
  }
  let shown = '';
  for await (const event of stream) {
    if (json) {
      console.log(JSON.stringify(event));
    } else if (event.type === 'delta') {
      process.stdout.write(event.text);
      shown += event.text;
    } else if (event.type === 'reset') {
      if (shown) {
        process.stdout.write('\n');
        console.error('(the answer is being written again)');
      }
      shown = '';
    } else {
      const same = shown.trim() === event.result.answer;
      if (shown && !same) process.stdout.write('\n\n');
      printAnswer(event.result, same);
    }
  }
}

function printAnswer(result: AnswerQueryResult, answerShown = false): void {
  console.log(answerShown ? '' : result.answer);
  const cited = new Set(result.citations ?? []);
  const show = (title: string, sources: AnswerQueryResult['sources']) => {
    if (sources.length === 0) return;
    console.log(`\n${title}:`);
    for (const s of sources) console.log(`  [${s.n}] ${s.title} (${s.docId}, score ${s.score.toFixed(2)})`);
  };
  show(
    'Sources',
    result.sources.filter((s) => cited.has(s.n)),
  );
  show(
    cited.size > 0 ? 'Also retrieved' : 'Retrieved (not cited)',
    result.sources.filter((s) => !cited.has(s.n)),
  );
  const flags = [
    `quality ${result.qualityTier} (${result.qualityScore.toFixed(2)})`,
    `cache ${result.cache.result}`,
    `model ${result.model}`,
    `${result.timingsMs.total} ms`,
    result.degraded ? `DEGRADED: ${result.fallbackReason}` : undefined,
  ].filter(Boolean);
  console.log(`\n${flags.join(' · ')}\nworkflow ${result.queryId}`);
}
