"""The names of the attributes finscale stores on Optuna trials and studies.

The storage is the study's truth, read back by other workers, by the scaling
study, by `summary` and by `import-trials`: a key spelled in one place only
cannot drift between writer and reader.
"""

# ---------------------------------------------------------------- trial user attrs
WORKER_ATTR = "worker"  # identity of the worker that runs the trial
FAIL_ATTR = "fail_reason"
RESUME_ATTR = "failed_for_resume"  # failed by a stop or a dead worker; its config re-queued
RETRY_ATTR = "retry_of"  # a re-queued configuration: the number of the trial it re-runs
DUPLICATE_ATTR = "duplicate_of"
SURPLUS_ATTR = "surplus"  # asked beyond the study's count by a racing worker, never run
FORCED_ATTR = "forced_extreme"  # the label of a forced extreme
