"""The search of one budget: an Optuna study of architectures and training values,
run by any number of workers to an exact count of finished trials, resumable,
recorded and summarised. Every public name is re-exported here."""

from finscale.hpo.coverage import coverage
from finscale.hpo.duration import StudyClock, costs_of
from finscale.hpo.finalists import Crowning, crown, search_seeds
from finscale.hpo.forced import forced_extremes
from finscale.hpo.objective import train_configuration, training_configs
from finscale.hpo.preflight import preflight, preflight_lines
from finscale.hpo.space import TRAINING_PARAMS, ArchitectureSpace
from finscale.hpo.spec import (
    JOURNAL_FILE,
    POLL_SECONDS,
    SEED_BASES,
    STUDY_FILE,
    Prepared,
    StudySpec,
    default_study_name,
    grid_of,
    new_study_spec,
    open_study_storage,
    prepare,
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
from finscale.hpo.summary import param_importances, summarize, summary_markdown, write_summary
from finscale.hpo.summary_document import summary_blocks
from finscale.hpo.transfer import Transfer, transfer_of, transferred_config
from finscale.hpo.trial_records import best_trial, read_trial_records, state_counts
from finscale.hpo.worker import WorkerResult, run_worker

__all__ = [
    "JOURNAL_FILE",
    "POLL_SECONDS",
    "SEED_BASES",
    "STUDY_FILE",
    "TRAINING_PARAMS",
    "ArchitectureSpace",
    "Crowning",
    "Prepared",
    "StudyClock",
    "StudyOutcome",
    "StudySpec",
    "Transfer",
    "WorkerResult",
    "best_trial",
    "costs_of",
    "coverage",
    "create_or_load",
    "crown",
    "default_study_name",
    "forced_extremes",
    "grid_of",
    "import_trials",
    "join_spec",
    "new_study_spec",
    "open_study_storage",
    "param_importances",
    "preflight",
    "preflight_lines",
    "prepare",
    "read_study_file",
    "read_trial_records",
    "run_study",
    "run_worker",
    "search_seeds",
    "state_counts",
    "summarize",
    "summarize_run",
    "summary_blocks",
    "summary_markdown",
    "train_configuration",
    "training_configs",
    "transfer_of",
    "transferred_config",
    "write_summary",
]
