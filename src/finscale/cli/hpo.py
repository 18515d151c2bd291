"""`finscale hpo`, `worker`, `stop` and `summary`: one budget's Optuna study, the
workers that join it, and what it found."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer

from finscale.atomic import check_folder
from finscale.cli.options import (
    ConfigOpt,
    ConfigTierOpt,
    LabelModeOpt,
    MaxTempOpt,
    PresetOpt,
    RunDirArg,
    SetOpt,
    StorageOpt,
    StoreOpt,
    TimeoutHoursOpt,
    TrialsOpt,
    WorkersOpt,
    config_overrides,
    deadline,
    store_dir,
)
from finscale.cli.progress import ProgressRenderer, best_so_far, console, err_console, say
from finscale.errors import InputError

hpo_app = typer.Typer(
    help="Search the architecture and training values of one budget with Optuna.",
    invoke_without_command=True,
)


@hpo_app.callback()
def hpo(
    ctx: typer.Context,
    budget: Annotated[
        str | None, typer.Option(help="Parameter budget, e.g. 200K or 2M (required).")
    ] = None,
    horizon: Annotated[
        int | None,
        typer.Option("--horizon", help="Label horizon in days (default: the config's)."),
    ] = None,
    tier: ConfigTierOpt = None,
    label_mode: LabelModeOpt = None,
    config: ConfigOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    trials: TrialsOpt = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Folder of the study's records (default: runs/STUDY).")
    ] = None,
    storage: StorageOpt = None,
    study: Annotated[
        str | None, typer.Option(help="Study name (default: {tier}_{budget}_h{horizon}).")
    ] = None,
    workers: WorkersOpt = 1,
    timeout_hours: TimeoutHoursOpt = None,
    max_temp: MaxTempOpt = None,
    preflight_only: Annotated[
        bool, typer.Option("--preflight-only", help="Print the pre-flight checks and exit.")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Run or resume the HPO study of one (tier, budget, horizon). Re-running the same
    command resumes it; `finscale stop RUN_DIR`, Ctrl-C or SIGTERM stop it gracefully."""
    if ctx.invoked_subcommand is not None:
        return
    from finscale.execution import clear_stop
    from finscale.hpo import new_study_spec, preflight, preflight_lines, prepare

    if budget is None:
        raise InputError("hpo needs --budget (e.g. --budget 200K)", "--budget")
    check_study_flags([] if study is None else [study], max_temp)
    stop_at = deadline(workers, timeout_hours)
    overrides = config_overrides(
        set_,
        {
            "data.horizon_days": horizon,
            "data.tier": tier,
            "data.label_mode": label_mode,
            "search.trials": trials,
        },
    )
    spec = new_study_spec(
        budget,
        preset,
        config,
        overrides,
        study_name=study,
        run_dir=run_dir,
        storage=storage,
        store_dir=store_dir(store),
        workers=workers,
        max_temp_c=max_temp,
        deadline=stop_at,
    )
    check_places(spec)  # before the store is touched
    err = err_console()
    with err.status("building dataset and grid", spinner="dots"):
        prepared = prepare(spec)
    if preflight_only:
        with err.status(
            "pre-flight: timing one epoch of the fewest and most parameters and layers"
        ):
            report = preflight(spec, prepared)
        for line in preflight_lines(report):
            say(line)
        return
    for line in preflight_lines(preflight(spec, prepared, time_epochs=False)):
        say(line, err)
    clear_stop(spec.run_dir)
    run_with_progress(spec, prepared)


def check_study_flags(names: list[str], max_temp: float | None) -> None:
    """A study name names files and folders (runs/NAME, NAME_best.json): one plain name
    each. A pause while hotter than a limit no machine under load gets below never ends."""
    for name in names:
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise InputError(f"study name {name!r} is not a plain file name (no '/')", "--study")
    if max_temp is not None and max_temp <= 0:
        raise InputError(
            f"--max-temp is in degrees C and must be positive, got {max_temp}", "--max-temp"
        )


def check_places(spec) -> None:
    """Refuse a run directory or storage that cannot be written before anything is."""
    from finscale.execution import check_storage_usable

    check_folder(spec.run_dir, "run directory", "--run-dir")
    check_storage_usable(spec.storage)


def check_worker_flags(
    study: list[str], run_dir: Path | None, wait_minutes: float, max_temp: float | None
) -> None:
    if wait_minutes < 0:
        raise InputError(f"--wait-minutes must be 0 or more, got {wait_minutes}", "--wait-minutes")
    if run_dir is not None and len(study) > 1:
        raise InputError(
            "--run-dir names one study's folder; with several --study, leave it out "
            "(each study's records go to runs/STUDY)",
            "--run-dir",
        )
    check_study_flags(study, max_temp)


def worker_command(
    storage: Annotated[
        str,
        typer.Option(
            help="Storage of the study: postgresql://USER:PASSWORD@HOST:5432/DB "
            "(any Optuna RDB URL, or a local journal file)."
        ),
    ],
    study: Annotated[
        list[str],
        typer.Option(
            help="Study to join, made by finscale hpo or scale; repeat it to work through "
            "several in order (the budgets of a scaling run)."
        ),
    ],
    device: Annotated[
        str | None,
        typer.Option(help="This worker's device: cpu, cuda, cuda:N or mps (default: the study's)."),
    ] = None,
    workers: WorkersOpt = 1,
    seed: Annotated[
        int | None,
        typer.Option(help="Base of this worker's TPE seed (default: random; kept on its trials)."),
    ] = None,
    wait_minutes: Annotated[
        float,
        typer.Option(
            help="Wait this long for a study to be created (workers of a job array may "
            "start before the job that creates it)."
        ),
    ] = 0.0,
    run_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of this machine's copy of the records (default: runs/STUDY)."),
    ] = None,
    timeout_hours: TimeoutHoursOpt = None,
    max_temp: MaxTempOpt = None,
    store: StoreOpt = None,
) -> None:
    """Join a study on a shared storage and run its trials until the study has its count,
    then the final-evaluation units a scaling study posts for it. The config, grid
    and trial target come from the study itself, so every worker searches the same
    space. Start one per GPU, on as many machines as you have
    (docs/distributed.md); `finscale stop RUN_DIR`, Ctrl-C or SIGTERM stop it gracefully."""
    from finscale.execution import clear_stop, redact
    from finscale.hpo import SEED_BASES, join_spec, prepare

    stop_at = deadline(workers, timeout_hours)
    check_worker_flags(study, run_dir, wait_minutes, max_temp)
    base_seed = seed if seed is not None else secrets.randbelow(SEED_BASES)
    err = err_console()
    joined = []
    for name in study:
        spec, attrs = join_spec(
            storage,
            name,
            store_dir(store),
            run_dir,
            device=device,
            sampler_seed=base_seed,
            workers=workers,
            max_temp_c=max_temp,
            deadline=stop_at,
            wait_seconds=wait_minutes * 60,
        )
        check_folder(spec.run_dir, "run directory", "--run-dir")
        with err.status(f"{name}: building dataset and grid", spinner="dots"):
            prepared = prepare(spec, joined=attrs)
        say(
            f"joining study {name} on {redact(storage)}: budget {attrs['budget']:,}, "
            f"{len(prepared.space.allowed)} architectures, target {spec.trials} trials, "
            f"device {prepared.device}, seed base {base_seed}",
            err,
        )
        clear_stop(spec.run_dir)
        if not run_with_progress(spec, prepared):
            return  # stopped: the later studies wait for the same command
        joined.append((spec, prepared))
    run_evaluation_units(joined, workers)


def run_evaluation_units(joined: list, workers: int) -> None:
    """After the searches: the evaluation units that the scaling study's head posts on
    each joined study's queue, run here beside the head and any other workers."""
    from finscale.execution import StopRequested
    from finscale.scale import open_queue, spawn_queue_workers, work_queues

    joined = [(spec, prepared) for spec, prepared in joined if open_queue(spec) is not None]
    if not joined:
        return  # plain `finscale hpo` studies: no scaling study will post units
    specs = [spec for spec, _ in joined]
    names = ", ".join(spec.study_name for spec in specs)
    say(f"evaluation units of {names}: running them as the scaling study posts them", err_console())

    def on_unit(spec, unit, run, seconds) -> None:
        what = (
            f"val log loss {run.val_metrics['log_loss']:.4f}, {run.epochs_run} epochs"
            if run is not None
            else "failed (the head reports why)"
        )
        say(f"  {spec.study_name} {unit.name}: {what}, {seconds:.0f} s")

    children = spawn_queue_workers(specs, range(1, workers), None, True)
    try:
        ran = work_queues(
            specs,
            on_unit=on_unit,
            prepared={spec.study_name: prepared for spec, prepared in joined},
        )
        say(f"evaluation: every posted unit is done; {ran} ran in this process")
    except StopRequested as exc:
        say(f"evaluation stopped ({exc}); the unit in flight was queued again")
    finally:
        for child in children:
            child.join()


def run_with_progress(spec, prepared) -> bool:
    """Run the study with a bar of its trials and a line per trial; True when it has
    its count."""
    from finscale.hpo import run_study, summarize_run

    with ProgressRenderer("trials") as progress:
        progress.start(spec.study_name, spec.trials)
        outcome = run_study(spec, prepared=prepared, **progress.trial_callbacks(spec, prepared))
    counts = outcome.counts
    if counts["finished"]:
        summarize_run(spec.run_dir, spec.storage)
    state = (
        "finished"
        if outcome.finished
        else f"stopped ({outcome.stop_reason}); run the same command to resume"
        if outcome.stop_reason
        else "ended"
    )
    console.print(
        f"[bold]study {spec.study_name}[/] {state}: {counts['finished']}/{spec.trials} finished "
        f"({counts['complete']} complete of which {counts['duplicates']} duplicates reused, "
        f"{counts['pruned']} pruned), {counts['failed']} failed, in {outcome.seconds:.0f} s",
        soft_wrap=True,
    )
    say(f"  best       {best_so_far(outcome.study)}")
    say(f"  records    {spec.run_dir}")
    return outcome.finished


@hpo_app.command("import-trials")
def hpo_import_trials(
    folder: Annotated[Path, typer.Argument(help="Run directory or trials/ folder of records.")],
    storage: StorageOpt = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory of the new study (default: the folder's).")
    ] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default: the records').")] = None,
) -> None:
    """Build a study in a storage from a folder of trial records (moving a study
    between machines or storages)."""
    from finscale.hpo import JOURNAL_FILE, import_trials

    check_study_flags([] if study is None else [study], None)
    source = folder.parent if folder.name == "trials" else folder
    where = "--run-dir" if run_dir is not None else str(folder)
    run_dir = check_folder(run_dir or source, "run directory", where)
    created = import_trials(
        folder, storage or str(run_dir / JOURNAL_FILE), run_dir, study_name=study
    )
    say(
        f"imported {created['trials']} trials into study {created['study_name']} "
        f"({created['storage']}); resume it with `finscale hpo ... --run-dir {run_dir}`"
    )


def stop_command(run_dir: RunDirArg) -> None:
    """Ask every worker of a study to stop after its current epoch; each records its
    trial for resume and exits."""
    from finscale.scale import stop_run_dir

    path = stop_run_dir(run_dir)
    say(f"asked the workers of {run_dir} to stop after their current epoch ({path})")


def summary_command(run_dir: RunDirArg, storage: StorageOpt = None) -> None:
    """Write summary.json and summary.md of a study from its storage, and print them."""
    from finscale.hpo import summarize_run, summary_markdown

    check_folder(run_dir, "run directory", str(run_dir))  # it is written into
    summary, paths = summarize_run(run_dir, storage)
    console.print(summary_markdown(summary), soft_wrap=True, highlight=False, markup=False)
    for path in paths:
        say(f"wrote {path}")
