"""The README's tables and first commands stay true to what is registered and to CI."""

import re
from pathlib import Path

from dfbench.benchmark.protocol import list_protocols
from dfbench.detectors import list_detectors

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def table(marker: str) -> str:
    return README[README.index(f"<!-- {marker} -->") : README.index(f"<!-- /{marker} -->")]


def test_readme_protocol_table_matches_the_registry() -> None:
    assert set(re.findall(r"^\| `(\w+)`", table("protocols-table"), re.M)) == set(list_protocols())


def test_readme_detector_table_matches_the_registry() -> None:
    named = set(re.findall(r"`(\w+)`", table("detectors-table")))
    assert named == set(list_detectors())


def test_readme_opens_with_the_two_setup_commands_and_ci_runs_the_second() -> None:
    block = README.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(block) == 2
    assert "pip install" in block[0] and "dfbench run --protocol cross_quality" in block[0]
    assert "pip install" in block[1] and "pytest" in block[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "grep -m1 'pytest'" in ci and "README.md" in ci


def test_every_recipe_has_a_docs_page() -> None:
    pages = {p.stem for p in (ROOT / "docs" / "recipes").glob("*.md")}
    assert {"two_gen_bat", "pim", "qad", "pbnet", "big_arts"} <= pages
