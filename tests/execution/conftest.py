"""The execution machinery is tested on real studies: the same small study specs the
search's tests use."""

from tests.hpo.conftest import make_spec, store_dir

__all__ = ["make_spec", "store_dir"]
