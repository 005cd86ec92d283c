/** The per-user state that `Encoder.step` advances. */
import type { Encoder } from './encoder.js';

/**
 * The per-user state `step` advances: the recurrent states of every layer (native backend), or
 * the history so far (onnxruntime backend, where a step re-encodes it). Belongs to the encoder
 * that made it.
 */
export class EncoderState {
  /** @internal */ readonly owner: Encoder;
  /** @internal */ readonly data: Float32Array | null;
  /** @internal */ readonly histories: number[][] | null;
  readonly batch: number;
  /** @internal The last step queued on this state: steps on one state run one after another. */
  tail: Promise<unknown> = Promise.resolve();
  /** @internal Asynchronous steps queued or running on this state. */
  inflight = 0;

  /** @internal */
  constructor(owner: Encoder, batch: number, data: Float32Array | null, histories: number[][] | null) {
    this.owner = owner;
    this.batch = batch;
    this.data = data;
    this.histories = histories;
  }

  /**
   * A copy of the recurrent state (batch × stateSize floats: every layer's h, then c for LSTM),
   * to persist live sessions; `encoder.restoreState` takes it back. Null on the onnxruntime
   * backend, whose state is the history itself.
   */
  toFloat32Array(): Float32Array | null {
    return this.data ? this.data.slice() : null;
  }
}
