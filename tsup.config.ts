import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', cli: 'src/cli/main.ts', 'engine-worker': 'src/engine/worker.ts', cluster: 'src/cluster/index.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts', cluster: 'src/cluster/index.ts' } },
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  clean: true,
  shims: true,
  splitting: false,
});
