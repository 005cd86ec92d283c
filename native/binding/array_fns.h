// The addon's functions over plain typed arrays: statistics, compression, checks and the panel
// layouts (gemm/contract.h, gemm/compact.h). All [sync, JS thread]; bad arguments throw a
// TypeError with code ERR_INVALID_ARG.
#pragma once
#include <napi.h>

namespace recscore_binding {

// matrixStats({ values, rows, d, normLimit?, panels? }) -> { firstNonFinite, maxRowNorm, maxAbs,
// firstRowAbove, rowNormAbove }. values: rows x d row-major, or with panels: true the rows packed
// in panels (panel_count(rows) * 16 * d floats at least; padding rows ignored). firstNonFinite is
// the row-major index row * d + column either way (-1: none).
Napi::Value MatrixStats(const Napi::CallbackInfo& info);

// checkCompressed({ panels, rows, d, bias?, precision, data, scale?, err, errBias? }) -> null when
// every row passes, else { row, rule, column, recorded, required } (compressed.h). panels: the
// float32 rows packed in panels; data: the compact copy packed (gemm/compact.h).
Napi::Value CheckCompressed(const Napi::CallbackInfo& info);

// compress({ values, rows, d, bias?, precision: 'int8' | 'bf16' }) -> { data, scale?, err,
// errBias? }. values: row-major; data comes packed in panels (gemm/compact.h).
Napi::Value Compress(const Napi::CallbackInfo& info);

// packCompact({ precision: 'int8' | 'bf16', data: Int8Array | Uint16Array (rows x d row-major),
// rows, d }) -> a new Int8Array | Uint16Array packed in panels (gemm/compact.h).
Napi::Value PackCompact(const Napi::CallbackInfo& info);

// packPanels({ values, rows, d, out }): writes the rows packed in panels (gemm/contract.h) into
// out, which must hold panel_count(rows) * panel_floats(d) floats.
Napi::Value PackPanels(const Napi::CallbackInfo& info);

}  // namespace recscore_binding
