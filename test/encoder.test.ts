import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { ClosedError, Encoder, FileError, FormatError, InvalidArgumentError, ModelError, OutOfRangeError, UnsupportedModelError, nativeInfo } from '../src/index.js';
import { rng } from './helpers.js';

const dir = new URL('../models/fixtures/', import.meta.url).pathname;
const fixture = (name: string): { histories: number[][]; outputs?: number[][] } =>
  JSON.parse(readFileSync(`${dir}${name}.json`, 'utf8')) as { histories: number[][]; outputs?: number[][] };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const TOL = 1e-5;

// PyTorch exports with PyTorch's own outputs (each history run alone in torch).
const torchModels = [
  'lstm1_bf_ylast_tanh',
  'lstm2_seqfirst_hn_relu',
  'lstm2_bf_ylast_sigmoid',
  'gru2_bf_hn_tanh',
  'bilstm2_bf_ylast',
  'lstm2_packed_hn',
  'lstm2_external',
];
// Hand-built ONNX graphs with outputs from a NumPy implementation of the ONNX operator spec.
const specModels = ['onnx_lstm_peephole_clip_reverse', 'onnx_lstm_input_forget_layout1', 'onnx_gru_lbr0', 'onnx_gru_reverse_clip'];
// onnxruntime's CPU LSTM has no layout=1.
const ortRuns = (name: string): boolean => name !== 'onnx_lstm_input_forget_layout1';

describe('Encoder parity', () => {
  for (const name of [...torchModels, ...specModels]) {
    it(`${name}: native matches the reference${ortRuns(name) ? ' and onnxruntime' : ''} within 1e-5`, async () => {
      const fx = fixture(name);
      const enc = await Encoder.load(`${dir}${name}.onnx`);
      expect(enc.backend).toBe('native');
      expect(enc.fallbackReason).toBeNull();
      expect(enc.dim).toBe(fx.outputs?.[0].length);
      const out = await enc.encode(fx.histories);
      expect(maxAbsDiff(out, (fx.outputs as number[][]).flat())).toBeLessThanOrEqual(TOL);
      if (ortRuns(name)) {
        const ort = await Encoder.load(`${dir}${name}.onnx`, { backend: 'onnxruntime' });
        expect(ort.backend).toBe('onnxruntime');
        expect(maxAbsDiff(out, await ort.encode(fx.histories))).toBeLessThanOrEqual(TOL);
        await ort.close();
      }
      for (const isa of nativeInfo().levels) {
        const e2 = await Encoder.load(`${dir}${name}.onnx`, { isa, foldBytes: 0, threads: 1 });
        expect(maxAbsDiff(await e2.encode(fx.histories), (fx.outputs as number[][]).flat())).toBeLessThanOrEqual(TOL);
      }
    });
  }

  it('a variable-length batch equals each history encoded alone, bit for bit, at any thread count', async () => {
    const enc1 = await Encoder.load(`${dir}bench_lstm2x128.onnx`, { threads: 1 });
    const enc2 = await Encoder.load(`${dir}bench_lstm2x128.onnx`, { threads: 2 });
    const r = rng(5);
    const hs = Array.from({ length: 150 }, () => Array.from({ length: Math.floor(r() * 25) }, () => Math.floor(r() * 5000)));
    const batch = await enc1.encode(hs);
    expect(await enc2.encode(hs)).toEqual(batch);
    expect(enc1.encodeSync(hs)).toEqual(batch);
    for (const u of [0, 1, 17, 64, 149]) {
      expect(await enc1.encode([hs[u]])).toEqual(batch.subarray(u * 64, (u + 1) * 64));
    }
  });

  it('the benchmark model matches PyTorch', async () => {
    const fx = fixture('bench_lstm2x128');
    const enc = await Encoder.load(`${dir}bench_lstm2x128.onnx`);
    expect(maxAbsDiff(await enc.encode(fx.histories), (fx.outputs as number[][]).flat())).toBeLessThanOrEqual(TOL);
  });
});

describe('Encoder.step', () => {
  for (const name of ['lstm1_bf_ylast_tanh', 'lstm2_seqfirst_hn_relu', 'gru2_bf_hn_tanh', 'lstm2_packed_hn', 'onnx_gru_lbr0']) {
    it(`${name}: stepping through histories gives encode's vectors`, async () => {
      const fx = fixture(name);
      const enc = await Encoder.load(`${dir}${name}.onnx`);
      expect(enc.incremental).toBe(true);
      const hs = fx.histories.slice(0, 6);
      const maxLen = Math.max(...hs.map((h) => h.length));
      // One state per history; users whose history ended keep stepping nothing: step them one
      // at a time with their own state instead.
      for (const h of hs) {
        const st = enc.initialState(1);
        let v: Float32Array = new Float32Array(0);
        for (const id of h) v = await enc.step(st, [id]);
        expect(v).toEqual(await enc.encode([h]));
      }
      // Several users in one state, all stepped together with the same-length prefixes.
      const st = enc.initialState(hs.length);
      const prefix = Math.min(...hs.map((h) => h.length));
      let v: Float32Array = new Float32Array(0);
      for (let p = 0; p < prefix; p++) v = enc.stepSync(st, hs.map((h) => h[p]));
      expect(v).toEqual(await enc.encode(hs.map((h) => h.slice(0, prefix))));
      expect(await enc.output(st)).toEqual(v);
      expect(maxLen).toBeGreaterThan(prefix);
    });
  }

  it('a state saved with toFloat32Array and restored continues the same session', async () => {
    const enc = await Encoder.load(`${dir}lstm2_bf_ylast_sigmoid.onnx`);
    const st = enc.initialState(2);
    enc.stepSync(st, [1, 2]);
    enc.stepSync(st, [3, 4]);
    const saved = st.toFloat32Array() as Float32Array;
    expect(saved.length).toBe(2 * enc.stateSize);
    const other = await Encoder.load(`${dir}lstm2_bf_ylast_sigmoid.onnx`);
    const back = other.restoreState(saved);
    expect(other.stepSync(back, [5, 6])).toEqual(await enc.encode([[1, 3, 5], [2, 4, 6]]));
    expect(() => other.restoreState(saved.subarray(1))).toThrow(`data.length (${saved.length - 1}) is not a multiple of the state size (${enc.stateSize})`);
    expect(() => other.restoreState(Float32Array.of(Number.NaN, ...saved.subarray(1)))).toThrow('data[0] is not finite');
  });

  it('concurrent steps on one state apply in call order; stepSync waits its turn or refuses', async () => {
    const enc = await Encoder.load(`${dir}lstm2_bf_ylast_sigmoid.onnx`);
    const st = enc.initialState(1);
    const [a, b] = await Promise.all([enc.step(st, [5]), enc.step(st, [7])]);
    expect(a).toEqual(await enc.encode([[5]]));
    expect(b).toEqual(await enc.encode([[5, 7]]));
    const pending = enc.step(st, [9]);
    expect(() => enc.stepSync(st, [1])).toThrow('an asynchronous step on this state has not finished yet');
    await pending;
    expect(enc.stepSync(st, [1])).toEqual(await enc.encode([[5, 7, 9, 1]]));
  });

  it('an empty history is the zero state: encode([[]]) equals output(initialState)', async () => {
    const enc = await Encoder.load(`${dir}lstm2_bf_ylast_sigmoid.onnx`);
    const empty = await enc.encode([[], [3, 4]]);
    expect(empty.subarray(0, 6)).toEqual(await enc.output(enc.initialState(1)));
    // Linear(0) + sigmoid: sigmoid(bias), a real value, not NaN.
    expect(Array.from(empty.subarray(0, 6)).every((x) => x > 0 && x < 1)).toBe(true);
  });

  it('bidirectional models step by re-encoding, and say so', async () => {
    const enc = await Encoder.load(`${dir}bilstm2_bf_ylast.onnx`);
    expect(enc.incremental).toBe(false);
    const st = enc.initialState(2);
    await enc.step(st, [1, 2]);
    const v = await enc.step(st, [3, 4]);
    expect(v).toEqual(await enc.encode([[1, 3], [2, 4]]));
    expect(() => enc.stepSync(st, [1, 2])).toThrow('stepSync needs the native backend and a unidirectional model');
  });
});

describe('Encoder fallback to onnxruntime', () => {
  it('runs what it cannot lower on onnxruntime and says why', async () => {
    const fx = fixture('lstm_layernorm');
    const enc = await Encoder.load(`${dir}lstm_layernorm.onnx`);
    expect(enc.backend).toBe('onnxruntime');
    expect(enc.fallbackReason).toBe('op ReduceMean at node /norm/ReduceMean is not supported');
    expect(enc.dim).toBe(6);
    expect(enc.vocab).toBe(40);
    expect(maxAbsDiff(await enc.encode(fx.histories), (fx.outputs as number[][]).flat())).toBeLessThanOrEqual(TOL);
    await expect(enc.encode([[]])).rejects.toThrow('histories[0] is empty: the onnxruntime backend cannot run a model on zero events');
    await expect(enc.encode([[40]])).rejects.toThrow(OutOfRangeError);
    const st = enc.initialState(1);
    await enc.step(st, [5]);
    expect(await enc.step(st, [6])).toEqual(await enc.encode([[5, 6]]));
    await enc.close();
  });

  it("backend: 'native' on such a model throws the reason", async () => {
    const err = await Encoder.load(`${dir}lstm_layernorm.onnx`, { backend: 'native' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedModelError);
    expect((err as UnsupportedModelError).code).toBe('ERR_RECSCORE_UNSUPPORTED_MODEL');
    expect((err as Error).message).toBe('the native backend cannot run this model: op ReduceMean at node /norm/ReduceMean is not supported');
  });
});

describe('Encoder bad input', () => {
  it('ids out of range, negative or not integers name the row and position', async () => {
    const enc = await Encoder.load(`${dir}lstm1_bf_ylast_tanh.onnx`);
    await expect(enc.encode([[1, 2], [3, 40]])).rejects.toThrow('histories[1][1] = 40 is not an item index of the model (0..39)');
    await expect(enc.encode([[1, -2]])).rejects.toThrow(OutOfRangeError);
    await expect(enc.encode([[1, -2]])).rejects.toThrow('histories[0][1] = -2 is not an item index of the model (0..39)');
    await expect(enc.encode([[1.5]])).rejects.toThrow('histories[0][0] must be an integer item index, got 1.5');
    await expect(enc.encode([['3' as unknown as number]])).rejects.toThrow(InvalidArgumentError);
    await expect(enc.encode('abc' as unknown as number[][])).rejects.toThrow('histories must be an array of item-index arrays');
    expect(() => enc.encodeSync([[99]])).toThrow('histories[0][0] = 99 is not an item index of the model (0..39)');
    const st = enc.initialState(2);
    await expect(enc.step(st, [1])).rejects.toThrow('itemIds has 1 entries for a state of 2 users');
    await expect(enc.step(st, [1, 41])).rejects.toThrow('itemIds[1] = 41 is not an item index of the model (0..39)');
    const other = await Encoder.load(`${dir}lstm1_bf_ylast_tanh.onnx`);
    await expect(other.step(st, [1, 2])).rejects.toThrow('state was not made by this encoder');
    expect(() => enc.initialState(-1)).toThrow('batch must be a non-negative integer, got -1');
    expect(await enc.encode([])).toEqual(new Float32Array(0));
  });

  it('a model whose input is not integer ids', async () => {
    await expect(Encoder.load(`${dir}bad_float_input.onnx`)).rejects.toThrow(ModelError);
    await expect(Encoder.load(`${dir}bad_float_input.onnx`)).rejects.toThrow('input items has dtype float32; expected int64 or int32 item ids');
  });

  it('a model whose output is not [batch, dim]', async () => {
    await expect(Encoder.load(`${dir}bad_output_rank3.onnx`)).rejects.toThrow('output user has rank 3; expected [batch, dim]');
  });

  it('files that are not ONNX, truncated or corrupt', async () => {
    await expect(Encoder.load(`${dir}lstm1_bf_ylast_tanh.json`)).rejects.toThrow(FormatError);
    await expect(Encoder.load(new Uint8Array([1, 2, 3, 4, 5]))).rejects.toThrow(/^model bytes: not a valid ONNX protobuf: /);
    const bytes = readFileSync(`${dir}lstm1_bf_ylast_tanh.onnx`);
    for (const cut of [10, 200, bytes.length - 7]) {
      await expect(Encoder.load(bytes.subarray(0, cut))).rejects.toThrow(FormatError);
    }
    // A well-formed protobuf that is not a model: ModelError.
    await expect(Encoder.load(new Uint8Array([0x08, 0x07]))).rejects.toThrow('model bytes: not an ONNX model (no graph)');
    await expect(Encoder.load(`${dir}does-not-exist.onnx`)).rejects.toThrow(FileError);
    await expect(Encoder.load(`${dir}does-not-exist.onnx`)).rejects.toThrow(/ENOENT/);
    await expect(Encoder.load(42 as unknown as string)).rejects.toThrow('model must be a path or a Uint8Array, got 42');
  });

  it('external data needs the model path', async () => {
    const bytes = readFileSync(`${dir}lstm2_external.onnx`);
    await expect(Encoder.load(bytes)).rejects.toThrow(/keeps its data in lstm2_external.weights; load the model from a path, not bytes/);
  });

  it('options are checked', async () => {
    await expect(Encoder.load(`${dir}lstm1_bf_ylast_tanh.onnx`, { backend: 'gpu' as 'native' })).rejects.toThrow(
      "options.backend must be 'auto', 'native' or 'onnxruntime', got \"gpu\"",
    );
    await expect(Encoder.load(`${dir}lstm1_bf_ylast_tanh.onnx`, { threads: 0 })).rejects.toThrow('options.threads must be a positive integer, got 0');
  });

  it('a closed encoder rejects calls', async () => {
    const enc = await Encoder.load(`${dir}lstm1_bf_ylast_tanh.onnx`);
    await enc.close();
    await expect(enc.encode([[1]])).rejects.toThrow(ClosedError);
    expect(() => enc.initialState(1)).toThrow('encoder is closed');
  });
});
