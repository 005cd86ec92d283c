/**
 * The ONNX importer refuses what it does not understand (issue 19, item 3): mutated copies of
 * the committed fixtures, made here with @bufbuild/protobuf, so no binary is committed for them.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';

import { Encoder, FileError, FormatError, ModelError, UnsupportedModelError } from '../src/index.js';
import {
  AttributeProto_AttributeType as AT,
  AttributeProtoSchema,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  TensorProto_DataType as DT,
  TensorProtoSchema,
} from '../src/onnx/proto/onnx_pb.js';

const fixtures = new URL('../models/fixtures/', import.meta.url).pathname;
const EXAMPLE = new URL('../models/example/session_lstm.onnx', import.meta.url).pathname;
const LSTM1 = `${fixtures}lstm1_bf_ylast_tanh.onnx`;
const GRU2 = `${fixtures}gru2_bf_hn_tanh.onnx`;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A fixture decoded, changed by `f`, and encoded again. */
function mutate(file: string, f: (m: ModelProto) => void): Uint8Array {
  const m = fromBinary(ModelProtoSchema, readFileSync(file));
  f(m);
  return toBinary(ModelProtoSchema, m);
}

function node(m: ModelProto, name: string): NodeProto {
  const n = m.graph?.node.find((x) => x.name === name);
  if (!n) throw new Error(`no node ${name}`);
  return n;
}

const intAttr = (name: string, i: number) => create(AttributeProtoSchema, { name, type: AT.INT, i: BigInt(i) });

async function refusal(bytes: Uint8Array): Promise<Error> {
  return Encoder.load(bytes, { backend: 'native' }).then(
    () => {
      throw new Error('the native backend accepted the model');
    },
    (e: unknown) => e as Error,
  );
}

async function loadError(bytes: Uint8Array, backend: 'auto' | 'onnxruntime' = 'auto'): Promise<Error> {
  return Encoder.load(bytes, { backend }).then(
    () => {
      throw new Error(`backend ${backend} accepted the model`);
    },
    (e: unknown) => e as Error,
  );
}

const histories = [[1, 2, 3], [5], [7, 7, 1, 0, 9]];

/** With backend 'auto' the encoder runs on onnxruntime and answers exactly as onnxruntime does. */
async function expectOrtFallback(bytes: Uint8Array, reason: string): Promise<Float32Array> {
  const auto = await Encoder.load(bytes);
  expect(auto.backend).toBe('onnxruntime');
  expect(auto.fallbackReason).toBe(reason);
  const ort = await Encoder.load(bytes, { backend: 'onnxruntime' });
  const got = await auto.encode(histories);
  expect(got).toEqual(await ort.encode(histories));
  await auto.close();
  await ort.close();
  return got;
}

describe('attributes, inputs and values the importer does not understand refuse the native path', () => {
  it('a misspelt GRU attribute (linear_before_raset) is named, not ignored; onnxruntime rejects the model too', async () => {
    const bytes = mutate(GRU2, (m) => {
      node(m, '/rnn/GRU').attribute.find((a) => a.name === 'linear_before_reset')!.name = 'linear_before_raset';
    });
    const reason =
      'GRU at node /rnn/GRU: attribute linear_before_raset is not understood ' +
      '(opset 14 GRU takes activations, clip, direction, hidden_size, layout, linear_before_reset)';
    const native = await refusal(bytes);
    expect(native).toBeInstanceOf(UnsupportedModelError);
    expect(native.message).toBe(`the native backend cannot run this model: ${reason}`);
    const auto = await loadError(bytes);
    expect(auto).toBeInstanceOf(ModelError);
    expect(auto.message).toContain(`model bytes: the native encoder cannot run this model (${reason}), and neither can onnxruntime: `);
    expect(auto.message).toContain('Unrecognized attribute: linear_before_raset for operator GRU');
  });

  // onnxruntime checks every node against its schema except Constant, which it folds first.
  it.each([
    ['Gemm', '/lin/Gemm', true],
    ['Gather', '/emb/Gather', true],
    ['Squeeze', '/rnn/Squeeze', true],
    ['Transpose', '/rnn/Transpose', true],
    ['Concat', '/rnn/Concat', true],
    ['ConstantOfShape', '/rnn/ConstantOfShape', true],
    ['Unsqueeze', '/rnn/Unsqueeze', true],
    ['Shape', '/rnn/Shape', true],
    ['LSTM', '/rnn/LSTM', true],
    ['Tanh', '/Tanh', true],
    ['Constant', '/emb/Constant', false],
  ])('an unknown attribute on %s (node %s) refuses, naming node and attribute (onnxruntime rejects: %s)', async (op, name, ortRejects) => {
    const bytes = mutate(LSTM1, (m) => node(m, name).attribute.push(intAttr('frobnicate', 1)));
    const native = await refusal(bytes);
    expect(native).toBeInstanceOf(UnsupportedModelError);
    const reason = native.message.replace('the native backend cannot run this model: ', '');
    expect(reason).toMatch(new RegExp(`^${op} at node ${name}: attribute frobnicate is not understood \\(opset 14 ${op} takes `));
    if (ortRejects) {
      const auto = await loadError(bytes);
      expect(auto).toBeInstanceOf(ModelError);
      expect(auto.message).toContain(`Unrecognized attribute: frobnicate for operator ${op}`);
    } else {
      await expectOrtFallback(bytes, reason);
    }
  });

  it('extra inputs refuse, as onnxruntime does', async () => {
    const gemm4 = mutate(LSTM1, (m) => node(m, '/lin/Gemm').input.push('lin.bias'));
    expect((await refusal(gemm4)).message).toBe('the native backend cannot run this model: Gemm at node /lin/Gemm: 4 inputs; opset 14 Gemm takes 2 to 3');
    expect((await loadError(gemm4)).message).toContain('has input size 4 not in range [min=2, max=3]');
    const tanh2 = mutate(LSTM1, (m) => node(m, '/Tanh').input.push('lin.bias'));
    expect((await refusal(tanh2)).message).toBe('the native backend cannot run this model: Tanh at node /Tanh: 2 inputs; opset 14 Tanh takes 1');
  });

  it('a direction that is not forward/reverse/bidirectional refuses; onnxruntime rejects it', async () => {
    const bytes = mutate(LSTM1, (m) => {
      node(m, '/rnn/LSTM').attribute.push(create(AttributeProtoSchema, { name: 'direction', type: AT.STRING, s: text('sideways') }));
    });
    expect((await refusal(bytes)).message).toBe(
      'the native backend cannot run this model: LSTM at node /rnn/LSTM: attribute direction = "sideways" is not supported ("forward", "reverse", "bidirectional")',
    );
    const auto = await loadError(bytes);
    expect(auto).toBeInstanceOf(ModelError);
    expect(auto.message).toContain("Invalid 'direction' argument of 'sideways'");
  });

  it('an attribute of the wrong type refuses (hidden_size as a float)', async () => {
    const bytes = mutate(LSTM1, (m) => {
      const a = node(m, '/rnn/LSTM').attribute.find((x) => x.name === 'hidden_size')!;
      Object.assign(a, { type: AT.FLOAT, f: 4 });
    });
    expect((await refusal(bytes)).message).toBe('the native backend cannot run this model: LSTM at node /rnn/LSTM: attribute hidden_size has type FLOAT, expected INT');
    expect(await loadError(bytes)).toBeInstanceOf(ModelError);
  });

  it('activations other than the defaults fall back to onnxruntime, which runs them', async () => {
    const bytes = mutate(LSTM1, (m) => {
      node(m, '/rnn/LSTM').attribute.push(create(AttributeProtoSchema, { name: 'activations', type: AT.STRINGS, strings: ['Sigmoid', 'Relu', 'Tanh'].map(text) }));
    });
    const reason = 'LSTM at node /rnn/LSTM: attribute activations = [Sigmoid, Relu, Tanh] is not supported (only the defaults, sigmoid, tanh, tanh per direction, are lowered)';
    expect((await refusal(bytes)).message).toBe(`the native backend cannot run this model: ${reason}`);
    await expectOrtFallback(bytes, reason);
  });

  it('linear_before_reset = 2 (not 0 or 1) refuses; onnxruntime reads it as 1 and runs it', async () => {
    const bytes = mutate(GRU2, (m) => {
      node(m, '/rnn/GRU').attribute.find((a) => a.name === 'linear_before_reset')!.i = 2n;
    });
    const reason = 'GRU at node /rnn/GRU: attribute linear_before_reset = 2 is not supported (0, 1)';
    expect((await refusal(bytes)).message).toBe(`the native backend cannot run this model: ${reason}`);
    await expectOrtFallback(bytes, reason);
  });

  it('Gemm with transA = 1 refuses; onnxruntime loads it but cannot run it, so the load fails naming both', async () => {
    const bytes = mutate(LSTM1, (m) => node(m, '/lin/Gemm').attribute.push(intAttr('transA', 1)));
    const reason = 'Gemm at node /lin/Gemm: attribute transA = 1 is not supported (0)';
    expect((await refusal(bytes)).message).toBe(`the native backend cannot run this model: ${reason}`);
    const auto = await loadError(bytes);
    expect(auto).toBeInstanceOf(ModelError);
    expect(auto.message).toContain(`the native encoder cannot run this model (${reason}), and neither can onnxruntime: onnxruntime failed to run the model`);
  });
});

describe('a node that breaks its schema is a ModelError, without asking onnxruntime', () => {
  it('LSTM weights W and B swapped (onnxruntime 1.23 aborts the process running it)', async () => {
    const bytes = mutate(LSTM1, (m) => {
      const lstm = node(m, '/rnn/LSTM');
      [lstm.input[1], lstm.input[3]] = [lstm.input[3], lstm.input[1]];
    });
    for (const backend of ['native', 'auto'] as const) {
      const e = await Encoder.load(bytes, { backend }).then(() => null, (x: unknown) => x as Error);
      expect(e).toBeInstanceOf(ModelError);
      expect(e?.message).toBe('model bytes: LSTM at node /rnn/LSTM: W has shape [1, 128], expected [1, 64, input_size]');
    }
  });

  it('a tensor whose data does not fill its shape is a ModelError for every backend (onnxruntime may crash on it)', async () => {
    // An unknown attribute on an earlier node, so the native path refuses before it reaches the
    // truncated Constant: the tensors are checked when the model is read, not when lowered.
    const bytes = mutate(LSTM1, (m) => {
      node(m, '/emb/Gather').attribute.push(intAttr('frobnicate', 1));
      const t = node(m, '/rnn/Constant_2').attribute[0].t!;
      t.rawData = t.rawData.subarray(0, 4);
    });
    for (const backend of ['native', 'auto', 'onnxruntime'] as const) {
      const e = await Encoder.load(bytes, { backend }).then(() => null, (x: unknown) => x as Error);
      expect(e).toBeInstanceOf(ModelError);
      expect(e?.message).toBe('model bytes: tensor  holds 4 bytes of data for shape [1] (8 expected)');
    }
  });

  it('plumbing that builds a huge zero state is a ModelError (onnxruntime would try to allocate it on every run)', async () => {
    const bytes = mutate(EXAMPLE, (m) => {
      const t = node(m, '/rnn/Constant_2').attribute[0].t!;
      t.rawData = new Uint8Array(BigInt64Array.of(2147483647n).buffer);
    });
    for (const backend of ['native', 'auto'] as const) {
      const e = await Encoder.load(bytes, { backend }).then(() => null, (x: unknown) => x as Error);
      expect(e).toBeInstanceOf(ModelError);
      expect(e?.message).toBe(
        'model bytes: ConstantOfShape at node /rnn/ConstantOfShape: it computes a constant of shape [1, 13, 2147483647], ' +
          "more than 16777216 elements: no encoder's plumbing is that large",
      );
    }
  });

  it('an opset the allow-lists were not written for refuses the native path', async () => {
    const bytes = mutate(GRU2, (m) => {
      m.opsetImport[0].version = 99n;
    });
    expect((await refusal(bytes)).message).toBe('the native backend cannot run this model: opset 99 of the default domain is not one the importer knows (7 to 23)');
  });
});

describe('constants are checked against the plan', () => {
  it('an initial state of ones instead of zeros refuses; auto answers as onnxruntime does, not as the zero-state plan', async () => {
    const bytes = mutate(EXAMPLE, (m) => {
      const v = node(m, '/rnn/ConstantOfShape').attribute[0].t!;
      v.rawData = new Uint8Array(Float32Array.of(1).buffer);
    });
    const reason = 'LSTM at node /rnn/LSTM: initial_h (/rnn/ConstantOfShape_output_0) is not zero (element 0 is 1); only zero initial states are lowered';
    expect((await refusal(bytes)).message).toBe(`the native backend cannot run this model: ${reason}`);
    const got = await expectOrtFallback(bytes, reason);
    const original = await Encoder.load(EXAMPLE);
    expect(original.backend).toBe('native');
    const zeroState = await original.encode(histories);
    let diff = 0;
    for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i] - zeroState[i]));
    expect(diff).toBeGreaterThan(1e-3);
    await original.close();
  });

  it('a zero initial state of a fixed batch size refuses (it agrees with one probe batch only)', async () => {
    // initial_h/initial_c replaced by a [1, 13, 64] zero initializer: right only for batches of 13.
    const bytes = mutate(EXAMPLE, (m) => {
      const g = m.graph!;
      g.initializer.push(create(TensorProtoSchema, { name: 'h0', dims: [1n, 13n, 64n], dataType: DT.FLOAT, rawData: new Uint8Array(13 * 64 * 4) }));
      const lstm = node(m, '/rnn/LSTM');
      lstm.input[5] = 'h0';
      lstm.input[6] = 'h0';
    });
    const native = await refusal(bytes);
    expect(native.message).toBe('the native backend cannot run this model: LSTM at node /rnn/LSTM: initial_h (h0) has shape [1, 13, 64], expected [1, 7, 64]');
    const auto = await loadError(bytes);
    expect(auto).toBeInstanceOf(ModelError);
    expect(auto.message).toContain('neither can onnxruntime');
  });

  it('a hard-coded time index that is the last step of one length only refuses', async () => {
    // y[:, 16] instead of y[:, -1]: the last step when a history has 17 events, nothing else.
    const bytes = mutate(EXAMPLE, (m) => {
      const t = node(m, '/emb/Constant').attribute[0].t!;
      t.rawData = new Uint8Array(BigInt64Array.of(16n).buffer);
    });
    expect((await refusal(bytes)).message).toBe('the native backend cannot run this model: Gather at node /Gather: index 16 on the time axis is not the last time step');
    expect((await loadError(bytes)).message).toContain('neither can onnxruntime');
  });
});

describe('bytes that are not valid ONNX protobuf are a FormatError', () => {
  const bytes = readFileSync(LSTM1);

  it('garbage and truncations', async () => {
    for (const bad of [new Uint8Array([1, 2, 3, 4, 5]), bytes.subarray(0, 10), bytes.subarray(0, 200), bytes.subarray(0, bytes.length - 7), bytes.subarray(0, bytes.length - 1)]) {
      const e = await loadError(bad);
      expect(e).toBeInstanceOf(FormatError);
      expect((e as FormatError).code).toBe('ERR_RECSCORE_FORMAT');
      expect(e.message).toMatch(/^model bytes: not a valid ONNX protobuf: /);
    }
    const e = await Encoder.load(`${fixtures}lstm1_bf_ylast_tanh.json`).then(() => null, (x: unknown) => x as FormatError);
    if (!e) throw new Error('accepted');
    expect(e).toBeInstanceOf(FormatError);
    expect(e.path).toBe(`${fixtures}lstm1_bf_ylast_tanh.json`);
  });

  it('a field with the wrong wire type, and a message whose field runs past its end', async () => {
    // Field 7 (graph) re-encoded as a varint.
    const wrongType = Uint8Array.from([0x38, 0x01, ...bytes]);
    expect((await loadError(wrongType)).message).toBe('model bytes: not a valid ONNX protobuf: graph: wire type 0, expected 2 (at byte 1)');
    // ir_version (1, varint) then producer_name (2) declared 5 bytes long with 3 present, then a tag.
    const overrun = Uint8Array.from([0x08, 0x07, 0x12, 0x05, 0x61, 0x62, 0x63]);
    expect(await loadError(overrun)).toBeInstanceOf(FormatError);
  });

  it('invalid UTF-8 in a node name or an attribute string is named', async () => {
    const marked = mutate(LSTM1, (m) => {
      m.graph!.node[1].name = 'NAME_MARKER';
      node(m, '/rnn/LSTM').attribute.push(create(AttributeProtoSchema, { name: 'direction', type: AT.STRING, s: text('forwXrd') }));
    });
    const patch = (marker: string, at: number, bytesAt: number[]): Uint8Array => {
      const b = Buffer.from(marked);
      const i = b.indexOf(marker);
      b.set(bytesAt, i + at);
      return new Uint8Array(b);
    };
    const badName = patch('NAME_MARKER', 0, [0xff, 0xfe]);
    const e = await loadError(badName);
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(/^model bytes: not a valid ONNX protobuf: graph\.node\[1\]\.name: invalid UTF-8 \(at byte \d+\)$/);
    // onnxruntime itself accepts this file (protobuf's C++ parser does not check proto2 strings).
    const overlong = patch('forwXrd', 4, [0xc0]); // an overlong encoding, never valid UTF-8
    expect((await loadError(overlong)).message).toMatch(/graph\.node\[\d+\]\.attribute\[\d+\]\.s: invalid UTF-8/);
    // Valid UTF-8 that is not ASCII is a name like any other.
    const fine = mutate(LSTM1, (m) => {
      m.graph!.node[1].name = 'ünïcødé ✓';
    });
    expect((await Encoder.load(fine)).backend).toBe('native');
  });
});

describe('files that are not regular files', () => {
  it('a FIFO as the model or as its external data is refused at once instead of blocking the load', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'recscore-fifo-'));
    try {
      execFileSync('mkfifo', [join(dir, 'model.onnx'), join(dir, 'lstm2_external.weights')]);
      const e = (await Encoder.load(join(dir, 'model.onnx')).then(() => null, (y: unknown) => y)) as FileError;
      expect(e).toBeInstanceOf(FileError);
      expect(e.message).toMatch(/not a regular file/);
      copyFileSync(`${fixtures}lstm2_external.onnx`, join(dir, 'lstm2_external.onnx'));
      const weights = join(dir, 'lstm2_external.weights');
      const x = (await Encoder.load(join(dir, 'lstm2_external.onnx')).then(() => null, (y: unknown) => y)) as FileError;
      expect(x).toBeInstanceOf(FileError);
      expect(x.path).toBe(weights);
      expect(x.message).toMatch(new RegExp(`^${weights}: the external data of tensor \\S+ \\(${dir}/lstm2_external.onnx\\) is not a regular file$`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('every committed fixture still lowers natively', () => {
  const natives = [
    'bench_lstm2x128',
    'bilstm2_bf_ylast',
    'gru2_bf_hn_tanh',
    'lstm1_bf_ylast_tanh',
    'lstm2_bf_ylast_sigmoid',
    'lstm2_packed_hn',
    'lstm2_seqfirst_hn_relu',
    'onnx_gru_lbr0',
    'onnx_gru_reverse_clip',
    'onnx_lstm_input_forget_layout1',
    'onnx_lstm_peephole_clip_reverse',
  ];
  it.each(natives)('%s', async (name) => {
    const enc = await Encoder.load(`${fixtures}${name}.onnx`, { backend: 'native' });
    expect(enc.fallbackReason).toBeNull();
    await enc.close();
  });
  it('the example model', async () => {
    expect((await Encoder.load(EXAMPLE, { backend: 'native' })).backend).toBe('native');
  });
});
