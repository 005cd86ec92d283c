/**
 * Pins the published API surface: these assertions are checked by the type checker against the
 * declarations the package ships (dist/index.d.ts, reached through the package's own exports),
 * so an internal member or a removed export fails `vitest run`.
 */
import { describe, expectTypeOf, it } from 'vitest';

import type * as api from 'recscore';
import type { Catalogue, Encoder, EncoderState, EngineSessions, ScoringEngine } from 'recscore';

describe('the published types', () => {
  it('export exactly the public values', () => {
    expectTypeOf<keyof typeof api>().toEqualTypeOf<
      | 'AbortError'
      | 'Catalogue'
      | 'ClosedError'
      | 'Encoder'
      | 'EncoderState'
      | 'EngineSessions'
      | 'FileError'
      | 'FormatError'
      | 'InvalidArgumentError'
      | 'MemorySessionStore'
      | 'ModelError'
      | 'NativeError'
      | 'NativeLoadError'
      | 'OutOfRangeError'
      | 'PeerMissingError'
      | 'QueueFullError'
      | 'RedisSessionStore'
      | 'ScoringEngine'
      | 'SessionStoreError'
      | 'TIE_POLICY'
      | 'UnsupportedModelError'
      | 'VERSION'
      | 'WorkerCrashError'
      | 'evaluate'
      | 'metricsFromRanks'
      | 'nativeInfo'
      | 'setThreadSpin'
    >();
  });

  it('give classes only their public members', () => {
    expectTypeOf<keyof typeof api.Catalogue>().toEqualTypeOf<'prototype' | 'fromVectors' | 'fromNpy' | 'open'>();
    expectTypeOf<keyof Catalogue>().toEqualTypeOf<
      | 'size'
      | 'dim'
      | 'path'
      | 'formatVersion'
      | 'precision'
      | 'hasBias'
      | 'hasAttributes'
      | 'closed'
      | 'id'
      | 'row'
      | 'has'
      | 'vector'
      | 'bias'
      | 'attributes'
      | 'topK'
      | 'topKAsync'
      | 'save'
      | 'close'
    >();
    expectTypeOf<keyof typeof api.Encoder>().toEqualTypeOf<'prototype' | 'load'>();
    expectTypeOf<keyof Encoder>().toEqualTypeOf<
      | 'backend'
      | 'fallbackReason'
      | 'dim'
      | 'vocab'
      | 'level'
      | 'incremental'
      | 'encode'
      | 'encodeSync'
      | 'initialState'
      | 'stateSize'
      | 'restoreState'
      | 'step'
      | 'stepSync'
      | 'output'
      | 'close'
    >();
    expectTypeOf<keyof EncoderState>().toEqualTypeOf<'batch' | 'toFloat32Array'>();
    expectTypeOf<keyof typeof api.ScoringEngine>().toEqualTypeOf<'prototype' | 'create'>();
    expectTypeOf<keyof ScoringEngine>().toEqualTypeOf<
      'catalogue' | 'encoder' | 'sessions' | 'recommend' | 'recommendBatch' | 'update' | 'setAttributes' | 'stats' | 'close' | 'closed'
    >();
    expectTypeOf<keyof EngineSessions>().toEqualTypeOf<'store' | 'size' | 'push' | 'recommend' | 'delete'>();
  });

  it('keep the option and result shapes', () => {
    expectTypeOf<api.TopKResult>().toEqualTypeOf<{ k: number; rows: Int32Array; scores: Float32Array; candidates?: Int32Array }>();
    expectTypeOf<api.TopKOptions['k']>().toEqualTypeOf<number>();
    expectTypeOf<api.PeerMissingError['code']>().toEqualTypeOf<'ERR_PEER_MISSING'>();
    expectTypeOf<api.ErrorCode>().toExtend<string>();
    expectTypeOf<ReturnType<typeof api.nativeInfo>['levels']>().toEqualTypeOf<Array<'scalar' | 'avx2' | 'avx512'>>();
    expectTypeOf<ReturnType<typeof api.nativeInfo>['level']>().toEqualTypeOf<api.Level>();
    expectTypeOf<keyof api.CpuFeatures>().toEqualTypeOf<'avx2' | 'avx512' | 'vnni' | 'avx512vnni' | 'avxvnni' | 'bf16'>();
  });
});
