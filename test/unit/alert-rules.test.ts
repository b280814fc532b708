import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const prometheusDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../ops/prometheus');

function promtool(...args: string[]) {
  const result = spawnSync('promtool', args, { cwd: prometheusDir, encoding: 'utf8' });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
    // Failing rather than skipping: untested alert rules are how a pager stays silent during an outage.
    throw new Error(
      'promtool is not installed, so the alert rules cannot be tested; run `make test`, which installs it ' +
        '(or install the prometheus package that ships promtool)',
    );
  }
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('Prometheus alert rules', () => {
  it('are valid', () => {
    const { status, output } = promtool('check', 'rules', 'alerts.yml');
    expect(status, output).toBe(0);
    expect(output).toContain('SUCCESS');
  });

  it('pass their promtool unit tests, firing and staying quiet as specified', () => {
    const { status, output } = promtool('test', 'rules', 'alerts.test.yml');
    expect(status, output).toBe(0);
    expect(output).toContain('SUCCESS');
  });

  it('are loaded by the Prometheus configuration', () => {
    const { status, output } = promtool('check', 'config', 'prometheus.yml');
    expect(status, output).toBe(0);
    expect(output).toContain('SUCCESS: 1 rule files found');
  });
});
