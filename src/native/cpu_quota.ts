/**
 * The default thread count: the CPUs this process may use, which in a container is the cgroup's
 * CPU quota (cpu.max in cgroup v2, cfs_quota_us / cfs_period_us in v1), not the host's cores that
 * os.availableParallelism() sees. Read once per process.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/** CPUs allowed by a cgroup quota, or null when there is none (or it cannot be read). */
export function cgroupCpuLimit(root = '/sys/fs/cgroup', selfCgroup = read('/proc/self/cgroup') ?? ''): number | null {
  const limits: number[] = [];
  for (const line of selfCgroup.split('\n')) {
    const [, controllers, path] = line.split(':');
    if (path === undefined) continue;
    if (controllers === '') {
      // v2: the quota of this cgroup and of every ancestor applies.
      for (let p = path; ; p = p.slice(0, p.lastIndexOf('/'))) {
        const max = read(`${root}${p === '/' ? '' : p}/cpu.max`) ?? (p === path ? read(`${root}/cpu.max`) : null);
        const [quota, period] = (max ?? '').split(/\s+/);
        if (quota && quota !== 'max' && Number(period) > 0) limits.push(Number(quota) / Number(period));
        if (p === '' || p === '/') break;
      }
    } else if (controllers.split(',').includes('cpu')) {
      const dir = `${root}/cpu${path === '/' ? '' : path}`;
      const quota = Number(read(`${dir}/cpu.cfs_quota_us`) ?? read(`${root}/cpu/cpu.cfs_quota_us`));
      const period = Number(read(`${dir}/cpu.cfs_period_us`) ?? read(`${root}/cpu/cpu.cfs_period_us`));
      if (quota > 0 && period > 0) limits.push(quota / period);
    }
  }
  return limits.length > 0 ? Math.min(...limits) : null;
}

let cached: number | undefined;

/** min(os.availableParallelism(), ceil(cgroup CPU quota)), at least 1. */
export function defaultThreads(): number {
  if (cached === undefined) {
    const limit = cgroupCpuLimit();
    cached = Math.max(1, Math.min(availableParallelism(), limit === null ? Infinity : Math.ceil(limit)));
  }
  return cached;
}
