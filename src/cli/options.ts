/** Option parsers and the model + catalogue loading shared by the commands. */
import { InvalidArgumentError as CommanderArgError, Option } from 'commander';

import { Catalogue } from '../catalogue/catalogue.js';
import { Encoder } from '../encoder/encoder.js';
import { FileError, FormatError, ModelError } from '../errors.js';
import { type Level, allLevels, resolveLevel } from '../native/addon.js';
import { regularInput } from './paths.js';
import { UserError } from './user_error.js';

export function positive(name: string, max: number = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) throw new CommanderArgError(`${name} must be a positive integer, got ${v}`);
    if (n > max) throw new CommanderArgError(`${name} must be at most ${max}, got ${v}`);
    return n;
  };
}

export function nonNegative(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new CommanderArgError(`${name} must be a non-negative integer, got ${v}`);
    return n;
  };
}

/** --isa: a CPU level this machine runs (every level gives the same results; for benchmarks and pinning). */
export function isaOption(): Option {
  let known = '';
  try {
    known = `: ${allLevels().join(', ')}`;
  } catch {
    // the addon does not load: --help still works, and --isa reports why when used
  }
  return new Option('--isa <level>', `CPU level of the kernels${known} (default: the best this CPU runs)`).argParser((v: string) => {
    try {
      return resolveLevel('--isa', v);
    } catch (e) {
      throw new CommanderArgError((e as Error).message);
    }
  });
}

/** Opens the catalogue: a file that is not one names the flag (and, for a .npy matrix, says how to build one). */
async function openCatalogue(path: string): Promise<Catalogue> {
  regularInput('--catalogue', path);
  try {
    // A version-1 file's one-line repack notice goes to stderr (stdout may be the data).
    return await Catalogue.open(path, { logger: { info: (_o, msg) => void process.stderr.write(`recscore: ${msg}\n`) } });
  } catch (e) {
    if (e instanceof FormatError || e instanceof FileError) {
      const hint = /\.npy$/i.test(path) ? ` (a .npy matrix: build a catalogue from it with recscore catalogue build --vectors ${path} --out FILE.rsc)` : '';
      const msg = e.message.startsWith(path) ? e.message : `${path}: ${e.message}`;
      throw new UserError(`--catalogue ${msg}${hint}`);
    }
    throw e;
  }
}

export async function loadPair(model: string, catalogue: string, threads?: number, isa?: Level): Promise<{ encoder: Encoder; catalogue: Catalogue }> {
  regularInput('--model', model);
  const cat = await openCatalogue(catalogue);
  let encoder: Encoder;
  try {
    encoder = await Encoder.load(model, { threads, isa });
  } catch (e) {
    await cat.close();
    if (e instanceof ModelError || e instanceof FormatError || e instanceof FileError) {
      throw new UserError(`--model ${e.message.startsWith(model) ? e.message : `${model}: ${e.message}`}`);
    }
    throw e;
  }
  if (encoder.dim !== cat.dim) {
    await cat.close();
    await encoder.close();
    throw new UserError(`the model's vectors have ${encoder.dim} dimensions but the catalogue's have ${cat.dim}: they do not belong together`);
  }
  return { encoder, catalogue: cat };
}
