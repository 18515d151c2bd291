"""The search of one budget: an Optuna study of architectures and training values,
run by any number of workers to an exact count of finished trials, resumable,
recorded and summarised. Every public name is re-exported here."""

from finscale.hpo.control import StopRequested, StopSignal, clear_stop, request_stop
from finscale.hpo.coverage import coverage
from finscale.hpo.finalists import Crowning, crown
from finscale.hpo.forced import forced_extremes
from finscale.hpo.journal import repair_torn_tail
from finscale.hpo.objective import train_configuration, training_configs
from finscale.hpo.preflight import preflight, preflight_lines
from finscale.hpo.reaper import reap_dead_trials
from finscale.hpo.records import best_trial, read_trial_records, state_counts
from finscale.hpo.space import TRAINING_PARAMS, ArchitectureSpace
from finscale.hpo.spec import (
    JOURNAL_FILE,
    SEED_BASES,
    STUDY_FILE,
    Prepared,
    StudySpec,
    default_study_name,
    new_study_spec,
    prepare,
)
from finscale.hpo.storage import (
    check_storage,
    check_storage_usable,
    classify_storage,
    is_database,
    open_storage,
    redact,
    storage_exists,
)
from finscale.hpo.study import (
    StudyOutcome,
    create_or_load,
    import_trials,
    join_spec,
    read_study_file,
    run_study,
    summarize_run,
)
from finscale.hpo.summary import param_importances, summarize, write_summary
from finscale.hpo.summary_document import summary_blocks
from finscale.hpo.worker import WorkerResult, run_worker

__all__ = [
    "JOURNAL_FILE",
    "SEED_BASES",
    "STUDY_FILE",
    "TRAINING_PARAMS",
    "ArchitectureSpace",
    "Crowning",
    "Prepared",
    "StopRequested",
    "StopSignal",
    "StudyOutcome",
    "StudySpec",
    "WorkerResult",
    "best_trial",
    "check_storage",
    "check_storage_usable",
    "classify_storage",
    "clear_stop",
    "coverage",
    "create_or_load",
    "crown",
    "default_study_name",
    "forced_extremes",
    "import_trials",
    "is_database",
    "join_spec",
    "new_study_spec",
    "open_storage",
    "param_importances",
    "preflight",
    "preflight_lines",
    "prepare",
    "read_study_file",
    "read_trial_records",
    "reap_dead_trials",
    "redact",
    "repair_torn_tail",
    "request_stop",
    "run_study",
    "run_worker",
    "state_counts",
    "storage_exists",
    "summarize",
    "summarize_run",
    "summary_blocks",
    "train_configuration",
    "training_configs",
    "write_summary",
]
