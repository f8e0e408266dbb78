"""dfbench.datasets: one adapter per public dataset and the embedded synthetic benchmark.

Importing the package registers every adapter (one module each), as ``timm.models``
registers its families. Adding a dataset = one adapter module + one import line here.
"""

from dfbench.datasets import celebdf, dfdc, dfdcp, dftimit, ffiw10k, ffpp, uadfv, wilddeepfake  # noqa: E402,F401  (register adapters)
from dfbench.datasets.base import (
    DATASETS,
    INDEX_COLUMNS,
    DatasetAdapter,
    Selection,
    get_dataset,
    list_datasets,
    register_dataset,
)

__all__ = ["DATASETS", "INDEX_COLUMNS", "DatasetAdapter", "Selection", "get_dataset", "list_datasets", "register_dataset"]
