import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/demo.ts'],
  format: ['esm', 'cjs'],
  dts: { entry: 'src/index.ts' },
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  clean: true,
  shims: true,
  splitting: false,
});
