from __future__ import annotations

from pathlib import Path

import pytest

from cliplab.core.parameters import Parameter, ParameterError, parse_assignments, read_parameters, resolve


def test_reads_declarations_in_order(demo_project: Path) -> None:
    params = read_parameters(demo_project / "notebooks" / "demo.py")
    assert list(params) == ["smoke", "n", "scale", "label", "fail", "sleep_s", "die", "out_dir"]
    assert params["n"] == Parameter("n", "int", 3, "how many numbers")
    assert params["scale"].default == 1.5 and params["label"].type == "str"


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [("int", "7", 7), ("float", "0.25", 0.25), ("bool", "true", True), ("bool", "No", False),
     ("str", "abc", "abc"), ("list[int]", "1,2,3", [1, 2, 3]), ("list[float]", "[0.5, 1]", [0.5, 1.0]),
     ("list[str]", ["a", "b"], ["a", "b"]), ("int", 4, 4), ("float", 3, 3.0)],
)
def test_coerce_accepts_valid_values(kind: str, raw: object, expected: object) -> None:
    assert Parameter("p", kind, None, "").coerce(raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw"),
    [("int", "seven"), ("int", 2.5), ("int", True), ("bool", "maybe"), ("float", "x"), ("list[int]", "1,a"),
     ("str", 3), ("list[int]", 5)],
)
def test_coerce_rejects_ill_typed_values(kind: str, raw: object) -> None:
    with pytest.raises(ParameterError, match="parameter 'p' expects"):
        Parameter("p", kind, None, "").coerce(raw)


def test_unknown_parameter_lists_the_valid_ones(demo_project: Path) -> None:
    declared = read_parameters(demo_project / "notebooks" / "demo.py")
    with pytest.raises(ParameterError) as err:
        resolve(declared, {"seedz": "1"})
    assert "unknown parameter 'seedz'" in str(err.value)
    assert "n (int)" in str(err.value) and "scale (float)" in str(err.value)
    assert "out_dir" not in str(err.value)


def test_layers_override_in_order(demo_project: Path) -> None:
    declared = read_parameters(demo_project / "notebooks" / "demo.py")
    values = resolve(declared, {"n": 5}, {"n": "9", "label": "y"})
    assert values["n"] == 9 and values["label"] == "y" and values["scale"] == 1.5


def test_out_dir_is_reserved_for_the_runner(demo_project: Path) -> None:
    declared = read_parameters(demo_project / "notebooks" / "demo.py")
    with pytest.raises(ParameterError, match="set by the runner"):
        resolve(declared, {"out_dir": "/tmp/x"})


def test_parse_assignments() -> None:
    assert parse_assignments(["a=1", "b = x=y"]) == {"a": "1", "b": " x=y"}
    with pytest.raises(ParameterError, match="key=value"):
        parse_assignments(["novalue"])


@pytest.mark.parametrize(
    "cell",
    ["x = 1  # no annotation", "x: dict = {}  # unsupported", "x: int = 'a'  # wrong default", "import os"],
)
def test_malformed_parameters_cell_is_rejected(tmp_path: Path, cell: str) -> None:
    nb = tmp_path / "bad.py"
    nb.write_text(f'# %% tags=["parameters"]\n{cell}\n')
    with pytest.raises(ParameterError):
        read_parameters(nb)


def test_missing_parameters_cell(tmp_path: Path) -> None:
    nb = tmp_path / "none.py"
    nb.write_text("# %%\nx = 1\n")
    with pytest.raises(ParameterError, match="exactly one cell tagged 'parameters'"):
        read_parameters(nb)
