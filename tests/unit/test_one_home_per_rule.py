"""Issue 16 item 4: SHA-256 streaming, the severity order and the stage registry each have
one home.

The helpers are checked for what they compute; the source scan fails when a second copy
of a rule comes back (an order written out as a literal, a hash loop of its own).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import io
from pathlib import Path

import pytest

import healthpipe
from healthpipe import routing
from healthpipe.adapters.local.object_store import FolderObjectStore
from healthpipe.domain import clinical as cl
from healthpipe.orchestration.local import default_handlers
from healthpipe.ports import HASH_CHUNK, sha256_chunks, sha256_file

SRC = Path(healthpipe.__file__).resolve().parent
SEVERITY_WORDS = {"low", "medium", "high"}


def modules() -> list[tuple[str, ast.Module]]:
    return [
        (str(path.relative_to(SRC)), ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(SRC.rglob("*.py"))
    ]


# --- SHA-256 streaming ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, HASH_CHUNK - 1, HASH_CHUNK, 2 * HASH_CHUNK + 7])
def test_sha256_file_is_the_digest_and_size_of_the_bytes(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert sha256_file(path) == (hashlib.sha256(data).hexdigest(), size)


def test_sha256_chunks_hands_every_chunk_on_in_order() -> None:
    chunks = [b"abc", b"", b"de", b"f" * 10]
    sink = io.BytesIO()
    digest, size = sha256_chunks(iter(chunks), sink.write)
    assert sink.getvalue() == b"".join(chunks)
    assert (digest, size) == (hashlib.sha256(b"".join(chunks)).hexdigest(), 15)


def test_the_folder_store_hashes_with_the_one_helper(tmp_path: Path) -> None:
    store = FolderObjectStore(tmp_path / "bucket")
    source = tmp_path / "a.csv"
    source.write_bytes(b"event_time,user_id\n" * 1000)
    store.put_file("raw/a.csv", source, "text/csv")
    obj = store.materialize("raw/a.csv", tmp_path / "work")
    assert (obj.sha256, obj.size) == sha256_file(source)


def test_only_ports_streams_a_sha256() -> None:
    hashing = sorted(
        name
        for name, tree in modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "sha256"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "hashlib"
    )
    assert hashing == ["ports.py"]


# --- severity order ---------------------------------------------------------------------------


def test_the_severity_order_is_the_clinical_one() -> None:
    assert cl.SEVERITY_LABELS == ("none", "low", "medium", "high")
    assert cl.SEVERITY_RANK == {"none": 0, "low": 1, "medium": 2, "high": 3}
    assert cl.FINDING_SEVERITIES == ("high", "medium", "low")
    assert [cl.severity_label(n) for n in range(4)] == list(cl.SEVERITY_LABELS)
    assert cl.worst_severity({}) == "none"
    assert cl.worst_severity({"high": 0, "low": 2, "medium": 1}) == "medium"
    assert cl.worst_severity({"high": 1, "none": 5}) == "high"


def _spells_the_order(value: ast.expr) -> bool:
    """A literal that writes the severity order out: a tuple or list of the labels, a
    label -> rank dict or a rank -> label dict."""
    if isinstance(value, ast.Tuple | ast.List):
        words = [e.value if isinstance(e, ast.Constant) else None for e in value.elts]
        return SEVERITY_WORDS <= set(words) <= {*SEVERITY_WORDS, "none"}
    if isinstance(value, ast.Dict):
        keys = [k.value for k in value.keys if isinstance(k, ast.Constant)]
        values = [v.value for v in value.values if isinstance(v, ast.Constant)]
        pairs = set(zip(keys, values, strict=False))
        by_label = all(isinstance(v, int) for v in values) and set(keys) >= SEVERITY_WORDS
        by_rank = all(isinstance(k, int) for k in keys) and set(values) >= SEVERITY_WORDS
        return bool(pairs) and (by_label or by_rank)
    return False


def test_no_module_but_clinical_writes_the_severity_order_out() -> None:
    spelled = sorted(
        f"{name}:{node.lineno}"
        for name, tree in modules()
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and node.value is not None
        and _spells_the_order(node.value)
    )
    assert spelled == []


# --- the stage registry -----------------------------------------------------------------------


def test_every_route_target_but_alert_has_one_stage_function() -> None:
    targets = {route.target for route in routing.ROUTES}
    assert set(routing.STAGE_FUNCTIONS) == targets - {routing.ALERT}
    for target, path in routing.STAGE_FUNCTIONS.items():
        module, _, name = path.partition(":")
        assert module == f"healthpipe.stages.{target}"
        assert callable(getattr(importlib.import_module(module), name))


def test_the_dispatcher_and_the_lambdas_run_the_registered_stages() -> None:
    from healthpipe.lambdas import analyzer, ingestor, notifier

    handlers = default_handlers()
    for target, path in routing.STAGE_FUNCTIONS.items():
        module, _, name = path.partition(":")
        assert handlers[target] is getattr(importlib.import_module(module), name)
    assert set(handlers) == {*routing.STAGE_FUNCTIONS, routing.ALERT}
    lambda_stages = {
        **ingestor._function.stages,
        **analyzer._function.stages,
        **notifier._function.stages,
    }
    assert lambda_stages == routing.STAGE_FUNCTIONS


def test_no_module_but_routing_maps_stage_names_to_stage_functions() -> None:
    paths = set(routing.STAGE_FUNCTIONS.values())
    registries = sorted(
        f"{name}:{node.lineno}"
        for name, tree in modules()
        if name != "routing.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in paths
    )
    assert registries == []


# --- NEWS2 normal bands -----------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["heart_rate", "spo2", "temp_c", "systolic_bp"])
def test_the_normal_range_is_the_news2_0_band(metric: str) -> None:
    lo, hi = cl.normal_range(metric)
    step = cl.RESOLUTION[metric]
    assert cl.news2_score(metric, lo) == 0 and cl.news2_score(metric, lo - step) > 0
    if hi < float("inf"):
        assert cl.news2_score(metric, hi) == 0 and cl.news2_score(metric, hi + step) > 0


def test_the_diastolic_normal_range_ends_below_stage_1() -> None:
    lo, hi = cl.normal_range("diastolic_bp")
    assert lo == float("-inf")
    assert not cl.outside_normal_band("diastolic_bp", hi)
    assert cl.outside_normal_band("diastolic_bp", hi + 1)


def test_the_report_shades_and_labels_the_clinical_normal_range() -> None:
    from healthpipe.report.model import NORMAL_BANDS

    for metric, (lo, hi, _label) in NORMAL_BANDS.items():
        clinical_lo, clinical_hi = cl.normal_range(metric)
        assert lo == clinical_lo or clinical_lo == float("-inf")
        assert hi == clinical_hi or clinical_hi == float("inf")
    assert NORMAL_BANDS["heart_rate"][2] == "51–90 bpm (NEWS2 0)"
    assert NORMAL_BANDS["spo2"][:2] == (96, 100) and NORMAL_BANDS["spo2"][2].startswith("≥ 96 %")
    assert NORMAL_BANDS["temp_c"][2] == "36.1–38.0 °C (NEWS2 0)"
    assert NORMAL_BANDS["diastolic_bp"][2] == "< 80 mmHg (ACC/AHA normal)"
