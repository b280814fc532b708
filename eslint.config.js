import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importPlugin from 'eslint-plugin-import';

const adapterPackages = [
  'ioredis',
  'openai',
  '@qdrant/*',
  'prom-client',
  '@opentelemetry/*',
  'pino',
  'lru-cache',
  'fastify',
  'zod',
];

/**
 * The layers, top to bottom: a file may import from its own layer and the layers below it, never above. The
 * Temporal contracts sit under the Temporal layers (workflows, activities, workers and clients all import them) and
 * over lib/, which imports nothing above it; lib's own folders are ordered too, so no two of them import each other.
 * bench/ and test/ are outside the layers and may import anything.
 */
const layers = [
  './cli',
  './http',
  './client',
  './workers',
  './workflows',
  './activities',
  './contracts',
  './lib/temporal',
  './lib/ingest',
  './lib/stream',
  './lib/resilience',
  './lib/improve',
  './lib/eval',
  './lib/generation',
  './lib/retrieval',
  './lib/openai',
  './lib/cache',
  './lib/telemetry',
  './lib/*.ts',
];
const layerZones = layers.slice(1).map((target, index) => ({
  target,
  from: layers.slice(0, index + 1).filter((layer) => !layer.includes('*')),
  message: `${target} imports only from its own layer and the layers below it (the order is in eslint.config.js).`,
}));

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.tools/', '.data/', 'coverage/', 'test/replay/histories/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { import: importPlugin },
    settings: { 'import/resolver': { typescript: { project: './tsconfig.json' } } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import/no-cycle': 'error',
      'import/no-restricted-paths': ['error', { zones: layerZones }],
    },
  },
  {
    // Workflow code is replayed: it must be deterministic, so no I/O, no environment, no adapters.
    files: ['workflows/**/*.ts', 'bench/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'Workflows may not use Node built-ins (determinism).' },
            { group: adapterPackages, message: 'Workflows may not import adapters; call an activity.' },
            {
              // Pure, dependency-free scoring and alert logic the evaluation workflow decides with is allowed.
              group: [
                '../lib/*/*',
                '../activities/*',
                '!../lib/eval/scores.js',
                '!../lib/eval/alerts.js',
                '!../lib/improve/params.js',
              ],
              allowTypeImports: true,
              message: 'Workflows import only types and pure modules.',
            },
          ],
          paths: ['fs', 'path', 'crypto', 'os', 'http', 'https', 'net', 'child_process', 'worker_threads'].map(
            (name) => ({
              name,
              message: 'Workflows may not use Node built-ins (determinism).',
            }),
          ),
        },
      ],
      'no-restricted-globals': ['error', { name: 'process', message: 'Workflows may not read the environment.' }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
