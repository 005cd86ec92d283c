/** The engine's session store: the one given in options.sessions.store, or an in-process one. */
import { MemorySessionStore } from '../sessions/memory_store.js';
import type { SessionStore } from '../sessions/store.js';
import type { Generation } from './generation.js';
import type { EngineSettings } from './options.js';
import type { EngineOptions } from './types.js';

/**
 * The store sessions live in, and whether the engine owns it (closes it on close). An in-process
 * store restores the snapshot file when one is configured and was written for the same model.
 */
export async function makeSessionStore(opts: EngineOptions, settings: EngineSettings, gen: Generation): Promise<{ store: SessionStore; owned: boolean }> {
  const s = settings.sessions;
  if (s?.store) return { store: s.store, owned: false };
  const store = new MemorySessionStore(s ?? {});
  if (s?.snapshot) {
    const why = await store.restore(s.snapshot, gen.modelHash, gen.encoder.stateSize);
    if (why) opts.logger?.info?.({ snapshot: s.snapshot }, why);
    else opts.logger?.info?.({ snapshot: s.snapshot, sessions: await store.size() }, 'sessions restored');
  }
  return { store, owned: true };
}
