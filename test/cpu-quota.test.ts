import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { cgroupCpuLimit, defaultThreads } from '../src/native/cpu_quota.js';

const root = mkdtempSync(join(tmpdir(), 'recscore-cgroup-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function file(path: string, text: string): void {
  mkdirSync(join(root, path, '..'), { recursive: true });
  writeFileSync(join(root, path), text);
}

describe('the default thread count follows the cgroup CPU quota', () => {
  it('cgroup v2: the smallest quota of the cgroup and its ancestors', () => {
    file('v2/cpu.max', 'max 100000\n');
    file('v2/kubepods/cpu.max', '300000 100000\n');
    file('v2/kubepods/pod1/cpu.max', '150000 100000\n');
    expect(cgroupCpuLimit(join(root, 'v2'), '0::/kubepods/pod1\n')).toBe(1.5);
    expect(cgroupCpuLimit(join(root, 'v2'), '0::/\n')).toBeNull();
  });

  it('cgroup v1: cfs_quota_us / cfs_period_us; -1 is no quota', () => {
    file('v1/cpu/docker/abc/cpu.cfs_quota_us', '250000\n');
    file('v1/cpu/docker/abc/cpu.cfs_period_us', '100000\n');
    expect(cgroupCpuLimit(join(root, 'v1'), '4:cpu,cpuacct:/docker/abc\n')).toBe(2.5);
    file('v1/cpu/free/cpu.cfs_quota_us', '-1\n');
    file('v1/cpu/free/cpu.cfs_period_us', '100000\n');
    expect(cgroupCpuLimit(join(root, 'v1'), '4:cpu,cpuacct:/free\n')).toBeNull();
  });

  it('defaultThreads() is within 1..availableParallelism()', () => {
    expect(defaultThreads()).toBeGreaterThanOrEqual(1);
    expect(defaultThreads()).toBeLessThanOrEqual(availableParallelism());
  });
});
