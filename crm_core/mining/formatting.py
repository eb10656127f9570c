"""Rules rendered as text for the chat CLI and the nightly job: a table, CSV or JSON."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from crm_core.mining.records import Rule
from crm_core.terminal import display_width, pad

FORMATS = ("table", "csv", "json")
COLUMNS = ("antecedent", "consequent", "support", "confidence", "lift", "count")

# Separator of the antecedent's items inside one CSV field (the csv module quotes the field
# if an item itself contains a comma, a quote or this character).
CSV_ITEM_SEP = ";"


def format_rules(
    rules: Iterable[Rule], fmt: str = "table", *, headings: Sequence[str] = COLUMNS, empty: str = "(no rules)"
) -> str:
    """Render ``rules`` (``Rule`` records, in the given order) as ``table``, ``csv`` or ``json``.

    - ``table``: aligned columns for reading in a terminal or chat code block; the
      antecedent is shown as ``{a, b}``; support/confidence to 4 decimals, lift to 2. ``headings`` and
      ``empty`` (what an empty table says) are for people: the CLI passes them in its language.
    - ``csv``: a header row then one row per rule; the antecedent's items are joined
      with ``;`` in one field; numbers at full precision.
    - ``json``: one JSON array of objects with keys antecedent (list of items), consequent,
      support, confidence, lift and count. Labels JSON cannot hold are written as strings.
    """
    kind = fmt.lower() if isinstance(fmt, str) else fmt
    if kind not in FORMATS:
        raise ValueError(f"unknown rule format {fmt!r}; expected one of {', '.join(FORMATS)}")
    rules = list(rules)
    if kind == "json":
        return _json(rules)
    if kind == "csv":
        return _csv(rules)
    return _table(rules, headings, empty)


def _json(rules: list[Rule]) -> str:
    # The C accelerator writes the very same text for str labels and plain numbers (the rules of a basket
    # file), without building a dict per rule or importing json: on Groceries' 410 rules that was a tenth
    # of chatcrm mine's whole run. None where it is not built, or for a value json writes otherwise.
    try:
        from crm_core.mining._fastmine import rules_json  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        text = rules_json(rules)
        if text is not None:
            return text
    import json

    objects = [
        {
            "antecedent": list(rule.antecedent),
            "consequent": rule.consequent,
            "support": rule.support,
            "confidence": rule.confidence,
            "lift": rule.lift,
            "count": rule.count,
        }
        for rule in rules
    ]
    return json.dumps(objects, ensure_ascii=False, default=str)


def _csv(rules: list[Rule]) -> str:
    # Imported here: `chatcrm mine` prints one format, and start-up counts (csv and io: 0.7 ms).
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for rule in rules:
        writer.writerow(
            (
                CSV_ITEM_SEP.join(map(str, rule.antecedent)),
                rule.consequent,
                repr(rule.support),
                repr(rule.confidence),
                repr(rule.lift),
                rule.count,
            )
        )
    return out.getvalue()


def _table(rules: list[Rule], headings: Sequence[str], empty: str) -> str:
    if not rules:
        return empty + "\n"
    rows = [
        (
            "{" + ", ".join(map(str, rule.antecedent)) + "}",
            str(rule.consequent),
            f"{rule.support:.4f}",
            f"{rule.confidence:.4f}",
            f"{rule.lift:.2f}",
            str(rule.count),
        )
        for rule in rules
    ]
    widths = [max(display_width(column), *(display_width(row[i]) for row in rows)) for i, column in enumerate(headings)]
    # Text columns left-aligned, numbers right-aligned.
    align = ("<", "<", ">", ">", ">", ">")

    def line(cells) -> str:
        return "  ".join(pad(cell, w, a) for cell, a, w in zip(cells, align, widths)).rstrip()

    lines = [line(headings), line("-" * w for w in widths)]
    lines.extend(line(row) for row in rows)
    return "\n".join(lines) + "\n"
