import os

import pytest

from finscale.atomic import check_file, check_folder, write_json_atomic, write_text_atomic
from finscale.errors import InputError


def test_written_files_get_the_mode_of_a_plain_open(tmp_path):
    previous = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "report.html", "<html></html>")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = write_json_atomic(tmp_path / "a.json", {"v": 1})

    class Unserialisable:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_json_atomic(path, {"v": Unserialisable()})
    assert path.read_text().strip().startswith("{") and '"v": 1' in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_check_folder_refuses_a_file_a_path_under_one_and_a_folder_without_write(
    tmp_path, monkeypatch
):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert check_folder(tmp_path / "new" / "run", "run directory", "--run-dir") == (
        tmp_path / "new" / "run"
    )
    with pytest.raises(InputError, match=r"run directory .*afile is a file") as caught:
        check_folder(afile, "run directory", "--run-dir")
    assert caught.value.where == "--run-dir"
    with pytest.raises(InputError, match=r"cannot be made: .*afile is a file"):
        check_folder(afile / "run", "run directory", "--run-dir")
    # Tests run as root, whom no permission bit stops: the kernel's answer is faked.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(InputError, match=r"data store .*store cannot be made: .* not writable"):
        check_folder(tmp_path / "store", "data store", "--store")
    with pytest.raises(InputError, match=r"is not writable \(--store\)"):
        check_folder(tmp_path, "data store", "--store")


def test_check_file_refuses_a_folder_and_a_file_whose_folder_cannot_be_made(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match=r"output file .* is a folder"):
        check_file(tmp_path, "output file", "--out")
    with pytest.raises(InputError, match=r"output file .*afile/x.json cannot be made: .*afile"):
        check_file(tmp_path / "afile" / "x.json", "output file", "--out")
    assert check_file(tmp_path / "new" / "x.json", "output file", "--out").name == "x.json"
