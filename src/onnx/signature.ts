/**
 * What an encoder model takes and gives, read from the graph's declared inputs and outputs:
 * ModelError when it cannot be a session encoder whatever backend runs it.
 */
import { ModelError } from '../errors.js';
import { type LoadedModel, dimOf, dtypeOf } from './model.js';
import type { ValueInfoProto } from './proto/onnx_pb.js';

/** What the model takes and gives, read from the graph's inputs and outputs. */
export interface Signature {
  ids: { name: string; dtype: 'int64' | 'int32'; seqFirst: boolean };
  lengths: { name: string; dtype: 'int64' | 'int32' } | null;
  output: string;
  outDim: number | null;
}

function tensorInfo(vi: ValueInfoProto): { dtype: string; dims: Array<number | string> | null } {
  const tt = vi.type?.value.case === 'tensorType' ? vi.type.value.value : undefined;
  const dims = tt?.shape ? tt.shape.dim.map(dimOf) : null;
  return { dtype: dtypeOf(tt?.elemType), dims };
}

/** Reads and checks the model's inputs and output (ModelError when it cannot be an encoder). */
export function signature(model: LoadedModel): Signature {
  const g = model.graph;
  const inits = new Set(g.initializer.map((t) => t.name));
  const inputs = g.input.filter((i) => !inits.has(i.name));
  const where = model.path ?? 'model bytes';
  if (inputs.length === 0 || inputs.length > 2) {
    throw new ModelError(`${where}: expected one input of item ids (and optionally lengths), found ${inputs.length} inputs`);
  }
  const int = (name: string, dtype: string): 'int64' | 'int32' => {
    if (dtype !== 'int64' && dtype !== 'int32') {
      throw new ModelError(`${where}: input ${name} has dtype ${dtype}; expected int64 or int32 item ids`);
    }
    return dtype;
  };
  const first = tensorInfo(inputs[0]);
  if (first.dims && first.dims.length !== 2) {
    throw new ModelError(`${where}: input ${inputs[0].name} has rank ${first.dims.length}; expected [batch, sequence]`);
  }
  // [batch, seq] unless the dimension names say [seq, batch].
  const named = (d: number | string | undefined, re: RegExp): boolean => typeof d === 'string' && re.test(d);
  const seqFirst = !!first.dims && named(first.dims[0], /seq|time|step|len/i) && named(first.dims[1], /batch/i);
  const ids = { name: inputs[0].name, dtype: int(inputs[0].name, first.dtype), seqFirst };
  let lengths: Signature['lengths'] = null;
  if (inputs.length === 2) {
    const info = tensorInfo(inputs[1]);
    if (info.dims && info.dims.length !== 1) {
      throw new ModelError(`${where}: second input ${inputs[1].name} must be the [batch] sequence lengths`);
    }
    lengths = { name: inputs[1].name, dtype: int(inputs[1].name, info.dtype) };
  }
  const outputs = g.output;
  if (outputs.length !== 1) throw new ModelError(`${where}: expected one output (the user vector), found ${outputs.length}`);
  const out = tensorInfo(outputs[0]);
  if (out.dtype !== 'float32') throw new ModelError(`${where}: output ${outputs[0].name} has dtype ${out.dtype}; expected float32`);
  if (out.dims && out.dims.length !== 2) {
    throw new ModelError(`${where}: output ${outputs[0].name} has rank ${out.dims.length}; expected [batch, dim]`);
  }
  const outDim = out.dims && typeof out.dims[1] === 'number' && out.dims[1] > 0 ? out.dims[1] : null;
  return { ids, lengths, output: outputs[0].name, outDim };
}
