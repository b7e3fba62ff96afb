// The signcore model file: one self-describing, versioned container that never executes code.
//
//   offset 0   8 bytes   magic "SIGNCORE"
//          8   u32 LE    format version (kFormatVersion)
//         12   u64 LE    header length H in bytes
//         20   H bytes   UTF-8 JSON header (padded with spaces so the data starts 64-byte aligned)
//     20 + H   D bytes   tensor data: raw little-endian float32, at the offsets the header lists
//   20 + H + D 4 bytes   CRC-32 (zlib's polynomial) of every byte before it, u32 LE
//
// The header holds the model (inputs, layers with their get_config(), graph edges, output), the
// compile state (loss, metric names, optimizer class + config + iterations) and the tensor table
// (name, dtype, shape, offset, nbytes). docs/FORMAT.md describes every field.
//
// Reading validates everything before touching a model: magic, version, sizes against the file
// size, checksum, JSON, the tensor table, and the rebuilt model's weights against the table.
// Problems raise IOError (file missing or unreadable: Python OSError) or ValueError (not a
// signcore file, truncated, corrupt, or not matching the model), each naming the path.
// Writing goes to a temporary file in the same folder, is flushed to disk, then renamed over the
// destination, so an interrupted or failed save never leaves a partial file behind.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "signcore/errors.hpp"
#include "signcore/model.hpp"

namespace signcore {

// The file does not exist (Python: FileNotFoundError, a subclass of OSError).
struct FileNotFoundError : IOError {
  using IOError::IOError;
};

constexpr char kFormatMagic[9] = "SIGNCORE";
constexpr std::uint32_t kFormatVersion = 1;
// The version of signcore written into every header (informational).
extern const char* const kSigncoreVersion;

// Whole model: architecture, weights and (optionally) the optimizer state. The model must be
// built. Without include_optimizer the compile settings are kept but the optimizer starts fresh.
// `metadata` (a JSON object, may be null) is stored as is under "metadata" in the header.
void save_model(const Model& model, const std::string& path, bool include_optimizer = true,
                const json& metadata = nullptr);
std::shared_ptr<Model> load_model(const std::string& path);

// Weights only, in the same container; load_weights checks count and shapes against `model`.
void save_weights(const Model& model, const std::string& path);
void load_weights(Model& model, const std::string& path);

// The same bytes as a file, in memory (pickling). `what` names the source in error messages.
std::string model_to_bytes(const Model& model, bool include_optimizer = true, const json& metadata = nullptr);
std::shared_ptr<Model> model_from_bytes(const std::string& bytes, const std::string& what = "<bytes>");
std::string weights_to_bytes(const Model& model);
void weights_from_bytes(Model& model, const std::string& bytes, const std::string& what = "<bytes>");

// The validated JSON header of a file (no model is built), e.g. to read "metadata".
json read_header(const std::string& path);

// CRC-32 as zlib.crc32 computes it (initial value `crc` chains calls).
std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc = 0);

}  // namespace signcore
