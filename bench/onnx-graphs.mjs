// ONNX graphs built at runtime with onnx-proto (protobufjs classes), for onnxruntime-node.
//
//   matmulModel(M, K, N)          A[M,K] x B[K,N] -> Y[M,N]              (the GEMM ceiling)
//   scoringModel({ B, N, d, k })  Gemm(users[B,d], items[N,d]^T, bias[N]) -> TopK(k) -> values, indices
//
// Large tensors are graph inputs unless given: pass `weights` (MatMul's B) or `items`/`bias`
// (scoring) to embed them as initializers instead, which lets onnxruntime pre-pack them once
// at session creation (MLAS packs constant GEMM operands), the way a deployed model holds them.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto');

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const OPSET = 17;

function valueInfo(name, elemType, dims) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((v) =>
            typeof v === 'string'
              ? onnx.TensorShapeProto.Dimension.create({ dimParam: v })
              : onnx.TensorShapeProto.Dimension.create({ dimValue: v }),
          ),
        }),
      }),
    }),
  });
}

function intAttr(name, i) {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
}

function encodeModel(graph) {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'recscore-bench',
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: OPSET })],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

function floatInitializer(name, dims, values) {
  return onnx.TensorProto.create({
    name,
    dims,
    dataType: FLOAT,
    // raw_data is little-endian, as typed arrays are on every platform Node runs on here.
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  });
}

/** A single MatMul A[M,K] x B[K,N] -> Y[M,N]; B is an initializer when `weights` is given. */
export function matmulModel(M, K, N, weights) {
  const graph = onnx.GraphProto.create({
    name: 'matmul',
    node: [onnx.NodeProto.create({ opType: 'MatMul', input: ['A', 'B'], output: ['Y'], name: 'mm' })],
    initializer: weights ? [floatInitializer('B', [K, N], weights)] : [],
    input: weights ? [valueInfo('A', FLOAT, [M, K])] : [valueInfo('A', FLOAT, [M, K]), valueInfo('B', FLOAT, [K, N])],
    output: [valueInfo('Y', FLOAT, [M, N])],
  });
  return encodeModel(graph);
}

/**
 * Gemm(users[B,d], items[N,d], bias[N], transB=1) -> scores[B,N] -> TopK(K=k, axis=-1,
 * largest=1, sorted=1) -> values[B,k] (float), indices[B,k] (int64). With `items` and `bias`
 * (Float32Arrays) they are initializers and `users` is the only input.
 */
export function scoringModel({ B, N, d, k, items, bias }) {
  if ((items == null) !== (bias == null)) throw new Error('scoringModel: give both items and bias, or neither');
  const kTensor = onnx.TensorProto.create({
    name: 'K',
    dims: [1],
    dataType: INT64,
    rawData: new Uint8Array(new BigInt64Array([BigInt(k)]).buffer),
  });
  const graph = onnx.GraphProto.create({
    name: 'scoring',
    node: [
      onnx.NodeProto.create({
        opType: 'Gemm',
        name: 'gemm',
        input: ['users', 'items', 'bias'],
        output: ['scores'],
        attribute: [intAttr('transB', 1)],
      }),
      onnx.NodeProto.create({
        opType: 'TopK',
        name: 'topk',
        input: ['scores', 'K'],
        output: ['values', 'indices'],
        attribute: [intAttr('axis', -1), intAttr('largest', 1), intAttr('sorted', 1)],
      }),
    ],
    initializer: items
      ? [kTensor, floatInitializer('items', [N, d], items), floatInitializer('bias', [N], bias)]
      : [kTensor],
    input: items
      ? [valueInfo('users', FLOAT, [B, d])]
      : [valueInfo('users', FLOAT, [B, d]), valueInfo('items', FLOAT, [N, d]), valueInfo('bias', FLOAT, [N])],
    output: [valueInfo('values', FLOAT, [B, k]), valueInfo('indices', INT64, [B, k])],
  });
  return encodeModel(graph);
}
