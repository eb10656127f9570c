"""The whole-process peer of ``chatcrm mine --baskets FILE --format json``: the same rules from pyfim.

    python benchmarks/pyfim_mine.py FILE MIN_SUPPORT MIN_CONFIDENCE [MAX_LEN]

Reads the basket file as ``read_baskets`` does for FIMI and plain CSV files (whitespace- or
comma-separated, blank line = empty basket), asks pyfim (Borgelt's C) for the rules with
arules' definitions (``mode="o"``, the same integer support threshold) and prints them as the
same JSON array, in the same order and with the numbers computed from the same counts, so
the two outputs can be compared byte for byte. Only the standard library and ``fim`` are
imported: this is what a user of pyfim would write.
"""

from __future__ import annotations

import json
import math
import sys


def main(argv: list[str]) -> None:
    path, min_support, min_confidence = argv[0], float(argv[1]), float(argv[2])
    max_len = int(argv[3]) if len(argv) > 3 else 10
    import fim

    with open(path, encoding="utf-8-sig") as handle:
        text = handle.read()
    sep = "," if "," in text else None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if sep is None:
        baskets = [line.split() for line in lines]
    else:
        baskets = [[item.strip() for item in line.split(sep) if item.strip()] for line in lines]
    n = len(baskets)
    # The threshold arules and chatcrm derive: ceil(support x baskets), with a relative slack
    # so that a product that is a whole number in decimal stays that number.
    count = max(1, math.ceil(min_support * n * (1 - 1e-9)))
    # Rules with one head item (pyfim's rules always have one): count(body + head), count(body), count(head).
    found = fim.arules(
        baskets, supp=-count, conf=100 * min_confidence * (1 - 1e-9), zmin=2, zmax=max_len, mode="o", report="abh"
    )
    del baskets
    rows = []
    for head, body, both, body_count, head_count in found:
        confidence = both / body_count
        if confidence < min_confidence * (1 - 1e-9):
            continue
        rows.append((len(body), sorted(body), head, both, confidence, head_count))
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    print(
        json.dumps(
            [
                {
                    "antecedent": body,
                    "consequent": head,
                    "support": both / n,
                    "confidence": confidence,
                    "lift": confidence / (head_count / n),
                    "count": both,
                }
                for _, body, head, both, confidence, head_count in rows
            ],
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
