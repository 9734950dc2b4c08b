"""How well predicted profiles recover the advertisers behind ads: pairwise and B-cubed.

Every measure comes from the contingency table of (advertiser, profile) counts, never
from enumerating pairs, so a million ads take about a second. With ``n_ij`` ads of
advertiser ``i`` in profile ``j``, ``a_i`` ads per advertiser and ``b_j`` per profile:

* pairwise: correct pairs ``Σ C(n_ij, 2)`` over predicted pairs ``Σ C(b_j, 2)``
  (precision) and over true pairs ``Σ C(a_i, 2)`` (recall);
* B-cubed: ``Σ n_ij² / b_j`` (precision) and ``Σ n_ij² / a_i`` (recall), over ``N``.

Empty ratios: a ratio whose denominator is zero is 1.0 (nothing was claimed, so nothing
was wrong; nothing was to be found, so nothing was missed). All singletons predicted on
a truth with pairs therefore scores pairwise precision 1.0, recall 0.0, F1 0.0; a
perfect prediction scores 1.0 everywhere, singletons included; an empty input too.
F1 is 0.0 when precision and recall are both 0.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["QualityReport", "align_table", "evaluate_linkage", "format_table"]

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class QualityReport:
    """Linkage quality of one predicted clustering against the truth.

    ``impure_profiles`` counts predicted profiles holding ads of two or more advertisers;
    ``merged_profiles``, stricter, those holding two or more advertisers with at least two
    ads each in the profile (a merge of two real profiles, not a stray ad).
    """

    ads: int
    advertisers: int
    profiles: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    impure_profiles: int
    merged_profiles: int


def _codes(labels: Sequence[Hashable] | npt.NDArray[np.generic]) -> I64:
    """Dense integer codes ``0..k-1`` for labels (any hashables, or a numpy array)."""
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "iub":
        return np.unique(labels, return_inverse=True)[1].astype(np.int64).ravel()
    index: dict[Hashable, int] = {}
    return np.fromiter(
        (index.setdefault(label, len(index)) for label in labels), np.int64, len(labels)
    )


def _pairs(counts: I64) -> int:
    return int((counts * (counts - 1) // 2).sum())


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 1.0


def _f1(precision: float, recall: float) -> float:
    total = precision + recall
    return 2 * precision * recall / total if total else 0.0


def evaluate_linkage(
    truth: Sequence[Hashable] | npt.NDArray[np.generic],
    predicted: Sequence[Hashable] | npt.NDArray[np.generic],
) -> QualityReport:
    """Compare predicted profile ids with true advertiser ids, aligned per ad."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predicted labels")
    true_codes, predicted_codes = _codes(truth), _codes(predicted)
    n = len(true_codes)
    n_true = int(true_codes.max()) + 1 if n else 0
    n_predicted = int(predicted_codes.max()) + 1 if n else 0
    # Contingency cells: one (advertiser, profile) per nonzero count.
    cells, sizes = np.unique(true_codes * max(n_predicted, 1) + predicted_codes, return_counts=True)
    cell_true, cell_predicted = np.divmod(cells, max(n_predicted, 1))
    true_sizes = np.bincount(true_codes, minlength=n_true)
    predicted_sizes = np.bincount(predicted_codes, minlength=n_predicted)

    correct = _pairs(sizes)
    true_pairs, predicted_pairs = _pairs(true_sizes), _pairs(predicted_sizes)
    precision = _ratio(correct, predicted_pairs)
    recall = _ratio(correct, true_pairs)

    squares = sizes.astype(np.float64) ** 2
    b_precision = _ratio(float((squares / predicted_sizes[cell_predicted]).sum()), n)
    b_recall = _ratio(float((squares / true_sizes[cell_true]).sum()), n)

    advertisers_per_profile = np.bincount(cell_predicted, minlength=n_predicted)
    big_cells_per_profile = np.bincount(cell_predicted[sizes >= 2], minlength=n_predicted)
    return QualityReport(
        ads=n,
        advertisers=n_true,
        profiles=n_predicted,
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        correct_pairs=correct,
        pairwise_precision=precision,
        pairwise_recall=recall,
        pairwise_f1=_f1(precision, recall),
        bcubed_precision=b_precision,
        bcubed_recall=b_recall,
        bcubed_f1=_f1(b_precision, b_recall),
        impure_profiles=int((advertisers_per_profile >= 2).sum()),
        merged_profiles=int((big_cells_per_profile >= 2).sum()),
    )


_COLUMNS = (
    ("ads", "ads", "{:,}"),
    ("advertisers", "advertisers", "{:,}"),
    ("profiles", "profiles", "{:,}"),
    ("pair P", "pairwise_precision", "{:.4f}"),
    ("pair R", "pairwise_recall", "{:.4f}"),
    ("pair F1", "pairwise_f1", "{:.4f}"),
    ("B3 P", "bcubed_precision", "{:.4f}"),
    ("B3 R", "bcubed_recall", "{:.4f}"),
    ("B3 F1", "bcubed_f1", "{:.4f}"),
    ("impure", "impure_profiles", "{:,}"),
    ("merged", "merged_profiles", "{:,}"),
)


def format_table(results: Mapping[str, QualityReport]) -> str:
    """A plain-text table, one row per named result, columns aligned."""
    header = ["run", *(title for title, _, _ in _COLUMNS)]
    rows = [
        [name, *(fmt.format(getattr(report, attr)) for _, attr, fmt in _COLUMNS)]
        for name, report in results.items()
    ]
    return align_table(header, rows)


def align_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned, a rule below
    the header."""
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
