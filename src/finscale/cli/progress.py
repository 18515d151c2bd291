"""The one progress renderer of every long command, and the console it prints to.

Progress goes to stderr (stdout stays clean for `--json` and pipes): a bar for
the work in hand (a training's steps, a study's trials, a stage's units) with
elapsed time and ETA, and lines above it that stay in the log (one per trial or
unit). `finscale train`, `hpo`, `worker`, `scale` and `validate-cross-budget`
all draw with `ProgressRenderer`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from finscale.execution import ARCHITECTURE_ATTR, DUPLICATE_ATTR, LEARNING_CURVE_ATTR
from finscale.hpo import Prepared, StudySpec
from finscale.units import architecture_label, format_budget, format_clock

# Piped output is not wrapped at 80 columns: tables and hashes stay whole in logs.
console = Console(width=None if sys.stdout.isatty() else 200)


def err_console() -> Console:
    return Console(stderr=True)


def say(text: str, out: Console | None = None) -> None:
    """One plain line: no markup, no highlighting, never wrapped."""
    (out or console).print(escape(text), soft_wrap=True, highlight=False)


# ---------------------------------------------------------------- trial lines


def best_so_far(study: Any) -> str:
    """ "0.3126 (#12, d64/L4/h8)" of a study's crowned trial (its best complete one, or
    after its finalists "0.3131 mean of 3 seeds (#12, ...)"), or "-"."""
    from finscale.hpo import crown

    crowning = crown(study.get_trials(deepcopy=False), study.user_attrs)
    best = crowning.trial
    if best is None or crowning.mean is None:
        return "-"
    arch = best.user_attrs.get(ARCHITECTURE_ATTR, {})
    seeds = f" mean of {crowning.seeds[best.number]} seeds" if crowning.by_finalists else ""
    return f"{crowning.mean:.4f}{seeds} (#{best.number}, {architecture_label(arch)})"


def trial_line(trial: Any, outcome: Any, counts: dict[str, int], best: str) -> str:
    arch = trial.user_attrs.get(ARCHITECTURE_ATTR)
    what = (
        f"{architecture_label(arch)} {arch['param_count']:,} params" if arch else "no architecture"
    )
    value = f"{outcome.value:.4f}" if outcome.value is not None else "-"
    extra = ""
    if DUPLICATE_ATTR in trial.user_attrs:
        extra = f" (duplicate of #{trial.user_attrs[DUPLICATE_ATTR]}, not trained)"
    elif outcome.reason:
        extra = f" ({outcome.reason})"
    seconds = trial.duration.total_seconds() if trial.duration else 0.0
    return (
        f"trial {trial.number:>4} {counts['finished']}/{counts['target']} "
        f"{trial.state.name.lower():<8} "
        f"{value:>7}  best {best}  {what}  {seconds:.1f} s{extra}"
    )


def child_trial_line(study: Any, trial: Any, outcome: Any, counts: dict, worker_index: int) -> None:
    """What a spawned worker prints per trial (it has no progress bar). A module-level
    function: spawned worker processes receive it by reference."""
    say(
        f"[worker {worker_index}] " + trial_line(trial, outcome, counts, best_so_far(study)),
        err_console(),
    )


class Rate:
    """Elapsed time and ETA of work counted in finished units since a start."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.finished_before = 0

    def restart(self, finished_before: int) -> None:
        self.started, self.finished_before = self.clock(), finished_before

    def text(self, finished: int, target: int, eta_s: float | None = None) -> str:
        """ "0:01:02 elapsed, ETA 0:03:00": the ETA is `eta_s` where given (the study's
        duration model), else the mean pace of the units finished since the start."""
        elapsed_s = self.clock() - self.started
        done = finished - self.finished_before
        left = max(0, target - finished)
        if eta_s is None and done > 0:
            eta_s = elapsed_s / done * left
        eta = f"ETA {format_clock(eta_s)}" if eta_s is not None else "ETA -"
        return f"{format_clock(elapsed_s)} elapsed, {eta}"


# ---------------------------------------------------------------- the renderer


class ProgressRenderer:
    """A bar on stderr for the work in hand, with lines above it.

    Used as a context manager. `start` begins a bar (dropping the previous one),
    `update` moves it, `print` writes a line that stays. The scaling study's
    stages call `stage`, `unit` and `done` (the `Reporter` protocol of the scale
    floor) and take their HPO callbacks from `trial_callbacks`.
    """

    def __init__(self, unit: str = "", *, transient: bool = False, disable: bool = False):
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}" + (f" {unit}" if unit else "")),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=err_console(),
            transient=transient,
            disable=disable,
        )
        self.task: Any = None
        self._stage = {"name": "", "total": 0, "count": 0, "current": ""}

    def __enter__(self) -> ProgressRenderer:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def print(self, text: str) -> None:
        self.progress.console.print(escape(text), highlight=False, soft_wrap=True)

    def start(self, description: str, total: int | None, completed: int = 0) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(description, total=total, completed=completed, status="")

    def update(self, **fields: Any) -> None:
        """Move the bar: `completed`, `total`, `description` or `status`."""
        self.progress.update(self.task, **fields)

    # ------------------------------------------------------------ HPO trials

    def trial_callbacks(
        self, spec: StudySpec, prepared: Prepared | None = None, prefix: str = ""
    ) -> dict[str, Any]:
        """`run_study`'s callbacks: a line per trial with the study's elapsed time and
        ETA, the bar moved to the finished count; spawned workers print their own.
        Given the study's `prepared`, the ETA is the duration model's
        (`finscale.hpo.duration.StudyClock`), fitted on the trials as they finish."""
        from finscale.hpo import StudyClock, costs_of

        rate = Rate()
        clock = (
            StudyClock(
                costs_of(
                    prepared,
                    spec.config.train.effective_batch,
                    spec.config.train.samples_per_epoch,
                ),
                spec.config.train.max_epochs,
                spec.workers,
            )
            if prepared is not None
            else None
        )

        def on_start(counts: dict[str, int]) -> None:
            rate.restart(counts["finished"])
            if not prefix:
                self.update(completed=counts["finished"])

        def on_trial(study, trial, outcome, counts, worker_index) -> None:
            line = trial_line(trial, outcome, counts, best_so_far(study))
            eta_s = None
            if clock is not None:
                attrs = trial.user_attrs
                clock.observe(
                    (attrs.get(ARCHITECTURE_ATTR) or {}).get("index"),
                    [epoch["seconds"] for epoch in attrs.get(LEARNING_CURVE_ATTR, [])],
                )
                eta_s = clock.remaining_seconds(spec.trials - counts["finished"])
            text = rate.text(counts["finished"], spec.trials, eta_s)
            self.print(f"{prefix}{line}  [{text}]")
            if not prefix:
                self.update(completed=counts["finished"])

        def on_finalist(run, done, total) -> None:
            self.print(
                f"{prefix}finalist {done}/{total}: trial #{run.number} seed {run.seed}: "
                f"val log loss {run.val_loss:.4f} in {run.epochs} epochs"
            )

        return {
            "on_trial": on_trial,
            "child_on_trial": child_trial_line,
            "on_start": on_start,
            "on_finalist": on_finalist,
        }

    # ------------------------------------------------------------ scaling-study stages

    def stage(self, name: str, units: int) -> None:
        self._stage.update(name=name, total=units, count=0)
        self.start(name, max(units, 1))
        if units == 0:
            self.print(f"[{name}] nothing to do")

    def unit(self, name: str, budget: int | None, horizon: int | None, detail: str) -> None:
        stage = self._stage
        stage["count"] += 1
        where = [f"budget {format_budget(budget)}"] if budget is not None else []
        where += [f"h={horizon}"] if horizon is not None else []
        stage["current"] = f"[{name} {stage['count']}/{stage['total']}] " + " · ".join(
            [*where, detail]
        )
        self.update(description=stage["current"])

    def done(self, seconds: float, skipped: bool) -> None:
        how = "already done, skipped" if skipped else format_clock(seconds)
        self.print(f"{self._stage['current']}: {how}")
        if skipped:
            # A skipped unit says nothing of how long the others take: keep it out of the ETA.
            task = next(t for t in self.progress.tasks if t.id == self.task)
            self.update(total=max(1, (task.total or 1) - 1))
        else:
            self.progress.advance(self.task)

    def hpo_callbacks(self, spec: StudySpec, prepared: Prepared | None = None) -> dict[str, Any]:
        return self.trial_callbacks(spec, prepared, prefix=f"  {spec.study_name} ")
