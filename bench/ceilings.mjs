// Machine ceilings, measured in the process that runs the benchmarks (DESIGN.md, "Performance
// method"):
//   gemm       float32 GEMM GFLOP/s: onnxruntime-node (MLAS sgemm, a good proxy for OpenBLAS)
//              running one MatMul A[1024,1024] x B[1024,4096], B a pre-packed initializer,
//              intraOpNumThreads = 1 and 2; median of several runs.
//   bandwidth  memory read GB/s: the addon's readBandwidth (AVX2 streaming sum) over a 256 MiB
//              Float32Array that has been written first (untouched pages all map the one zero
//              page and read from cache at ~5x the real figure), threads = 1 and 2; median of
//              several single passes.
//   fma        register-only FMA GFLOP/s per CPU level (the addon's fmaPeak: independent FMA
//              chains that never touch memory), threads = 1 and 2: the compute peak of a level.
//
// Run alone: node bench/ceilings.mjs [--quick]
import { loadAddon, median, require, uniform } from './lib.mjs';
import { matmulModel } from './onnx-graphs.mjs';

const GEMM_SHAPE = { M: 1024, K: 1024, N: 4096 };
const BANDWIDTH_BYTES = 256 * 1024 * 1024;

export async function measureGemm({ threads, runs = 9, warmup = 3 } = {}) {
  const ort = require('onnxruntime-node');
  const { M, K, N } = GEMM_SHAPE;
  const a = uniform(M * K, 11);
  const b = uniform(K * N, 12);
  const session = await ort.InferenceSession.create(matmulModel(M, K, N, b), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  try {
    const feeds = { A: new ort.Tensor('float32', a, [M, K]) };
    for (let i = 0; i < warmup; i++) await session.run(feeds);
    const gflops = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await session.run(feeds);
      const s = (performance.now() - t0) / 1e3;
      gflops.push((2 * M * K * N) / s / 1e9);
    }
    return { threads, gflops: median(gflops), best: Math.max(...gflops), runs: gflops };
  } finally {
    await session.release();
  }
}

export function measureBandwidth({ threads, runs = 9, values } = {}) {
  const addon = loadAddon();
  if (typeof addon.readBandwidth !== 'function') {
    return { threads, gbs: null, error: 'the built addon has no readBandwidth (rebuild: npm run build:native)' };
  }
  addon.readBandwidth({ values, threads, reps: 1 }); // warm-up
  const gbs = [];
  for (let i = 0; i < runs; i++) gbs.push(addon.readBandwidth({ values, threads, reps: 1 }));
  return { threads, gbs: median(gbs), best: Math.max(...gbs), runs: gbs };
}

/** Both ceilings for 1 and 2 threads (and `threads`, when more). */
export async function measureCeilings({ quick = false, threads = 2, log = console.log } = {}) {
  const counts = [...new Set([1, 2, threads])].sort((x, y) => x - y);
  const runs = quick ? 5 : 9; // a shared VM: single runs swing by 20%

  const gemm = {};
  for (const t of counts) {
    gemm[t] = await measureGemm({ threads: t, runs });
    log(`  gemm       ${t} thread(s): ${gemm[t].gflops.toFixed(1)} GFLOP/s (median of ${runs})`);
  }

  const values = new Float32Array(BANDWIDTH_BYTES / 4);
  for (let i = 0; i < values.length; i++) values[i] = (i & 1023) * 0.001; // touch every page
  const bandwidth = {};
  for (const t of counts) {
    bandwidth[t] = measureBandwidth({ threads: t, runs, values });
    const g = bandwidth[t].gbs;
    log(`  bandwidth  ${t} thread(s): ${g == null ? bandwidth[t].error : `${g.toFixed(1)} GB/s`} (median of ${runs})`);
  }

  const addon = loadAddon();
  const fma = {};
  for (const level of addon.levels ?? []) {
    if (level === 'scalar') continue;
    fma[level] = {};
    for (const t of counts) {
      const g = [];
      for (let i = 0; i < runs; i++) g.push(addon.fmaPeak({ level, threads: t, reps: 1 }));
      fma[level][t] = { gflops: median(g), best: Math.max(...g) };
      log(`  fma peak   ${level} ${t} thread(s): ${fma[level][t].gflops.toFixed(1)} GFLOP/s (median of ${runs})`);
    }
  }

  return {
    fma: { method: 'addon fmaPeak (register-only FMA chains) per level', byLevel: fma },
    gemm: { method: 'onnxruntime-node MatMul (MLAS sgemm), B pre-packed', shape: GEMM_SHAPE, byThreads: gemm },
    bandwidth: { method: 'addon readBandwidth (AVX2 sum)', bytes: BANDWIDTH_BYTES, byThreads: bandwidth },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  console.log('Measuring machine ceilings…');
  const c = await measureCeilings({ quick });
  console.log(JSON.stringify(c, null, 2));
}
