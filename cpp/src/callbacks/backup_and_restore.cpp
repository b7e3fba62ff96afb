// BackupAndRestore (keras/src/callbacks/backup_and_restore.py), extended to the whole training
// state: weights, optimizer slots and iteration count, learning rate, epoch and random state.
#include <filesystem>

#include "signcore/callbacks.hpp"
#include "signcore/errors.hpp"
#include "signcore/model.hpp"
#include "signcore/random.hpp"
#include "signcore/serialization.hpp"

namespace signcore {

namespace fs = std::filesystem;

BackupAndRestore::BackupAndRestore(std::string backup_dir_, long long save_freq_, bool delete_checkpoint_)
    : backup_dir(std::move(backup_dir_)), save_freq(save_freq_), delete_checkpoint(delete_checkpoint_) {
  if (backup_dir.empty()) fail<ValueError>("Empty `backup_dir` argument passed");
  if (save_freq < 0)
    fail<ValueError>("Invalid value for argument `save_freq`. Received: save_freq=", save_freq,
                     ". Expected either 'epoch' or a positive integer value.");
}

std::string BackupAndRestore::backup_path() const { return (fs::path(backup_dir) / "latest.signcore").string(); }

void BackupAndRestore::on_train_begin(Logs&) {
  resume_epoch_ = -1;
  current_epoch_ = 0;
  batches_since_save_ = 0;
  if (!model_) fail<StateError>("BackupAndRestore is not attached to a model");
  if (!model_->built())
    fail<ValueError>("To use the BackupAndRestore callback, your model must be built before you call fit(). Model '",
                     model_->name(), "' is unbuilt.");
  std::error_code ec;
  if (fs::exists(backup_path(), ec)) restore();
}

void BackupAndRestore::restore() {
  const std::string path = backup_path();
  const json header = read_header(path);
  const json& meta = header.contains("metadata") ? header["metadata"] : json();
  if (!meta.is_object() || !meta.contains("epoch") || !meta["epoch"].is_number_integer())
    fail<ValueError>("'", path, "' is not a BackupAndRestore backup (its metadata has no epoch); remove it or choose "
                     "another backup_dir");
  std::shared_ptr<Model> saved = load_model(path);
  Model& m = *model_;
  auto& values = m.params().values();
  if (saved->params().values().size() != values.size())
    fail<ValueError>("The backup in '", path, "' holds ", saved->params().values().size(),
                     " weight values but the model has ", values.size(),
                     ": it was written by a different model. Remove it or choose another backup_dir.");
  values = saved->params().values();
  OptimizerPtr opt = m.optimizer(), from = saved->optimizer();
  if (opt && from) {
    if (opt->class_name() != from->class_name() || opt->slots() != from->slots())
      fail<ValueError>("The backup in '", path, "' was written with optimizer ", from->class_name(),
                       " but the model is compiled with ", opt->class_name(), ". Remove it or compile as before.");
    opt->iterations = from->iterations;
    opt->set_learning_rate(from->learning_rate);
    if (from->built()) opt->restore(values.size(), from->state());
  }
  if (meta.contains("rng_state") && meta["rng_state"].is_string()) set_rng_state(meta["rng_state"].get<std::string>());
  current_epoch_ = meta["epoch"].get<int>();
  resume_epoch_ = current_epoch_;
}

void BackupAndRestore::on_epoch_begin(int epoch, Logs&) { batches_since_save_ = 0; (void)epoch; }

void BackupAndRestore::on_train_batch_end(long long batch, Logs&) {
  if (save_freq <= 0) return;
  if (++batches_since_save_ >= save_freq) {
    batches_since_save_ = 0;
    save(batch);
  }
}

void BackupAndRestore::on_epoch_end(int epoch, Logs&) {
  current_epoch_ = epoch + 1;
  if (save_freq == 0) save(-1);
}

void BackupAndRestore::save(long long batch) {
  if (!model_) return;
  std::error_code ec;
  fs::create_directories(backup_dir, ec);
  if (ec) fail<IOError>("BackupAndRestore cannot create the folder '", backup_dir, "': ", ec.message());
  const json meta{{"saved_by", "BackupAndRestore"},
                  {"epoch", current_epoch_},
                  {"batch", batch},
                  {"rng_state", get_rng_state()}};
  save_model(*model_, backup_path(), true, meta);
}

void BackupAndRestore::on_train_end(Logs&) {
  resume_epoch_ = -1;
  if (!delete_checkpoint) return;
  std::error_code ec;
  fs::remove(backup_path(), ec);
  if (fs::is_directory(backup_dir, ec) && fs::is_empty(backup_dir, ec)) fs::remove(backup_dir, ec);
}

}  // namespace signcore
