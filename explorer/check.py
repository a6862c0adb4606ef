"""The CI gate: dive's rules (lowest efficiency, highest wasted bytes, highest user wasted
percent) over dive-compatible numbers, configured on the command line or in a .dive-ci file."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from explorer.model.text import printable_lines
from explorer.model.errors import SelectionError
from explorer.image.loader import Image

# dive's defaults when no rule is configured at all
DEFAULTS = {"lowestEfficiency": "0.9", "highestWastedBytes": "disabled", "highestUserWastedPercent": "0.1"}
# the size names dive's parser (go-humanize's ParseBytes) takes, each as short and as long
_UNITS = {"": 1, "b": 1, **{name: 1000**power for power, letter in enumerate("kmgtpe", 1) for name in (letter, letter + "b")},
          **{name: 1024**power for power, letter in enumerate("kmgtpe", 1) for name in (letter + "i", letter + "ib")}}


@dataclass
class RuleResult:
    """One rule: its threshold, the image's figure, and whether it passed."""

    rule: str
    threshold: str
    value: float
    passed: bool
    skipped: bool = False


def parse_bytes(text: str) -> int:
    """``20MB`` -> 20000000, ``1.5GiB`` -> 1610612736, ``20,000,000`` -> 20000000 (as dive reads them)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text).replace(",", ""))
    if not m or m.group(2).lower() not in _UNITS:
        raise SelectionError(f"not a size: {text!r} (use e.g. 20MB, 512KiB, 1.5GB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SelectionError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise SelectionError(f"{text} is not between 0 and 1")
    return value


def read_dive_ci(path: str) -> dict[str, str]:
    """The ``rules:`` of a .dive-ci file (a small YAML subset: ``key: value`` under ``rules:``)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise SelectionError(f"{path}: cannot read the rules file ({exc.strerror})") from None
    rules: dict[str, str] = {}
    in_rules = False
    for line in lines:
        text = line.split("#", 1)[0].rstrip()
        if not text.strip():
            continue
        if not text.startswith((" ", "\t")):
            in_rules = text.strip() == "rules:"
            continue
        if in_rules and ":" in text:
            key, _, value = text.strip().partition(":")
            rules[key.strip()] = value.strip().strip("'\"")
    unknown = set(rules) - set(DEFAULTS)
    if unknown:
        raise SelectionError(f"{path}: unknown rule(s) {', '.join(sorted(unknown))} (known: {', '.join(DEFAULTS)})")
    return rules


_OPTIONS = {"lowestEfficiency": "--lowest-efficiency", "highestWastedBytes": "--highest-wasted-bytes",
            "highestUserWastedPercent": "--highest-user-wasted-percent"}


def rules_from(config: str | None, lowest: str | None, wasted: str | None, percent: str | None) -> dict[str, str]:
    """Rules from the command line, over a .dive-ci file, over dive's defaults; each threshold
    checked now, before any image is read, and a wrong one named with where it was written."""
    rules: dict[str, str] = {}
    where: dict[str, str] = {}  # rule -> where it is written: "FILE: rule" or "--option"
    path = config or (".dive-ci" if os.path.isfile(".dive-ci") else None)
    if path:
        rules.update(read_dive_ci(path))
        where.update((rule, f"{path}: {rule}") for rule in rules)
    for key, value in (("lowestEfficiency", lowest), ("highestWastedBytes", wasted), ("highestUserWastedPercent", percent)):
        if value is not None:
            rules[key], where[key] = value, _OPTIONS[key]
    if not rules:
        rules = dict(DEFAULTS)
    for rule, threshold in rules.items():
        try:
            _threshold(rule, threshold)
        except SelectionError as exc:
            raise SelectionError(f"{where[rule]}: {exc}") from None
    return rules


def _threshold(rule: str, text: str) -> float | None:
    """A rule's threshold as a number; None when the rule is disabled."""
    if text.lower() == "disabled":
        return None
    return parse_bytes(text) if rule == "highestWastedBytes" else _fraction(text)


def evaluate(image: Image, rules: dict[str, str]) -> list[RuleResult]:
    """Apply each rule to the image's numbers."""
    e = image.efficiency
    assert e is not None
    out = []
    values = {"lowestEfficiency": e.score, "highestWastedBytes": e.wasted_bytes,
              "highestUserWastedPercent": e.user_wasted_percent}
    for rule, threshold in rules.items():
        if rule not in values:
            continue
        value = values[rule]
        limit = _threshold(rule, threshold)
        if limit is None:  # disabled (its figure all the same, for whoever reads the JSON)
            out.append(RuleResult(rule, threshold, value, True, skipped=True))
        else:
            out.append(RuleResult(rule, threshold, value, value >= limit if rule == "lowestEfficiency" else value <= limit))
    return out


def format_results(image: Image, results: list[RuleResult]) -> str:
    """One line per rule, PASS/FAIL/SKIP and the figure, then the verdict."""
    lines = [f"{', '.join(image.tags) or image.config_digest[:19]}: efficiency {image.efficiency.score:.4%}, "
             f"wasted {image.efficiency.wasted_bytes:,} bytes"]  # type: ignore[union-attr]
    for r in results:
        if r.skipped:  # the only reason a rule is skipped (dive says it the same way)
            lines.append(f"  SKIP: {r.rule}: rule disabled")
            continue
        figure = f"{r.value:,}" if r.rule == "highestWastedBytes" else f"{r.value:.6f}"
        lines.append(f"  {'PASS' if r.passed else 'FAIL'}: {r.rule} (threshold {r.threshold}): {figure}")
    lines.append("Result: PASS" if all(r.passed for r in results) else "Result: FAIL")
    return printable_lines(lines)
