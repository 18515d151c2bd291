"""The names of the attributes finscale stores on Optuna trials and studies.

The storage is the study's truth, read back by other workers, by the scaling
study, by `summary` and by `import-trials`: a key spelled in one place only
cannot drift between writer and reader. A study's attributes are also the
keys of its run directory's study.json.
"""

# ---------------------------------------------------------------- trial user attrs
WORKER_ATTR = "worker"  # identity of the worker that runs the trial
FAIL_ATTR = "fail_reason"
RESUME_ATTR = "failed_for_resume"  # failed by a stop or a dead worker; its config re-queued
RETRY_ATTR = "retry_of"  # a re-queued configuration: the number of the trial it re-runs
DUPLICATE_ATTR = "duplicate_of"
SURPLUS_ATTR = "surplus"  # asked beyond the study's count by a racing worker, never run
FORCED_ATTR = "forced_extreme"  # the label of a forced extreme
ARCHITECTURE_ATTR = "architecture"  # grid index, d_model, n_layers, n_heads, d_ff, param_count
BATCH_ATTR = "batch"  # micro-batch, accumulation steps, effective batch, memory estimate
TRAINING_ATTR = "training"  # what the trainer reports: epochs, device, speed, peak memory
VAL_METRICS_ATTR = "val_metrics"
# P(label 1) of each validation sample, in the order of the study's VAL_DATES_ATTR.
VAL_PREDICTIONS_ATTR = "val_predictions"
LEARNING_CURVE_ATTR = "learning_curve"  # one record per epoch
RESOURCES_ATTR = "resources"  # one memory, CPU and temperature sample per epoch
EPOCHS_RUN_ATTR = "epochs_run"
TRAIN_SECONDS_ATTR = "train_seconds"
# On a trial: the number it had in the study it was imported from.
# On a study: the folder of records it was imported from.
IMPORTED_FROM_ATTR = "imported_from"

# ---------------------------------------------------------------- studies
# The evaluation queue of a scaling study's study X is the Optuna study X + this suffix
# in the same storage (`finscale.scale.queue`): not a search, never joined as one.
EVALUATION_QUEUE_SUFFIX = "_evaluation"

# ---------------------------------------------------------------- study user attrs
STUDY_NAME_ATTR = "study_name"
BUDGET_ATTR = "budget"
TIER_ATTR = "tier"
HORIZON_ATTR = "horizon_days"
GRID_HASH_ATTR = "grid_hash"
GRID_SIZE_ATTR = "grid_size"
EXCLUDED_ATTR = "excluded_archs"  # grid indexes the search never tries
EXCLUDED_BY_MEMORY_ATTR = "excluded_by_memory"
DIMENSION_VALUES_ATTR = "dimension_values"  # the searched values of each dimension
DATASET_KEY_ATTR = "dataset_key"
SPLITS_ATTR = "split_statistics"
VAL_DATES_ATTR = "val_dates"  # YYYY-MM-DD of each validation sample, in date order
# The target's simple return from each validation date's close to the next day's.
VAL_RETURNS_ATTR = "val_next_day_returns"
VAL_LABELS_ATTR = "val_labels"  # the 0/1 label of each validation sample, in date order
CONFIG_ATTR = "config"  # the study config as JSON: what a joining worker searches with
TRIALS_ATTR = "trials"  # the target count of finished trials
TRANSFER_ATTR = "transfer"  # training values carried over from another study, and whence
FORCED_EXTREMES_ATTR = "forced_extremes"  # labels of the enqueued forced extremes
# One per re-run of a finalist: "finalist:{trial number}:{seed}" -> val_loss and epochs.
FINALIST_ATTR_PREFIX = "finalist:"
# Written last by the creator: a study without it is still being set up.
INITIALIZED_ATTR = "initialized"
