// The signcore model file (see serialization.hpp and docs/FORMAT.md): encoding, validation,
// atomic writes, and rebuilding a model from its header.
#include "signcore/serialization.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>

#include "signcore/layers/layer.hpp"
#include "signcore/losses.hpp"
#include "signcore/optimizers.hpp"

namespace signcore {

#ifdef SIGNCORE_VERSION
const char* const kSigncoreVersion = SIGNCORE_VERSION;
#else
const char* const kSigncoreVersion = "0.1.0";
#endif

namespace {

constexpr std::size_t kPrefix = 20;     // magic + version + header length
constexpr std::size_t kTrailer = 4;     // CRC-32
constexpr std::size_t kAlign = 64;      // the data section starts at a multiple of this
constexpr const char* kFormatName = "signcore";
constexpr const char* kOptimizerState = "optimizer/state";

// --- bytes ------------------------------------------------------------------------------------------

bool host_is_little_endian() {
  const std::uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
std::uint64_t get_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Append n float32 values in little-endian order.
void put_floats(std::string& out, const float* x, std::size_t n) {
  const std::size_t at = out.size();
  out.resize(at + 4 * n);
  std::memcpy(&out[at], x, 4 * n);
  if (!host_is_little_endian())
    for (std::size_t i = 0; i < n; ++i) std::reverse(&out[at + 4 * i], &out[at + 4 * i + 4]);
}
void get_floats(const char* p, float* x, std::size_t n) {
  std::memcpy(x, p, 4 * n);
  if (!host_is_little_endian()) {
    auto* b = reinterpret_cast<unsigned char*>(x);
    for (std::size_t i = 0; i < n; ++i) std::reverse(b + 4 * i, b + 4 * i + 4);
  }
}

std::string quoted(const std::string& what) { return what.front() == '<' ? what : "'" + what + "'"; }

// --- encoding -----------------------------------------------------------------------------------------

// One tensor to write: `count` floats at `data`.
struct Blob {
  std::string name;
  Shape shape;
  const float* data;
  std::size_t count;
  std::string kind;  // "weight" or "optimizer_state"
};

// header (without the tensor table) + blobs -> the complete container.
std::string encode(json header, const std::vector<Blob>& blobs) {
  json table = json::array();
  std::size_t offset = 0;
  for (const Blob& b : blobs) {
    table.push_back({{"name", b.name}, {"kind", b.kind}, {"dtype", "float32"}, {"shape", b.shape},
                     {"offset", offset}, {"nbytes", 4 * b.count}});
    offset += 4 * b.count;
  }
  header["tensors"] = std::move(table);
  header["data_nbytes"] = offset;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    fail<ValueError>("The model cannot be written: its configuration is not valid UTF-8 JSON (", e.what(), ")");
  }
  while ((kPrefix + text.size()) % kAlign != 0) text.push_back(' ');

  std::string out;
  out.reserve(kPrefix + text.size() + offset + kTrailer);
  out.append(kFormatMagic, 8);
  put_u32(out, kFormatVersion);
  put_u64(out, text.size());
  out += text;
  for (const Blob& b : blobs) put_floats(out, b.data, b.count);
  put_u32(out, crc32(out.data(), out.size()));
  return out;
}

json base_header(const std::string& content) {
  return json{{"format", kFormatName},
              {"format_version", kFormatVersion},
              {"content", content},
              {"signcore_version", kSigncoreVersion},
              {"byte_order", "little"}};
}

void expect_built(const Model& model, const char* action) {
  if (!model.built())
    fail<ValueError>("Model '", model.name(), "' is not built yet, so it has no weights to ", action,
                     ". Build it first (give the first layer input_shape=..., call build(input_shape), or "
                     "fit it once).");
}

void add_weight_blobs(const Model& model, std::vector<Blob>& blobs) {
  const Parameters& p = model.params();
  for (std::size_t i = 0; i < p.weights().size(); ++i) {
    const Weight& w = p.weights()[i];
    blobs.push_back({w.name, w.shape, p.value(i), w.size, "weight"});
  }
}

json model_json(const Model& model) {
  json inputs = json::array();
  for (const ModelInput& in : model.inputs())
    inputs.push_back({{"name", in.name}, {"shape", in.shape}, {"dtype", in.dtype}});
  json layers = json::array();
  for (const Node& node : model.nodes()) {
    json inbound = json::array();
    auto ref_json = [](int ref) { return ref >= 0 ? json{{"layer", ref}} : json{{"input", -1 - ref}}; };
    for (int ref : node.inputs) inbound.push_back(ref_json(ref));
    json entry{{"class_name", node.layer->class_name()},
               {"config", node.layer->get_config()},
               {"inbound", std::move(inbound)}};
    if (node.mask != kNoMask) entry["mask"] = ref_json(node.mask);  // an explicit layer(x, mask=m)
    layers.push_back(std::move(entry));
  }
  return json{{"name", model.name()}, {"inputs", std::move(inputs)}, {"layers", std::move(layers)},
              {"output", model.output_node()}};
}

std::string encode_model(const Model& model, bool include_optimizer, const json& metadata) {
  expect_built(model, "save");
  json header = base_header("model");
  header["model"] = model_json(model);
  std::vector<Blob> blobs;
  add_weight_blobs(model, blobs);

  json compile = nullptr;
  if (model.compiled()) {
    const LossPtr loss = model.loss();
    const OptimizerPtr opt = model.optimizer();
    json o{{"class_name", opt->class_name()}, {"config", opt->get_config()}, {"iterations", 0},
           {"state", nullptr}};
    if (include_optimizer) {
      o["iterations"] = opt->iterations;
      if (opt->built()) {
        const std::vector<float>& st = opt->state();
        const std::size_t total = model.params().total();
        if (st.size() != opt->slots() * total)
          fail<StateError>("The optimizer state of model '", model.name(), "' has ", st.size(),
                           " values, expected ", opt->slots() * total, "; it cannot be saved");
        blobs.push_back({kOptimizerState, Shape{opt->slots(), total}, st.data(), st.size(), "optimizer_state"});
        o["state"] = kOptimizerState;
      }
    }
    compile = json{{"loss", {{"class_name", loss->class_name()}, {"config", loss->get_config()}}},
                   {"metrics", model.metric_names()},
                   {"optimizer", std::move(o)}};
  }
  header["compile"] = std::move(compile);
  header["metadata"] = metadata.is_null() ? json::object() : metadata;
  return encode(std::move(header), blobs);
}

std::string encode_weights(const Model& model) {
  expect_built(model, "save");
  std::vector<Blob> blobs;
  add_weight_blobs(model, blobs);
  return encode(base_header("weights"), blobs);
}

// --- decoding and validation ----------------------------------------------------------------------

// A validated tensor table entry.
struct Entry {
  std::string name, kind;
  Shape shape;
  std::size_t offset = 0, count = 0;
};

struct Container {
  json header;
  const char* data = nullptr;  // start of the data section (inside the caller's bytes)
  std::vector<Entry> tensors;
};

std::string first_bytes_hint(const std::string& bytes) {
  if (bytes.compare(0, 4, "\x89HDF") == 0 || bytes.compare(0, 8, "\x89HDF\r\n\x1a\n") == 0)
    return " It looks like an HDF5 file (Keras .h5): signcore cannot read Keras files; save the model with "
           "signcore instead.";
  if (bytes.compare(0, 4, "PK\x03\x04") == 0)
    return " It looks like a zip archive (a Keras 3 .keras file?): signcore cannot read Keras files; save "
           "the model with signcore instead.";
  if (bytes.compare(0, 2, "\x80\x04") == 0 || bytes.compare(0, 2, "\x80\x05") == 0)
    return " It looks like a Python pickle: unpickle it with pickle.load instead.";
  return "";
}

// A problem with the file's content; a ValueError that build_model passes through unwrapped.
struct FormatError : ValueError {
  using ValueError::ValueError;
};

[[noreturn]] void bad(const std::string& what, const std::string& problem) {
  fail<FormatError>("Cannot read signcore model file ", quoted(what), ": ", problem);
}

// Checks the whole container and returns its parts. Never reads outside `bytes`.
Container parse(const std::string& bytes, const std::string& what) {
  const std::size_t size = bytes.size();
  if (size < 8 || bytes.compare(0, 8, std::string(kFormatMagic, 8)) != 0) {
    if (size == 0) bad(what, "the file is empty (0 bytes); it was not written completely.");
    if (size < 8 && std::string(kFormatMagic, 8).compare(0, size, bytes) == 0)
      bad(what, "the file is truncated (" + std::to_string(size) + " bytes).");
    std::ostringstream hex;
    for (std::size_t i = 0; i < std::min<std::size_t>(size, 8); ++i) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(bytes[i]));
      hex << (i ? " " : "") << buf;
    }
    bad(what, "it is not a signcore model file (it does not start with the bytes 'SIGNCORE'; found: " +
                  hex.str() + ")." + first_bytes_hint(bytes));
  }
  if (size < kPrefix + kTrailer)
    bad(what, "the file is truncated (" + std::to_string(size) + " bytes; even an empty model file has more).");

  const std::uint32_t version = get_u32(bytes.data() + 8);
  const std::uint64_t header_len = get_u64(bytes.data() + 12);
  if (version > kFormatVersion && version < 1000)
    bad(what, "it was written with format version " + std::to_string(version) + " by a newer signcore; this "
              "signcore (" + kSigncoreVersion + ") reads format version " + std::to_string(kFormatVersion) +
              ". Upgrade signcore to read it.");

  const std::uint32_t stored = get_u32(bytes.data() + size - kTrailer);
  const std::uint32_t computed = crc32(bytes.data(), size - kTrailer);
  if (stored != computed) {
    // Tell truncation (the header promises more bytes) from corruption.
    if (header_len <= size - kPrefix) {
      try {
        const json h = json::parse(bytes.begin() + kPrefix, bytes.begin() + kPrefix + header_len);
        if (h.is_object() && h.contains("data_nbytes") && h["data_nbytes"].is_number_unsigned()) {
          const std::uint64_t expected = kPrefix + header_len + h["data_nbytes"].get<std::uint64_t>() + kTrailer;
          if (size < expected)
            bad(what, "the file is truncated (" + std::to_string(size) + " of " + std::to_string(expected) +
                          " bytes); it was probably not completely copied or downloaded.");
        }
      } catch (const json::exception&) {
      }
    } else {
      bad(what, "the file is truncated or corrupt (the header claims " + std::to_string(header_len) +
                    " bytes, the file has " + std::to_string(size) + ").");
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "stored 0x%08x, computed 0x%08x", stored, computed);
    bad(what, std::string("the file is corrupt: its checksum does not match (") + buf +
                  "). It was modified or damaged after it was saved.");
  }
  if (version != kFormatVersion)
    bad(what, "unsupported format version " + std::to_string(version) + " (this signcore reads version " +
                  std::to_string(kFormatVersion) + ").");
  if (header_len > size - kPrefix - kTrailer)
    bad(what, "the header length (" + std::to_string(header_len) + " bytes) exceeds the file size.");

  Container c;
  try {
    c.header = json::parse(bytes.begin() + kPrefix, bytes.begin() + kPrefix + header_len);
  } catch (const json::exception& e) {
    bad(what, std::string("the header is not valid JSON (") + e.what() + ").");
  }
  const json& h = c.header;
  auto field = [&](const char* key) -> const json& {
    if (!h.is_object() || !h.contains(key)) bad(what, std::string("the header has no '") + key + "' field.");
    return h[key];
  };
  if (field("format") != kFormatName) bad(what, "the header's format is " + field("format").dump() + ", not \"signcore\".");
  if (field("format_version") != version)
    bad(what, "the header's format_version " + field("format_version").dump() + " does not match the file's " +
                  std::to_string(version) + ".");
  const json& content = field("content");
  if (content != "model" && content != "weights")
    bad(what, "unknown content " + content.dump() + " (expected \"model\" or \"weights\").");
  const std::uint64_t data_nbytes = field("data_nbytes").is_number_unsigned() ? h["data_nbytes"].get<std::uint64_t>()
                                                                              : ~std::uint64_t{0};
  if (data_nbytes != size - kPrefix - header_len - kTrailer)
    bad(what, "the data section should hold " + h["data_nbytes"].dump() + " bytes but the file has room for " +
                  std::to_string(size - kPrefix - header_len - kTrailer) + ".");
  c.data = bytes.data() + kPrefix + header_len;

  const json& table = field("tensors");
  if (!table.is_array()) bad(what, "the tensor table is not a list.");
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  for (std::size_t i = 0; i < table.size(); ++i) {
    const json& t = table[i];
    const std::string where = "tensor table entry " + std::to_string(i);
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("shape") ||
        !t["shape"].is_array() || !t.contains("offset") || !t["offset"].is_number_unsigned() ||
        !t.contains("nbytes") || !t["nbytes"].is_number_unsigned() || !t.contains("dtype"))
      bad(what, where + " is malformed: " + t.dump() + ".");
    if (t["dtype"] != "float32") bad(what, where + " has dtype " + t["dtype"].dump() + "; only float32 is supported.");
    Entry e;
    e.name = t["name"].get<std::string>();
    e.kind = t.contains("kind") && t["kind"].is_string() ? t["kind"].get<std::string>() : "weight";
    std::uint64_t count = 1;
    for (const json& d : t["shape"]) {
      if (!d.is_number_unsigned() || d.get<std::uint64_t>() > (std::uint64_t{1} << 40))
        bad(what, where + " ('" + e.name + "') has an invalid shape " + t["shape"].dump() + ".");
      count *= d.get<std::uint64_t>();
      if (count > (std::uint64_t{1} << 40)) bad(what, where + " ('" + e.name + "') is impossibly large.");
      e.shape.push_back(d.get<std::size_t>());
    }
    const std::uint64_t offset = t["offset"].get<std::uint64_t>(), nbytes = t["nbytes"].get<std::uint64_t>();
    if (nbytes != 4 * count)
      bad(what, where + " ('" + e.name + "') has nbytes " + std::to_string(nbytes) + " but its shape " +
                    t["shape"].dump() + " needs " + std::to_string(4 * count) + ".");
    if (offset % 4 != 0 || offset > data_nbytes || nbytes > data_nbytes - offset)
      bad(what, where + " ('" + e.name + "') lies outside the data section (offset " + std::to_string(offset) +
                    ", " + std::to_string(nbytes) + " bytes, section " + std::to_string(data_nbytes) + " bytes).");
    e.offset = offset;
    e.count = count;
    ranges.emplace_back(offset, offset + nbytes);
    c.tensors.push_back(std::move(e));
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) bad(what, "two tensors overlap in the data section.");
  return c;
}

// Weight entries of a container, in order.
std::vector<const Entry*> weight_entries(const Container& c) {
  std::vector<const Entry*> out;
  for (const Entry& e : c.tensors)
    if (e.kind == "weight") out.push_back(&e);
  return out;
}

std::string shape_list(const std::vector<std::pair<std::string, Shape>>& items) {
  std::string s;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i == 6) {
      s += ", ... (" + std::to_string(items.size() - 6) + " more)";
      break;
    }
    s += (i ? ", " : "") + items[i].first + " " + shape_str(items[i].second, false);
  }
  return s.empty() ? "none" : s;
}

// Check that the container's weights fit `model` (count and shapes, in order) and copy them in.
void copy_weights(const Container& c, Model& model, const std::string& what) {
  const std::vector<const Entry*> file = weight_entries(c);
  Parameters& p = model.params();
  const std::vector<Weight>& mw = p.weights();
  auto listing = [&]() {
    std::vector<std::pair<std::string, Shape>> f, m;
    for (const Entry* e : file) f.emplace_back(e->name, e->shape);
    for (const Weight& w : mw) m.emplace_back(w.name, w.shape);
    return "The file has: " + shape_list(f) + ". The model has: " + shape_list(m) + ".";
  };
  if (file.size() != mw.size())
    fail<ValueError>("The weights in ", quoted(what), " do not fit model '", model.name(), "': the file has ",
                     file.size(), " weight tensors, the model has ", mw.size(), ". ", listing());
  for (std::size_t i = 0; i < mw.size(); ++i)
    if (file[i]->shape != mw[i].shape)
      fail<ValueError>("The weights in ", quoted(what), " do not fit model '", model.name(), "': weight ", i, " ('",
                       file[i]->name, "') has shape ", shape_str(file[i]->shape, false), " in the file but the model's '",
                       mw[i].name, "' has shape ", shape_str(mw[i].shape, false), ". ", listing());
  for (std::size_t i = 0; i < mw.size(); ++i) get_floats(c.data + file[i]->offset, p.value(i), file[i]->count);
}

// Checked JSON access for the model section.
struct Reader {
  const std::string& what;
  [[noreturn]] void malformed(const std::string& where) const {
    bad(what, "the model description is malformed (" + where + ").");
  }
  const json& get(const json& obj, const char* key, const std::string& where) const {
    if (!obj.is_object() || !obj.contains(key)) malformed(where + " has no '" + key + "'");
    return obj[key];
  }
  std::string str(const json& obj, const char* key, const std::string& where) const {
    const json& v = get(obj, key, where);
    if (!v.is_string()) malformed(where + "." + key + " is not a string");
    return v.get<std::string>();
  }
  long long integer(const json& obj, const char* key, const std::string& where) const {
    const json& v = get(obj, key, where);
    if (!v.is_number_integer()) malformed(where + "." + key + " is not an integer");
    return v.get<long long>();
  }
};

std::shared_ptr<Model> build_model(const Container& c, const std::string& what) {
  const json& h = c.header;
  if (h["content"] == "weights")
    bad(what, "it holds weights only (written by save_weights). Create the model in code, then call "
              "model.load_weights(path).");
  const Reader r{what};
  const json& m = r.get(h, "model", "header");
  auto model = std::make_shared<Model>(r.str(m, "name", "model"));

  const json& inputs = r.get(m, "inputs", "model");
  const json& layers = r.get(m, "layers", "model");
  if (!inputs.is_array() || !layers.is_array()) r.malformed("model.inputs and model.layers must be lists");
  try {
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const std::string where = "model.inputs[" + std::to_string(i) + "]";
      ModelInput in;
      in.name = r.str(inputs[i], "name", where);
      in.dtype = r.str(inputs[i], "dtype", where);
      const json& shape = r.get(inputs[i], "shape", where);
      if (!shape.is_array()) r.malformed(where + ".shape is not a list");
      for (const json& d : shape) {
        if (!d.is_number_unsigned()) r.malformed(where + ".shape holds " + d.dump());
        in.shape.push_back(d.get<std::size_t>());
      }
      model->add_input(in);
    }
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const std::string where = "model.layers[" + std::to_string(i) + "]";
      const std::string cls = r.str(layers[i], "class_name", where);
      const json& config = r.get(layers[i], "config", where);
      const json& inbound = r.get(layers[i], "inbound", where);
      if (!inbound.is_array()) r.malformed(where + ".inbound is not a list");
      auto parse_ref = [&](const json& ref, const std::string& field) {
        if (ref.is_object() && ref.contains("input") && ref["input"].is_number_unsigned())
          return input_ref(ref["input"].get<int>());
        if (ref.is_object() && ref.contains("layer") && ref["layer"].is_number_unsigned())
          return ref["layer"].get<int>();
        r.malformed(where + "." + field + " holds " + ref.dump());
        return 0;
      };
      std::vector<int> refs;
      for (const json& ref : inbound) refs.push_back(parse_ref(ref, "inbound"));
      const int mask = layers[i].contains("mask") ? parse_ref(layers[i]["mask"], "mask") : kNoMask;
      LayerPtr layer;
      try {
        layer = layer_from_config(cls, config);
      } catch (const std::exception& e) {
        bad(what, "cannot rebuild layer " + std::to_string(i) + " (" + cls + "): " + e.what());
      }
      model->add_node(layer, refs, mask);
    }
    const long long out = r.integer(m, "output", "model");
    if (out < 0 || out >= static_cast<long long>(layers.size())) r.malformed("model.output is out of range");
    model->set_output(static_cast<int>(out));
    model->build();
  } catch (const FormatError&) {
    throw;
  } catch (const std::exception& e) {
    bad(what, std::string("cannot rebuild the model: ") + e.what());
  }
  copy_weights(c, *model, what);

  const json& compile = h.contains("compile") ? h["compile"] : json();
  if (!compile.is_null()) {
    const json& loss = r.get(compile, "loss", "compile");
    const json& metrics = r.get(compile, "metrics", "compile");
    const json& opt = r.get(compile, "optimizer", "compile");
    std::vector<std::string> names;
    if (!metrics.is_array()) r.malformed("compile.metrics is not a list");
    for (const json& n : metrics) {
      if (!n.is_string()) r.malformed("compile.metrics holds " + n.dump());
      names.push_back(n.get<std::string>());
    }
    LossPtr loss_ptr;
    OptimizerPtr opt_ptr;
    try {
      loss_ptr = make_loss(r.str(loss, "class_name", "compile.loss"), r.get(loss, "config", "compile.loss"));
      opt_ptr = make_optimizer(r.str(opt, "class_name", "compile.optimizer"), r.get(opt, "config", "compile.optimizer"));
    } catch (const std::exception& e) {
      bad(what, std::string("cannot restore the compile settings: ") + e.what());
    }
    model->compile(opt_ptr, loss_ptr, names);
    const long long iterations = r.integer(opt, "iterations", "compile.optimizer");
    if (iterations < 0) r.malformed("compile.optimizer.iterations is negative");
    const json& state = r.get(opt, "state", "compile.optimizer");
    if (!state.is_null()) {
      const Entry* e = nullptr;
      for (const Entry& t : c.tensors)
        if (t.kind == "optimizer_state" && state.is_string() && t.name == state.get<std::string>()) e = &t;
      if (!e) r.malformed("compile.optimizer.state names no tensor");
      const std::size_t total = model->params().total();
      if (e->count != opt_ptr->slots() * total)
        bad(what, "the optimizer state holds " + std::to_string(e->count) + " values, but " + opt_ptr->class_name() +
                      " needs " + std::to_string(opt_ptr->slots() * total) + " for this model.");
      std::vector<float> values(e->count);
      get_floats(c.data + e->offset, values.data(), e->count);
      opt_ptr->restore(total, std::move(values));
    }
    opt_ptr->iterations = iterations;
  }
  return model;
}

// --- files ------------------------------------------------------------------------------------------

std::string errno_text(int err) { return std::strerror(err); }

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) fail<FileNotFoundError>("No such file: '", path, "'");
    fail<IOError>("Cannot open '", path, "': ", errno_text(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail<IOError>("Cannot read '", path, "': it is a directory, not a model file");
  }
  std::string bytes;
  bytes.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd, &bytes[got], bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      fail<IOError>("Cannot read '", path, "': ", errno_text(err));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  bytes.resize(got);
  return bytes;
}

std::string parent_dir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Write to <path>.tmp-<random> in the same folder, fsync, rename over <path>.
void write_file_atomically(const std::string& path, const std::string& bytes) {
  if (path.empty()) fail<ValueError>("A file path is required. Received: filepath=''");
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    fail<IOError>("Cannot save to '", path, "': it is a directory; give a file name such as '", path,
                  "/model.signcore'");
  std::random_device rd;
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".tmp-%d-%08x", static_cast<int>(::getpid()), static_cast<unsigned>(rd()));
  const std::string tmp = path + suffix;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int err = errno;
    fail<IOError>("Cannot save to '", path, "': cannot create a file in '", parent_dir(path), "' (", errno_text(err),
                  ")");
  }
  auto abandon = [&](const std::string& step, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail<IOError>("Cannot save to '", path, "': ", step, " failed (", errno_text(err), "); the previous file, if "
                  "any, is unchanged");
  };
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) abandon("writing", n < 0 ? errno : EIO);
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) abandon("flushing to disk", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail<IOError>("Cannot save to '", path, "': closing the file failed (", errno_text(err), ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail<IOError>("Cannot save to '", path, "': renaming the temporary file failed (", errno_text(err), ")");
  }
  // Make the rename itself durable (best effort: some file systems refuse to fsync a directory).
  const int dfd = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace

// --- CRC-32 -------------------------------------------------------------------------------------------

std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

// --- public API -------------------------------------------------------------------------------------

std::string model_to_bytes(const Model& model, bool include_optimizer, const json& metadata) {
  return encode_model(model, include_optimizer, metadata);
}

std::shared_ptr<Model> model_from_bytes(const std::string& bytes, const std::string& what) {
  return build_model(parse(bytes, what), what);
}

std::string weights_to_bytes(const Model& model) { return encode_weights(model); }

void weights_from_bytes(Model& model, const std::string& bytes, const std::string& what) {
  if (!model.built())
    fail<ValueError>("Model '", model.name(), "' is not built yet, so weights cannot be loaded into it. Build it "
                     "first (give the first layer input_shape=... or call build(input_shape)).");
  copy_weights(parse(bytes, what), model, what);
}

void save_model(const Model& model, const std::string& path, bool include_optimizer, const json& metadata) {
  write_file_atomically(path, encode_model(model, include_optimizer, metadata));
}

std::shared_ptr<Model> load_model(const std::string& path) { return model_from_bytes(read_file(path), path); }

void save_weights(const Model& model, const std::string& path) {
  write_file_atomically(path, encode_weights(model));
}

void load_weights(Model& model, const std::string& path) { weights_from_bytes(model, read_file(path), path); }

json read_header(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse(bytes, path).header;
}

}  // namespace signcore
