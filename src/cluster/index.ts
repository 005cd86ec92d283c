/**
 * `recscore/cluster`: distributed batch scoring on BullMQ and Redis (optional peers bullmq and
 * ioredis, loaded on first use). See docs/distributed.md.
 */
export { startWorker, writeSuccess, type ClusterWorker, type WorkerOptions } from './worker.js';
export { submitJob, jobStatus, waitForJob, type ChunkFailure, type ConnectOptions, type JobStatus, type SubmitOptions, type Submitted, type WaitOptions } from './submit.js';
export { ARITHMETIC_CONTRACT, MANIFEST, SUCCESS, partName, type ChunkPlan, type JobOptions, type Manifest } from './manifest.js';
export { ChunkDataError, InputChangedError } from './chunk.js';
export { ClusterConfigError, JobRefusedError, readSecret } from './safety.js';
export { DEFAULT_QUEUE, type ChunkPayload } from './protocol.js';
export { PeerMissingError } from '../errors.js';
export { ClusterConnectError } from './peers.js';
export { SPLIT, splitCatalogue, type SplitManifest } from './split.js';
