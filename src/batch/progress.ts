/**
 * Progress of a score job on stderr: a bar on a terminal (users, users/s, ETA when the input's
 * size is known), nothing while it runs otherwise (the command prints one summary line at the end).
 */
import { SingleBar } from 'cli-progress';

export interface ProgressStream {
  isTTY?: boolean;
  write(s: string): boolean;
}

export interface Progress {
  /** `bytes`: input bytes read; `users`: users scored so far (this run and before). */
  update(bytes: number, users: number): void;
  stop(): void;
}

const NONE: Progress = { update: () => undefined, stop: () => undefined };

/** `total`: the input's bytes when known (a plain regular file), else 0 (no percentage, no ETA). */
export function progress(stream: ProgressStream, o: { quiet: boolean; total: number; from: number; users: number }): Progress {
  if (o.quiet || !stream.isTTY) return NONE;
  const t0 = performance.now();
  const users0 = o.users;
  const rate = (users: number): number => Math.round(((users - users0) * 1000) / Math.max(1, performance.now() - t0));
  const sized = o.total > 0;
  const bar = new SingleBar({
    format: sized
      ? 'scoring |{bar}| {percentage}% | {users} users | {rate} users/s | ETA {eta_formatted}'
      : 'scoring | {users} users | {rate} users/s',
    stream: stream as NodeJS.WriteStream,
    etaBuffer: 50,
    fps: 5,
    hideCursor: false,
  });
  bar.start(sized ? o.total : 1, sized ? o.from : 0, { users: o.users, rate: 0 });
  return {
    update(bytes, users) {
      bar.update(sized ? bytes : 0, { users, rate: rate(users) });
    },
    stop() {
      bar.stop();
    },
  };
}
