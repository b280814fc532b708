import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../lib/config.js';
import {
  CONFIG_REFERENCE,
  CONFIG_SOURCE,
  readConfigOptions,
  renderConfigReference,
} from '../../scripts/config-reference.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

describe('docs/configuration.md', () => {
  it('is what `npm run docs:config` generates from lib/config.ts (run it after changing the schema)', () => {
    expect(read(CONFIG_REFERENCE)).toBe(renderConfigReference(read(CONFIG_SOURCE)));
  });

  it('documents every variable of the schema, each with its default', () => {
    const options = readConfigOptions(read(CONFIG_SOURCE));
    expect(options.map((option) => option.name)).toEqual(Object.keys(configSchema.shape));
    for (const option of options) expect(option.defaultValue, option.name).not.toBe('');
  });
});
