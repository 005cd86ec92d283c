/**
 * Formats of `recscore score`: JSONL (plain or gzip), Parquet, Arrow IPC (file or stream).
 * An input's format is recognised by its first bytes; an output's by its extension or --format.
 *
 * The columnar libraries are loaded only when a job uses them: hyparquet and hyparquet-writer
 * (small, pure JavaScript, dependencies of recscore) for Parquet; apache-arrow (an optional peer:
 * about 12 MB that most users never need) for Arrow IPC, with a one-line install hint when absent.
 */
import { PeerMissingError } from '../errors.js';
import { UserError } from '../cli/user_error.js';

export type InputFormat = 'jsonl' | 'parquet' | 'arrow';
export type OutputFormat = 'jsonl' | 'parquet' | 'arrow' | 'arrows';
export const OUTPUT_FORMATS: ReadonlyArray<OutputFormat> = ['jsonl', 'parquet', 'arrow', 'arrows'];

/** What the first bytes say (gzip is JSONL; its own layer is undone before). */
export function sniff(head: Uint8Array): InputFormat {
  const text = Buffer.from(head.subarray(0, 6)).toString('latin1');
  if (text.startsWith('PAR1')) return 'parquet';
  if (text === 'ARROW1') return 'arrow';
  // An Arrow IPC stream starts with the continuation marker of its schema message.
  if (head.length >= 4 && head[0] === 0xff && head[1] === 0xff && head[2] === 0xff && head[3] === 0xff) return 'arrow';
  return 'jsonl';
}

/** The output's format: --format, else the extension (.parquet, .arrow/.feather, .arrows), else JSONL. */
export function outputFormat(out: string, format: string | undefined): OutputFormat {
  if (format !== undefined) {
    if (!(OUTPUT_FORMATS as string[]).includes(format)) throw new UserError(`--format must be one of ${OUTPUT_FORMATS.join(', ')}, got ${format}`);
    return format as OutputFormat;
  }
  if (/\.parquet$/i.test(out)) return 'parquet';
  if (/\.(arrow|feather|ipc)$/i.test(out)) return 'arrow';
  if (/\.arrows$/i.test(out)) return 'arrows';
  return 'jsonl';
}

export type Arrow = typeof import('apache-arrow');
export type Hyparquet = typeof import('hyparquet');
export type HyparquetWriter = typeof import('hyparquet-writer');

async function load<T>(name: string, what: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' || (e as { code?: string }).code === 'MODULE_NOT_FOUND') {
      throw new PeerMissingError(name, `${what} needs the package ${name}, which is not installed: npm install ${name}`, { cause: e });
    }
    throw e;
  }
}

export const loadArrow = (): Promise<Arrow> => load<Arrow>('apache-arrow', 'Arrow IPC input or output');
export const loadHyparquet = (): Promise<Hyparquet> => load<Hyparquet>('hyparquet', 'Parquet input');
export const loadHyparquetWriter = (): Promise<HyparquetWriter> => load<HyparquetWriter>('hyparquet-writer', 'Parquet output');

/** Loads the libraries a job's output format and (known) input format need, so a missing one fails first. */
export async function preload(out: OutputFormat, input: InputFormat | null): Promise<void> {
  if (out === 'parquet') await loadHyparquetWriter();
  if (out === 'arrow' || out === 'arrows' || input === 'arrow') await loadArrow();
  if (input === 'parquet') await loadHyparquet();
}
