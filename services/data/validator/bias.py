"""Bias: is the output associated with which sensitive-term group an input mentions?

For each group of ``bias_terms.TERM_GROUPS`` (gender, age, nationality/ethnicity, religion,
disability), an example belongs to subgroup s when its words name s and no other subgroup of the
group (examples naming two subgroups are left out). Rows of the contingency table are the
subgroups named by at least ``MIN_MENTIONS`` examples; when only one subgroup qualifies it is
compared with the examples that name none of the group. Columns are outputs. A chi-square test of
independence (scipy.stats.chi2_contingency) gives p; Cramér's V gives the effect size. A warning
is raised when p < alpha and V >= ``MIN_EFFECT`` (large datasets make tiny effects significant);
severity: V >= 0.5 high, >= 0.3 medium, else low.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy.stats import chi2_contingency

from trainhouse.data.text import words
from trainhouse.data.validator.bias_terms import TERM_GROUPS, TERM_INDEX
from trainhouse.data.validator.report import Finding, percent

MIN_MENTIONS = 5
MIN_EFFECT = 0.1
_LABELS = {"nationality_ethnicity": "nationality/ethnicity"}


def subgroup_labels(inputs: Sequence[str]) -> dict[str, list[str | None]]:
    """group -> per example: the one subgroup it names, "" when it names several, None when none."""
    labels: dict[str, list[str | None]] = {g: [None] * len(inputs) for g in TERM_GROUPS}
    for i, text in enumerate(inputs):
        named: dict[str, set[str]] = {}
        for w in words(text):
            hit = TERM_INDEX.get(w)
            if hit:
                named.setdefault(hit[0], set()).add(hit[1])
        for group, subs in named.items():
            labels[group][i] = next(iter(subs)) if len(subs) == 1 else ""
    return labels


def check(inputs: Sequence[str], outputs: Sequence[str], alpha: float) -> list[Finding]:
    findings: list[Finding] = []
    for group, per_example in subgroup_labels(inputs).items():
        mentions = Counter(s for s in per_example if s)
        rows = sorted(s for s, c in mentions.items() if c >= MIN_MENTIONS)
        none_label = f"no {_LABELS.get(group, group)} terms"
        if len(rows) == 1:
            if sum(1 for s in per_example if s is None) < MIN_MENTIONS:
                continue
            rows.append(none_label)
            per_example = [none_label if s is None else s for s in per_example]
        if len(rows) < 2:
            continue
        members = [i for i, s in enumerate(per_example) if s in rows]
        cols = sorted({outputs[i] for i in members})
        if len(cols) < 2:
            continue
        r_idx = {s: j for j, s in enumerate(rows)}
        c_idx = {o: j for j, o in enumerate(cols)}
        table = np.zeros((len(rows), len(cols)))
        for i in members:
            table[r_idx[per_example[i]], c_idx[outputs[i]]] += 1
        chi2, p, _dof, expected = chi2_contingency(table)
        n = table.sum()
        v = math.sqrt(chi2 / (n * (min(table.shape) - 1)))
        if not (p < alpha and v >= MIN_EFFECT):
            continue
        # The cell that deviates most from independence explains the warning.
        ratio = np.where(table >= 3, (table - expected) / expected, -np.inf)
        r, c = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        sub, out = rows[r], cols[c]
        share_in = table[r, c] / table[r].sum()
        rest = n - table[r].sum()
        share_rest = (table[:, c].sum() - table[r, c]) / rest if rest else 0.0
        label = _LABELS.get(group, group)
        who = sub if sub == none_label else f"{sub} terms"
        findings.append(Finding(
            "bias",
            f"Outputs depend on {label} terms (chi-square {chi2:.1f}, p={p:.2g}, Cramér's V={v:.2f}): "
            f"'{out}' is {percent(share_in)} of examples naming {who} vs {percent(share_rest)} of the others",
            "high" if v >= 0.5 else ("medium" if v >= 0.3 else "low"),
            f"Balance how often {label} terms appear with each output, e.g. add copies of the examples "
            f"with the {label} terms swapped",
            count=int(n),
            example_indexes=[i for i in members if per_example[i] == sub and outputs[i] == out],
            details={"group": group, "subgroup": sub, "output": out, "chi2": f"{chi2:.4f}", "p_value": f"{p:.3g}",
                     "cramers_v": f"{v:.4f}", "subgroups": ",".join(rows)}))
    return findings
