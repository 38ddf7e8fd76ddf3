// Lint rules for the whole project: typescript-eslint's recommended set, plus a guard against
// the import cycles between top-level folders that the architecture forbids.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'outbox/**', 'previews/**', 'coverage/**', 'scratch/**', 'dist/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // Detectors are pure: they may not reach for I/O, the clock or the rest of the daemon.
    files: ['detectors/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['pg', 'ioredis', 'bullmq', 'nodemailer', 'node:*', 'pino'],
              message: 'Detectors are pure: no I/O.',
            },
            {
              group: ['../../lib/*', '../../workers/*', '../../jobs/*'],
              message: 'Detectors depend on nothing but themselves.',
            },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'Date', message: 'Detectors take `now` as an argument.' }],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Detectors are deterministic.' },
      ],
    },
  },
);
