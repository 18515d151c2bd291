"""The scaling study: its run directory, its spec, and its stages
(hpo -> evaluation -> baselines -> cross_budget -> results -> report), each
resumable from what the run directory stored."""

from finscale.scale.cross_budget_plan import PlannedCell
from finscale.scale.layout import (
    BASELINES_DIR,
    CROSS_BUDGET_DIR,
    EVALUATION_DIR,
    RESULTS_CSV,
    SCALE_FILE,
    SCALING_JSON,
    STUDIES_DIR,
    baselines_path,
    cross_budget_path,
    evaluation_path,
    is_scale_run_dir,
    read_json,
    stored,
    study_dir,
    study_dirs,
)
from finscale.scale.queue import open_queue, spawn_queue_workers, work_queues
from finscale.scale.results import (
    build_results,
    load_evaluations,
    load_study_files,
    study_files_of,
    write_run_report,
)
from finscale.scale.scale_spec import (
    ScaleSpec,
    check_data,
    check_run_dir_matches,
    new_scale_spec,
    read_scale_file,
    spec_of_run_dir,
    write_scale_file,
)
from finscale.scale.stages import STAGES, Pipeline, Reporter
from finscale.scale.stop import clear_stops, stop_run_dir

__all__ = [
    "BASELINES_DIR",
    "CROSS_BUDGET_DIR",
    "EVALUATION_DIR",
    "RESULTS_CSV",
    "SCALE_FILE",
    "SCALING_JSON",
    "STAGES",
    "STUDIES_DIR",
    "Pipeline",
    "PlannedCell",
    "Reporter",
    "ScaleSpec",
    "baselines_path",
    "build_results",
    "check_data",
    "check_run_dir_matches",
    "clear_stops",
    "cross_budget_path",
    "evaluation_path",
    "is_scale_run_dir",
    "load_evaluations",
    "load_study_files",
    "new_scale_spec",
    "open_queue",
    "read_json",
    "read_scale_file",
    "spawn_queue_workers",
    "spec_of_run_dir",
    "stop_run_dir",
    "stored",
    "study_dir",
    "study_dirs",
    "study_files_of",
    "work_queues",
    "write_run_report",
    "write_scale_file",
]
