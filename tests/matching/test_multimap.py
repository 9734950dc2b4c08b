"""The packed maps behave as the dicts they replace, across pickling at any point."""

from __future__ import annotations

import pickle
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.multimap import ListMultimap, SetMultimap

_PHONES = st.sampled_from(["+999100", "+999101", "+999102", "+999200", "+99930", "+9994"])
_OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["append", "read", "delete", "replace", "pickle", "pack"]),
        st.integers(0, 12),
        st.integers(0, 1000),
    ),
    max_size=60,
)


def _check_same(packed: Any, model: dict[Any, Any]) -> None:
    assert len(packed) == len(model)
    assert sorted(packed) == sorted(model)
    assert {key: packed[key] for key in packed} == model
    assert dict(packed.items()) == model


@settings(max_examples=150, deadline=None)
@given(_OPERATIONS)
def test_list_multimap_matches_a_defaultdict(operations: list[tuple[str, int, int]]) -> None:
    packed: ListMultimap[int] = ListMultimap(create_missing=True)
    model: defaultdict[int, list[int]] = defaultdict(list)
    for operation, key, value in operations:
        if operation == "append":
            packed[key].append(value)
            model[key].append(value)
        elif operation == "read":
            assert (key in packed) == (key in model)
            assert packed.peek(key) == model.get(key, [])
            assert packed.get(key) == model.get(key)
        elif operation == "delete":
            if key in model:
                del packed[key], model[key]
            else:
                with pytest.raises(KeyError):
                    del packed[key]
        elif operation == "replace":
            packed[key] = [value]
            model[key] = [value]
        elif operation == "pack":
            packed.pack()
        else:
            packed = pickle.loads(pickle.dumps(packed))
        _check_same(packed, dict(model))


@settings(max_examples=150, deadline=None)
@given(_OPERATIONS, st.lists(_PHONES, min_size=13, max_size=13))
def test_set_multimap_with_string_keys_matches_a_dict(
    operations: list[tuple[str, int, int]], names: list[str]
) -> None:
    packed: SetMultimap[str] = SetMultimap()
    model: dict[str, set[int]] = {}
    for operation, number, value in operations:
        key = names[number]
        if operation == "append":
            packed.setdefault(key, set()).add(value)
            model.setdefault(key, set()).add(value)
        elif operation == "read":
            assert packed.peek(key) == sorted(model.get(key, ()))
            assert packed.get(key) == model.get(key)
            if key not in model:
                with pytest.raises(KeyError):
                    packed[key]
        elif operation == "delete":
            assert packed.pop(key, None) == model.pop(key, None)
        elif operation == "replace":
            packed[key] = {value, value + 1}
            model[key] = {value, value + 1}
        elif operation == "pack":
            packed.pack()
        else:
            packed = pickle.loads(pickle.dumps(packed))
        _check_same(packed, model)


def test_a_read_entry_is_the_one_that_changes() -> None:
    """An entry read from the packed base is a live container, as a dict's would be."""
    packed: ListMultimap[int] = ListMultimap(create_missing=True)
    packed[7].extend([1, 2])
    packed = pickle.loads(pickle.dumps(packed))
    packed[7].append(3)
    assert packed[7] == [1, 2, 3]
    assert pickle.loads(pickle.dumps(packed))[7] == [1, 2, 3]


def test_reading_a_missing_key_creates_only_where_asked() -> None:
    created: ListMultimap[str] = ListMultimap(create_missing=True)
    assert created["+9991"] == [] and "+9991" in created and len(created) == 1
    plain: SetMultimap[int] = SetMultimap()
    with pytest.raises(KeyError):
        plain[3]
    assert plain.get(3) is None and len(plain) == 0
    assert "a string" not in plain  # a key of another kind is simply absent


def test_peek_reads_without_unpacking_and_pack_releases_the_containers() -> None:
    """What keeps a million-ad build small: reading for linking unpacks nothing, and a
    large batch's containers go back into the arrays."""
    packed: ListMultimap[int] = ListMultimap(create_missing=True)
    for number in range(1000):
        packed[number % 300].append(number)
    assert len(packed._changed) == 300
    packed.pack()
    assert not packed._changed and len(packed) == 300
    assert packed.peek(7) == [7, 307, 607, 907] and packed.peek(300) == []
    assert not packed._changed and 300 not in packed
    packed[7].append(1007)  # a write unpacks that one entry only
    assert list(packed._changed) == [7] and packed.peek(7)[-1] == 1007


def test_packs_into_flat_arrays() -> None:
    """What makes reading fast: the pickled state holds arrays, not an object per key."""
    packed: ListMultimap[int] = ListMultimap(create_missing=True)
    for number in range(1000):
        packed[number % 300].append(number)
    state = packed.__getstate__()
    assert isinstance(state["keys"], np.ndarray) and isinstance(state["values"], np.ndarray)
    assert state["values"].tolist()[:4] == [0, 300, 600, 900]
    strings: SetMultimap[str] = SetMultimap()
    strings["+9992"] = {2}
    strings["+9991"] = {1}
    assert strings.__getstate__()["keys"] == "+9991\x1f+9992"


def test_a_damaged_state_is_refused() -> None:
    packed: ListMultimap[int] = ListMultimap()
    packed[1] = [1, 2]
    state = packed.__getstate__()
    state["offsets"] = np.array([0, 5], dtype=np.int64)
    with pytest.raises(ValueError, match="do not agree"):
        ListMultimap().__setstate__(state)
