import type { Command } from 'commander';
import { EXIT, type CliContext } from '../context.js';
import { printJson } from '../output.js';

/** `ragline docs delete`. */
export function registerDocsCommands(program: Command, context: CliContext): void {
  program
    .command('docs')
    .description('manage documents')
    .command('delete')
    .description('delete documents by id; answers that cited them are dropped from the cache')
    .argument('<ids...>')
    .option('--tenant <tenant>')
    .option('--json')
    .action(async (ids: string[], options: { tenant?: string; json?: boolean }) => {
      const config = context.loadConfig();
      const client = await context.connectWithWorker(config);
      const result = await client.deleteDocuments(ids, options.tenant ?? config.RAGLINE_DEFAULT_TENANT);
      await client.close();
      if (options.json) printJson(result);
      else {
        if (result.deleted.length)
          console.log(`deleted: ${result.deleted.join(', ')} (corpus version ${result.corpusVersion})`);
        if (result.missing.length) console.error(`not found: ${result.missing.join(', ')}`);
      }
      if (result.missing.length > 0) process.exitCode = EXIT.partial;
    });
}
