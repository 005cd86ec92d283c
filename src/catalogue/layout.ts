/**
 * Where a catalogue's values lie in memory and in its file (docs/catalogue-format.md, "Layout").
 *
 * Version 2 (written since 0.2) stores the float32 matrix as the kernels read it: packed panels of
 * PANEL rows (native/core/gemm/contract.h: element p of row r of panel q at q·PANEL·d + p·PANEL +
 * r, rows past N zero), and a compressed catalogue's compact copy in panels too
 * (native/core/gemm/compact.h: int8 as groups of 4 dimensions × 16 rows, the `vpdpbusd` operand;
 * bf16 as pairs × 16 rows, the `vdpbf16ps` operand). Version 1 stored both row-major; it is still
 * read, and repacked in memory once per process.
 */
import type { CompressedParts } from '../native/addon.js';

/** Rows per panel. */
export const PANEL = 16;

export type FileVersion = 1 | 2;

export const panelCount = (n: number): number => Math.ceil(n / PANEL);

/** Floats of the packed matrix of n rows of d values (the last panel zero-padded). */
export const panelFloats = (n: number, d: number): number => panelCount(n) * PANEL * d;

/** Bytes of the matrix section. */
export function matrixBytes(version: FileVersion, n: number, d: number): number {
  return (version === 1 ? n * d : panelFloats(n, d)) * 4;
}

/** Elements (int8 or bf16) of the compact copy. */
export function compactElements(version: FileVersion, precision: 'int8' | 'bf16', n: number, d: number): number {
  if (version === 1) return n * d;
  return precision === 'int8' ? panelCount(n) * PANEL * 4 * Math.ceil(d / 4) : panelCount(n) * PANEL * 2 * Math.ceil(d / 2);
}

/** Bytes of the compact copy. */
export function compactBytes(version: FileVersion, precision: 'int8' | 'bf16', n: number, d: number): number {
  return compactElements(version, precision, n, d) * (precision === 'int8' ? 1 : 2);
}

/** Elements of the compact copy per panel (version 2): a scan's unit of rows. */
export function compactPanelElements(precision: 'int8' | 'bf16', d: number): number {
  return precision === 'int8' ? PANEL * 4 * Math.ceil(d / 4) : PANEL * 2 * Math.ceil(d / 2);
}

/** A copy of row `row` of a packed matrix. */
export function panelRow(panels: Float32Array, d: number, row: number): Float32Array {
  const out = new Float32Array(d);
  const base = Math.floor(row / PANEL) * PANEL * d + (row % PANEL);
  for (let p = 0; p < d; p++) out[p] = panels[base + p * PANEL];
  return out;
}

/** Where value (row, column) of a packed matrix lies. */
export function panelIndex(d: number, row: number, column: number): number {
  return Math.floor(row / PANEL) * PANEL * d + column * PANEL + (row % PANEL);
}

/** Where value (row, column) of a version-2 compact copy lies. */
export function compactIndex(precision: 'int8' | 'bf16', d: number, row: number, column: number): number {
  const g = precision === 'int8' ? 4 : 2;
  const q = Math.floor(row / PANEL);
  return q * compactPanelElements(precision, d) + Math.floor(column / g) * PANEL * g + (row % PANEL) * g + (column % g);
}

/** The compact parts' data narrowed to whole panels [p0, p1) (version 2). */
export function compactPanels(c: CompressedParts, d: number, p0: number, p1: number): Int8Array | Uint16Array {
  const e = compactPanelElements(c.precision, d);
  return c.data.subarray(p0 * e, p1 * e);
}
