"""Every registered detector passes the named checks of dfbench.testing (scikit-learn style)."""

import pytest

from dfbench.detectors import DETECTORS, list_detectors
from dfbench.testing import DETECTOR_CHECKS

CASES = [(name, check) for name in list_detectors() for check in DETECTOR_CHECKS]


@pytest.mark.parametrize(("detector", "check"), CASES, ids=[f"{d}-{c}" for d, c in CASES])
def test_detector_check(detector: str, check: str, tmp_path) -> None:
    exemptions = getattr(DETECTORS.get(detector), "check_exemptions", {})
    if check in exemptions:
        pytest.xfail(exemptions[check])
    fn = DETECTOR_CHECKS[check]
    if check == "save_load":
        fn(detector, tmp_path)
    else:
        fn(detector)
