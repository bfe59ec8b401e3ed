// Lint: typescript-eslint's strict type-checked set, Prettier for layout, and import rules that hold
// the layering: the core (fops, cache, mounts) knows no framework, server or CLI.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const NO_ADAPTERS = [{ group: ['**/adapters/**', '**/server/**', '**/cli/**'], message: 'The core imports no adapter, server or CLI.' }];
const NO_HTTP = [
  { name: 'node:http', message: 'The core knows no framework: HTTP belongs to the adapters.' },
  { name: 'node:http2', message: 'The core knows no framework: HTTP belongs to the adapters.' },
  { name: 'node:https', message: 'The core knows no framework: HTTP belongs to the adapters.' },
];

export default tseslint.config(
  { ignores: ['dist/**', '.build-test/**', 'node_modules/**', 'bench/.data/**', 'demo/**', 'test/fixtures/**', 'src/fops/zip/zlib-wasm.generated.ts'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { globals: globals.node, parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Template literals with numbers are how this code builds keys and messages.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // noUncheckedIndexedAccess types every typed-array read as `T | undefined`; `!` marks an index the
      // code has already bounds-checked (the zip index is columns of typed arrays).
      '@typescript-eslint/no-non-null-assertion': 'off',
      // `(err) => reject(err)` and `() => resolve()` are callbacks, not confusing values.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
    },
  },
  {
    files: ['src/fops/**', 'src/cache/**'],
    rules: { 'no-restricted-imports': ['error', { paths: NO_HTTP, patterns: NO_ADAPTERS }] },
  },
  {
    files: ['src/mounts/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...NO_HTTP,
            { name: 'node:fs', message: 'Mounts reach files only through the fops layer.' },
            { name: 'node:fs/promises', message: 'Mounts reach files only through the fops layer.' },
          ],
          patterns: NO_ADAPTERS,
        },
      ],
    },
  },
  {
    files: ['test/**', 'src/testing/**'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
    },
  },
  { files: ['**/*.mjs', '**/*.js'], ...tseslint.configs.disableTypeChecked },
  prettier,
);
