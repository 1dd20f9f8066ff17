import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/.venv holds third-party packages fetched for schema checks (Python venv, the ECS npm package).
    exclude: ['test/.venv/**', 'node_modules/**'],
    globalSetup: ['test/setup/global.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
  },
});
