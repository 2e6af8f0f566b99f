"""The run-kind table: every kind the schema allows has an entry, and every entry it names
(executor, typed config, encoder loader) can be reached — parametrised over the table, so a new
kind is tested automatically."""

from __future__ import annotations

import dataclasses

import pytest

from sslviz.core.errors import UserError
from sslviz.store import RUN_KINDS
from sslviz.store.kinds import KINDS, run_kind


@pytest.mark.parametrize("name", RUN_KINDS)
def test_every_kind_reaches_its_executor_and_config_type(name: str) -> None:
    kind = run_kind(name)
    assert callable(kind.load_executor())
    config_type = kind.load("config_type")
    assert dataclasses.is_dataclass(config_type)
    if kind.has_encoder:
        assert callable(kind.load("encoder_loader"))
    else:
        with pytest.raises(UserError, match="no encoder loader"):
            kind.load("encoder_loader")


@pytest.mark.parametrize("name", RUN_KINDS)
def test_a_kinds_typed_config_round_trips_and_ignores_extra_keys(name: str) -> None:
    kind = run_kind(name)
    config_type = kind.load("config_type")
    required = {
        f.name: "x"
        for f in dataclasses.fields(config_type)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    typed = kind.typed_config({**required, "a key from a newer version": 1})
    assert kind.typed_config(typed.to_dict()) == typed


def test_an_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(UserError, match="known: rotation"):
        run_kind("nope")
    assert tuple(KINDS) == RUN_KINDS
