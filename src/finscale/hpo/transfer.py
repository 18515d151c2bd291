"""Training values carried over from one study to another (`search.transfer`).

Under muP and CompleteP the optimal training values of the base shape are the
optimal ones of every width and depth (the parametrization rescales them per
layer), so a larger budget need not search them again: its study searches the
architecture only, each training range pinned to the source winner's value, in
`search.transferred_trials` trials. The pinned config is the study's config, so a
worker that joins the study searches the same; the `Transfer` record on the
study says what was carried over and from where.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from finscale.config import StudyConfig
from finscale.errors import InputError
from finscale.hpo.space import INTEGER_PARAMS, TRAINING_PARAMS


@dataclass(frozen=True)
class Transfer:
    """The training values one study took from another study's winner."""

    from_study: str
    from_budget: int
    from_trial: int
    values: Mapping[str, Any]  # one value per TRAINING_PARAMS name
    parametrization: str
    base_shape: tuple[int, int]  # (d_model, n_layers) of the parametrization

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["values"] = dict(self.values)
        out["base_shape"] = list(self.base_shape)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transfer:
        return cls(
            from_study=data["from_study"],
            from_budget=int(data["from_budget"]),
            from_trial=int(data["from_trial"]),
            values=dict(data["values"]),
            parametrization=data["parametrization"],
            base_shape=tuple(data["base_shape"]),
        )


def transfer_of(
    from_study: str,
    from_budget: int,
    from_trial: int,
    params: Mapping[str, Any],
    config: StudyConfig,
) -> Transfer:
    """The transfer of a winner's training values (`params`, as a trial stores them)
    under `config`'s parametrization."""
    missing = [name for name in TRAINING_PARAMS if name not in params]
    if missing:
        raise InputError(
            f"trial {from_trial} of {from_study} has no {', '.join(missing)} to transfer",
            "search.transfer",
        )
    values = {
        name: int(params[name]) if name in INTEGER_PARAMS else float(params[name])
        for name in TRAINING_PARAMS
    }
    return Transfer(
        from_study,
        from_budget,
        from_trial,
        values,
        config.model.parametrization,
        config.model.base_shape,
    )


def transferred_config(config: StudyConfig, transfer: Transfer) -> StudyConfig:
    """`config` with every training range pinned to the transferred value and the
    transferred study's trial count: the architecture is all that is left to search."""
    pinned = {name: (transfer.values[name], transfer.values[name]) for name in TRAINING_PARAMS}
    search = config.search.model_copy(update={**pinned, "trials": config.search.transferred_trials})
    return config.model_copy(update={"search": search})


def check_same_transfer(
    stored: Mapping[str, Any] | None, transfer: Transfer | None, study_name: str
) -> None:
    """Refuse to resume a study with other transferred values than it was started with
    (its source's winner changed): its trials would mix two searches."""
    if stored is None and transfer is None:
        return
    if stored is None or transfer is None or dict(stored["values"]) != dict(transfer.values):
        was = (
            "no transferred values"
            if stored is None
            else (f"the values of trial {stored['from_trial']} of {stored['from_study']}")
        )
        now = (
            "none"
            if transfer is None
            else (f"those of trial {transfer.from_trial} of {transfer.from_study}")
        )
        raise InputError(
            f"study {study_name} was searched with {was}, this run would give it {now}; "
            "use another run directory, or delete the study to search it again",
            "search.transfer",
        )
