import fs from 'node:fs';
import type { Command } from 'commander';
import { InvalidInputError } from '../../lib/errors.js';
import { EXIT, type CliContext } from '../context.js';
import { DEFAULT_LOAD, formatReport, readSampleQuestions, runLoad, validateLoadOptions } from '../load.js';
import { printJson, terminalBar } from '../output.js';

/** `ragline load`: simulated users through the real service, and the report of what they saw. */
export function registerLoadCommand(program: Command, context: CliContext): void {
  program
    .command('load')
    .description('simulate users: N users × M queries (Zipf mix of sample questions, paraphrases, new ones) and report')
    .option('--users <n>', 'simulated users', '16')
    .option('--queries <m>', 'queries per user', '10')
    .option('--concurrency <n>', 'queries in flight at most', String(DEFAULT_LOAD.concurrency))
    .option('--think-ms <ms>', "mean pause between one user's queries", String(DEFAULT_LOAD.thinkMs))
    .option('--rate <q/s>', 'cap on queries started per second (0: none)', String(DEFAULT_LOAD.rate))
    .option('--zipf <s>', 'Zipf exponent of the question mix', String(DEFAULT_LOAD.zipf))
    .option('--new-share <0..1>', 'share of never-seen questions', String(DEFAULT_LOAD.newShare))
    .option('--paraphrase-share <0..1>', 'share of sample picks paraphrased', String(DEFAULT_LOAD.paraphraseShare))
    .option('--questions <file>', 'JSONL with a "query" per line', 'sample-corpus/ground-truth.jsonl')
    .option('--tenant <tenant>')
    .option('--seed <n>', 'seed of the question mix', String(DEFAULT_LOAD.seed))
    .option('--out <file>', 'where to write the JSON report', 'load-report.json')
    .option('--json', 'print the JSON report instead of the summary')
    .action(async (options: Record<string, string | boolean | undefined>) => {
      const num = (name: string) => Number(options[name]);
      // Validated before connecting: impossible arguments cost one line and exit 2, not a connection attempt.
      const loadOptions = validateLoadOptions({
        users: num('users'),
        queriesPerUser: num('queries'),
        concurrency: num('concurrency'),
        thinkMs: num('thinkMs'),
        rate: num('rate'),
        zipf: num('zipf'),
        newShare: num('newShare'),
        paraphraseShare: num('paraphraseShare'),
        tenant: typeof options.tenant === 'string' ? options.tenant : undefined,
        seed: num('seed'),
      });
      const questionsFile = String(options.questions);
      if (!fs.existsSync(questionsFile)) throw new InvalidInputError(`--questions: no such file ${questionsFile}`);
      const questions = readSampleQuestions(questionsFile);
      const client = await context.connectWithWorker(context.loadConfig());
      const total = loadOptions.users * loadOptions.queriesPerUser;
      const bar = terminalBar(
        'load [{bar}] {percentage}% | {value}/{total} queries | {degraded} degraded {errors} errors',
      );
      bar?.start(total, 0, { degraded: 0, errors: 0 });
      let degraded = 0;
      let errors = 0;
      try {
        const report = await runLoad(client, questions, loadOptions, {
          onDone(sample, done) {
            if (sample.path === 'degraded') degraded += 1;
            if (sample.error !== undefined) errors += 1;
            bar?.update(done, { degraded, errors });
          },
        });
        bar?.stop();
        fs.writeFileSync(String(options.out), `${JSON.stringify(report, null, 2)}\n`);
        if (options.json) printJson(report);
        else console.log(`${formatReport(report)}\nreport written to ${String(options.out)}`);
        if (report.errors > 0 || report.lost > 0) process.exitCode = EXIT.failure;
      } finally {
        bar?.stop();
        await client.close();
      }
    });
}
