import { TestWorkflowEnvironment } from '@temporalio/testing';
import { devServerArgs, ensureTemporalCli } from '../../workers/dev-server.js';

/**
 * A real Temporal dev server on free ports, started through @temporalio/testing with the same tuning and
 * search attributes as the server `ragline up` starts.
 */
export async function startTestTemporal(): Promise<TestWorkflowEnvironment> {
  const path = ensureTemporalCli(process.env.TEMPORAL_CLI_PATH);
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path },
      ip: '127.0.0.1',
      extraArgs: ['--log-level', 'error', ...devServerArgs({ tuned: true })],
    },
  });
}
