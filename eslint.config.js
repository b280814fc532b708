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

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.tools/', '.data/', 'coverage/', 'test/replay/histories/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { import: importPlugin },
    settings: { 'import/resolver': { node: { extensions: ['.ts', '.js'] } } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import/no-cycle': 'error',
    },
  },
  {
    // Workflow code is replayed: it must be deterministic, so no I/O, no environment, no adapters.
    files: ['workflows/**/*.ts'],
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
