// CSVLogger (keras/src/callbacks/csv_logger.py) and TerminateOnNaN (terminate_on_nan.py).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include "signcore/callbacks.hpp"
#include "signcore/errors.hpp"
#include "signcore/model.hpp"

namespace signcore {

CSVLogger::CSVLogger(std::string filename_, std::string separator_, bool append_)
    : filename(std::move(filename_)), separator(std::move(separator_)), append(append_) {
  if (filename.empty()) fail<ValueError>("CSVLogger needs a file name. Received: filename=''");
  if (separator.size() != 1) fail<TypeError>("separator must be a 1-character string. Received: separator='", separator, "'");
}

CSVLogger::~CSVLogger() { close(); }

void CSVLogger::close() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
}

void CSVLogger::on_train_begin(Logs&) {
  close();
  write_header_ = true;
  if (append) {
    std::ifstream in(filename);
    std::string first;
    if (in && std::getline(in, first) && !first.empty()) write_header_ = false;
  }
  file_ = std::fopen(filename.c_str(), append ? "ab" : "wb");
  if (!file_) fail<IOError>("CSVLogger cannot open '", filename, "' for writing: ", std::strerror(errno));
  keys_.clear();
}

void CSVLogger::on_epoch_end(int epoch, Logs& logs) {
  if (!file_) return;
  // Python's csv module (excel dialect): quote a field holding the separator, a quote or a line
  // break, doubling the quotes; rows end with "\r\n".
  auto field = [&](const std::string& s) {
    if (s.find_first_of(separator + "\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  auto write_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (std::size_t i = 0; i < cells.size(); ++i) line += (i ? separator : "") + field(cells[i]);
    line += "\r\n";
    std::fwrite(line.data(), 1, line.size(), file_);
  };
  if (keys_.empty()) {
    for (const auto& [k, v] : logs.items()) keys_.push_back(k);
    std::sort(keys_.begin(), keys_.end());
    if (write_header_) {
      std::vector<std::string> header{"epoch"};
      header.insert(header.end(), keys_.begin(), keys_.end());
      write_row(header);
    }
  }
  std::vector<std::string> row{std::to_string(epoch)};
  for (const auto& k : keys_) {
    const double* v = logs.find(k);
    row.push_back(v ? python_repr(*v) : "NA");
  }
  write_row(row);
  std::fflush(file_);
}

void CSVLogger::on_train_end(Logs&) { close(); }

void TerminateOnNaN::on_train_batch_end(long long batch, Logs& logs) {
  const double* loss = logs.find("loss");
  if (!loss || std::isfinite(*loss)) return;
  if (raise_error)
    fail<StateError>("NaN or Inf loss encountered at batch ", batch, ". Loss value: ", python_repr(*loss),
                     ". Terminating training immediately.");
  print_msg("Batch " + std::to_string(batch) + ": Invalid loss, terminating training");
  if (model_) model_->stop_training = true;
}

}  // namespace signcore
