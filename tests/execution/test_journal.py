"""A journal whose last line a crash tore resumes with every finished trial, a copy of
it kept; damage anywhere else is refused with the file and the line."""

import logging

import optuna
import pytest
from optuna.trial import TrialState

from finscale.errors import InputError
from finscale.execution.journal import TORN_COPY_INFIX, repair_torn_tail, scan_journal
from finscale.execution.storage import open_storage
from finscale.hpo.study import run_study
from finscale.hpo.trial_records import read_trial_records

LINES = [b'{"op_code": 0, "worker_id": "a"}\n', b'{"op_code": 1}\n', b'{"op_code": 2}\n']


def journal(tmp_path, *lines: bytes):
    path = tmp_path / "study.journal"
    path.write_bytes(b"".join(lines))
    return path


def copies(path):
    return sorted(path.parent.glob(f"{path.name}{TORN_COPY_INFIX}*"))


def torn_warnings(caplog):
    return [r for r in caplog.records if r.levelno == logging.WARNING and "torn" in r.message]


def test_a_whole_journal_is_left_alone(tmp_path, caplog):
    path = journal(tmp_path, *LINES)
    assert scan_journal(path).bad_line is None
    assert repair_torn_tail(path) is None
    assert path.read_bytes() == b"".join(LINES) and not copies(path)
    assert not torn_warnings(caplog)


@pytest.mark.parametrize(
    "tail",
    [b'{"op_code": 3, "val', b'{"op_code": 3, "val\n', b"\n", b'{"op_code": 3}', b"\xff\xfe"],
    ids=["cut", "cut-with-newline", "blank", "no-newline", "not-utf8"],
)
def test_a_torn_last_line_is_dropped_and_the_journal_kept_beside_it(tmp_path, caplog, tail):
    path = journal(tmp_path, *LINES, tail)
    torn = repair_torn_tail(path)
    assert torn is not None and torn.dropped_bytes == len(tail)
    assert path.read_bytes() == b"".join(LINES)
    assert copies(path) == [torn.copy] and torn.copy.read_bytes() == b"".join(LINES) + tail
    (warning,) = torn_warnings(caplog)
    assert str(path) in warning.message and str(torn.copy) in warning.message
    assert f"{len(tail)} bytes" in warning.message
    assert repair_torn_tail(path) is None  # repaired once


@pytest.mark.parametrize("bad", [b'{"op_code": 1\n', b"\n", b"garbage\n"])
def test_damage_before_the_last_line_is_refused_with_file_and_line(tmp_path, bad):
    path = journal(tmp_path, LINES[0], bad, LINES[2])
    before = path.read_bytes()
    with pytest.raises(InputError) as caught:
        open_storage(str(path))
    assert caught.value.where == f"{path}, line 2"
    assert "line 2 of 3" in caught.value.what and "backup" in caught.value.what
    assert path.read_bytes() == before and not copies(path)


def test_a_torn_study_resumes_with_every_finished_trial(make_spec, caplog):
    spec = make_spec(**{"search.trials": 2})
    run_study(spec)
    path = spec.run_dir / "study.journal"
    finished_before = [
        (t.number, t.value, t.params)
        for t in optuna.load_study(study_name="tiny", storage=open_storage(str(path))).trials
        if t.state.is_finished()
    ]
    # A crash halfway through appending one more log line.
    last = path.read_bytes().splitlines(keepends=True)[-1]
    with open(path, "ab") as handle:
        handle.write(last[: len(last) // 2])
    torn = path.read_bytes()

    resumed = run_study(make_spec(**{"search.trials": 3}))

    assert resumed.finished and resumed.counts["finished"] == 3
    trials = optuna.load_study(study_name="tiny", storage=open_storage(str(path))).trials
    kept = [(t.number, t.value, t.params) for t in trials if t.number < len(finished_before)]
    assert kept == finished_before
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 3
    (copy,) = copies(path)
    assert copy.read_bytes() == torn
    assert len(torn_warnings(caplog)) == 1
    assert len(read_trial_records(spec.run_dir)) >= 3
