/**
 * Catalogue paths and options as a hostile caller gives them (issue 19): paths that are not
 * regular files, saves the OS refuses, and bad open options. Each is refused with a typed error
 * and an exact message.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { Catalogue, FileError, InvalidArgumentError } from '../src/index.js';
import { dir, fifo, rejection, root, saved } from './catalogue-validation-helpers.js';
import { randomMatrix } from './helpers.js';

describe('paths that are not regular files', () => {
  it('a FIFO is refused at once (FileError), not waited on', async () => {
    execFileSync('mkfifo', [fifo]);
    const timeout = new Promise<Error>((r) => setTimeout(() => r(new Error('still waiting after 1 s')), 1000));
    const e = await Promise.race([rejection(Catalogue.open(fifo)), timeout]);
    expect(e).toBeInstanceOf(FileError);
    expect(e.message).toBe(`${fifo}: is a FIFO, not a regular file`);
    expect((e as FileError).code).toBe('ERR_RECSCORE_FILE');
    const n = await Promise.race([rejection(Catalogue.fromNpy(fifo)), timeout]);
    expect(n.message).toBe(`${fifo}: is a FIFO, not a regular file`);
  });

  it('a missing path, a directory and a device are FileErrors with the OS error as cause', async () => {
    const missing = join(dir, 'nope.rsc');
    const e = await rejection(Catalogue.open(missing));
    expect(e).toBeInstanceOf(FileError);
    expect(e.message).toBe(`${missing}: no such file (ENOENT)`);
    expect((e as FileError).syscallCode).toBe('ENOENT');
    expect((e.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    expect((await rejection(Catalogue.open(sub))).message).toBe(`${sub}: is a directory, not a regular file`);
    expect((await rejection(Catalogue.open('/dev/null'))).message).toBe('/dev/null: is a character device, not a regular file');
    expect((await rejection(Catalogue.fromNpy(sub))).message).toBe(`${sub}: is a directory, not a regular file`);
  });

  it('an unreadable file is a FileError (EACCES)', async () => {
    const { path } = await saved('locked.rsc');
    chmodSync(path, 0);
    if (process.getuid?.() !== 0) {
      const e = await rejection(Catalogue.open(path));
      expect(e).toBeInstanceOf(FileError);
      expect(e.message).toBe(`${path}: permission denied (EACCES)`);
      return;
    }
    // root reads anything: open it from a child running as nobody.
    chmodSync(dir, 0o755);
    const r = spawnSync(
      process.execPath,
      ['-e', `require(${JSON.stringify(`${root}dist/index.cjs`)}).Catalogue.open(${JSON.stringify(path)}).catch((e) => console.log(JSON.stringify([e.name, e.message])))`],
      { uid: 65534, gid: 65534, encoding: 'utf8', cwd: '/' },
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual(['FileError', `${path}: permission denied (EACCES)`]);
  });
});

describe('save', () => {
  it("the OS's refusals are FileErrors naming the target, and leave no temporary file", async () => {
    const c = Catalogue.fromVectors(randomMatrix(3, 2, 1), { dim: 2 });
    const missing = join(dir, 'no-such-dir', 'x.rsc');
    const e = await rejection(c.save(missing));
    expect(e).toBeInstanceOf(FileError);
    expect(e.message).toBe(`${missing}: no such file (ENOENT)`);
    const target = join(dir, 'a-dir-target');
    mkdirSync(target);
    const f = await rejection(c.save(target));
    expect(f).toBeInstanceOf(FileError);
    expect(f.message).toBe(`${target}: is a directory (EISDIR)`);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await c.close();
  });
});

describe('open options', () => {
  it('null, non-object and non-boolean verify are InvalidArgumentErrors (rejections, never sync throws)', async () => {
    const { path } = await saved('opts.rsc');
    const cases: Array<[unknown, string]> = [
      [null, 'options must be an object, got null'],
      [5, 'options must be an object, got 5'],
      ['fast', 'options must be an object, got "fast"'],
      [{ verify: 'yes' }, 'options.verify must be a boolean, got "yes"'],
      [{ verify: 1 }, 'options.verify must be a boolean, got 1'],
    ];
    for (const [opts, message] of cases) {
      const p = Catalogue.open(path, opts as never);
      const e = await rejection(p);
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.message).toBe(message);
    }
    const e = await rejection(Catalogue.fromNpy(path, null as never));
    expect(e.message).toBe('options must be an object, got null');
    for (const p of [Catalogue.open('a\0b'), Catalogue.fromNpy('a\0b'), Catalogue.fromVectors(new Float32Array(2), { dim: 2 }).save('a\0b')]) {
      const n = await rejection(p);
      expect(n).toBeInstanceOf(InvalidArgumentError);
      expect(n.message).toBe('path must not contain NUL bytes, got "a\\u0000b"');
    }
    expect((await rejection(Catalogue.open(7 as never))).message).toBe('path must be a string, got 7');
  });
});
