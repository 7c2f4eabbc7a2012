"""Load rule sets (and their YAML cases) from ``services/evaluation/rulesets``; fail loudly with the file,
the dotted path inside the YAML and the reason.

Layout::

    rulesets/<id>.yaml                     one rule set per file (``extends: <other file>`` copies the
                                           other file's keys; keys written here replace them)
    rulesets/local_features/<province>-<year>.yaml   特色化 indicators per province and year
    rulesets/cases/<id>.yaml               rule tests readable by a policy officer
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.evaluation.domain.facts import EnterpriseFacts
from services.evaluation.domain.plan import compile_ruleset
from services.evaluation.domain.rules import LocalFeatureSet, RuleSet

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "rulesets"


class RuleSetError(Exception):
    def __init__(self, file: Path | str, path: str, reason: str) -> None:
        self.file = str(file)
        self.path = path
        self.reason = reason
        super().__init__(f"{self.file}: at '{path or '<root>'}': {reason}")


def _read_yaml(file: Path) -> Any:
    try:
        with file.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError as exc:
        raise RuleSetError(file, "", "文件不存在 (file not found)") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RuleSetError(file, where, f"YAML 语法错误: {getattr(exc, 'problem', exc)}") from exc


def _raise_validation(file: Path, exc: ValidationError, prefix: str = "") -> None:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    path = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    raise RuleSetError(file, path, f"{msg}{more}") from exc


def _raw_ruleset(file: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    data = _read_yaml(file)
    if not isinstance(data, dict):
        raise RuleSetError(file, "", "规则集文件必须是一个映射 (mapping)")
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str):
        raise RuleSetError(file, "extends", "extends 必须是文件名")
    base_file = (file.parent / base_name).resolve()
    if base_file in seen or base_file == file.resolve():
        raise RuleSetError(file, "extends", f"循环继承: {base_name}")
    base = _raw_ruleset(base_file, (*seen, file.resolve()))
    merged = {k: v for k, v in base.items() if k not in ("metadata",)}
    merged.update(data)
    merged["metadata"] = {**base.get("metadata", {}), **data.get("metadata", {}), "extends": base_name}
    return merged


def load_local_features(directory: Path) -> list[LocalFeatureSet]:
    out: list[LocalFeatureSet] = []
    if not directory.is_dir():
        return out
    for file in sorted(directory.glob("*.yaml")):
        data = _read_yaml(file)
        try:
            out.append(LocalFeatureSet.model_validate(data))
        except ValidationError as exc:
            _raise_validation(file, exc)
    return out


def load_ruleset_file(path: Path, local_features: list[LocalFeatureSet] | None = None) -> RuleSet:
    """Validate and compile one rule-set file. 特色化 configurations are taken from
    ``<dir>/local_features`` unless given."""
    path = Path(path)
    data = _raw_ruleset(path)
    uses_features = any(isinstance(i, dict) and i.get("local_features") for i in data.get("items") or [])
    try:
        rs = RuleSet.model_validate(data)
    except ValidationError as exc:
        _raise_validation(path, exc)
        raise  # pragma: no cover - _raise_validation always raises
    if uses_features and not rs.local_features:
        feats = local_features if local_features is not None else load_local_features(path.parent / "local_features")
        rs = rs.model_copy(update={"local_features": list(feats)})
    expected = path.stem
    if rs.id != expected:
        raise RuleSetError(path, "id", f"id '{rs.id}' 与文件名 '{expected}' 不一致")
    try:
        compile_ruleset(rs)
    except (ValueError, KeyError, AssertionError) as exc:
        raise RuleSetError(path, "", f"编译失败: {exc}") from exc
    return rs


def load_all(directory: Path = DEFAULT_DIR) -> list[RuleSet]:
    directory = Path(directory)
    feats = load_local_features(directory / "local_features")
    out = [load_ruleset_file(f, feats) for f in sorted(directory.glob("*.yaml"))]
    ids = [(r.id, r.version) for r in out]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise RuleSetError(directory, "id", f"规则集 id+version 重复: {sorted(dup)}")
    return out


# ------------------------------------------------------------------------------------------------- cases


class CaseExpect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    eligible: bool
    score: Decimal | None = None
    route: str | None = None
    unmet: list[str] | None = Field(None, description="未满足条件的编码 (完全一致)")
    items: dict[str, Decimal] = Field(default_factory=dict, description="评分项编码 → 得分")
    bands: dict[str, str] = Field(default_factory=dict, description="评分项编码 → 档位 (含边界)")
    category_scores: dict[str, Decimal] = Field(default_factory=dict)
    gaps: dict[str, Decimal] = Field(default_factory=dict, description="差距编码 → 需增加的金额(元)")


class RuleCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    ruleset: str
    as_of: date
    facts: EnterpriseFacts
    expect: CaseExpect
    file: str = ""


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_cases(path: Path) -> list[RuleCase]:
    """A case file: ``ruleset``, ``as_of``, optional ``defaults`` (facts merged under every case) and
    ``cases`` (each: name, facts or indicators, expect)."""
    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise RuleSetError(path, "cases", "用例文件需要 ruleset、as_of 和 cases 列表")
    defaults = data.get("defaults") or {}
    out: list[RuleCase] = []
    for i, raw in enumerate(data["cases"]):
        if not isinstance(raw, dict):
            raise RuleSetError(path, f"cases.{i}", "用例必须是映射")
        raw = dict(raw)
        facts = dict(raw.pop("facts", {}) or {})
        if "indicators" in raw:
            facts["indicators"] = raw.pop("indicators")
        for key in EnterpriseFacts.model_fields:
            if key in raw and key != "indicators":
                facts[key] = raw.pop(key)
        merged = _deep_merge(defaults, facts)
        merged.setdefault("indicators", {})
        doc = {
            "name": raw.pop("name", f"case {i}"),
            "ruleset": raw.pop("ruleset", data.get("ruleset")),
            "as_of": raw.pop("as_of", data.get("as_of")),
            "facts": merged,
            "expect": raw.pop("expect", None),
            "file": str(path),
        }
        if raw:
            raise RuleSetError(path, f"cases.{i}", f"未知字段: {sorted(raw)}")
        try:
            out.append(RuleCase.model_validate(doc))
        except ValidationError as exc:
            _raise_validation(path, exc, f"cases.{i}")
    return out
